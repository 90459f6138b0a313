package rescue

import (
	"flag"

	"golang.org/x/sys/unix"
)

func init() {
	register("poweroff", "[-f]", func(c *call, args []string) error { return power(c, args, unix.LINUX_REBOOT_CMD_POWER_OFF) })
	register("reboot", "[-f]", func(c *call, args []string) error { return power(c, args, unix.LINUX_REBOOT_CMD_RESTART) })
	register("shutdown", "[-h | -r | poweroff | halt | reboot] [now]", shutdown)
}

// power is poweroff and reboot: immediate, as -f asks for anyway (the initramfs has no
// services to stop).
func power(c *call, args []string, how int) error {
	fs := c.flags()
	fs.Bool("f", false, "force (always)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q", fs.Arg(0))
	}
	return halt(how)
}

func shutdown(c *call, args []string) error {
	how, err := parseShutdown(args)
	if err != nil {
		return err
	}
	return halt(how)
}

// parseShutdown returns the reboot(2) command that shutdown's arguments ask for: power off
// unless -r or reboot (or halt) is given.
func parseShutdown(args []string) (int, error) {
	how := unix.LINUX_REBOOT_CMD_POWER_OFF
	for _, a := range args {
		switch a {
		case "-h", "-P", "poweroff":
			how = unix.LINUX_REBOOT_CMD_POWER_OFF
		case "-r", "reboot":
			how = unix.LINUX_REBOOT_CMD_RESTART
		case "-H", "halt":
			how = unix.LINUX_REBOOT_CMD_HALT
		case "now", "+0":
		case "--help":
			return 0, flag.ErrHelp
		default:
			return 0, usagef("unknown argument %q", a)
		}
	}
	return how, nil
}

// halt syncs the filesystems, then powers off, halts or reboots; tests replace it.
var halt = func(how int) error {
	unix.Sync()
	return unix.Reboot(how)
}
