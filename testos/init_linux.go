package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// earlyMounts mounts /proc, /sys and /dev when switch_root did not bring them.
func earlyMounts() {
	for _, m := range []struct{ dir, fstype, probe string }{
		{"/proc", "proc", "/proc/self"},
		{"/sys", "sysfs", "/sys/kernel"},
		{"/dev", "devtmpfs", "/dev/null"},
		{"/run", "tmpfs", ""},
	} {
		if m.probe != "" {
			if _, err := os.Stat(m.probe); err == nil {
				continue
			}
		} else if isMountPoint(m.dir) {
			continue
		}
		os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.fstype, m.dir, m.fstype, unix.MS_NOSUID, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			fmt.Fprintf(os.Stderr, "testos: mount %s: %v\n", m.dir, err)
		}
	}
}

func isMountPoint(dir string) bool {
	var a, b unix.Stat_t
	if unix.Stat(dir, &a) != nil || unix.Stat(dir+"/..", &b) != nil {
		return false
	}
	return a.Dev != b.Dev
}

func initMain() int {
	started := uptime() // the moment the boot handed over to this init
	pid1 := os.Getpid() == 1
	if pid1 {
		earlyMounts()
	}
	out := io.Writer(os.Stdout) // run by hand: report to the terminal
	if pid1 {
		out = consoles("/")
	}
	fmt.Fprintln(out, startLine(started))
	cmdline, _ := os.ReadFile("/proc/cmdline")
	mounts, _ := os.ReadFile("/proc/self/mounts")
	n := node{root: "/", cmdline: string(cmdline), mounts: string(mounts), out: out}
	if h := n.hostname(); h != "" && pid1 {
		if err := unix.Sethostname([]byte(h)); err != nil {
			fmt.Fprintf(out, "TESTOS-ERROR sethostname: %v\n", err)
		}
	}
	final, err := n.boot()
	if err == errCrash {
		return 1 // PID 1 exits: the kernel panics, and reboots if panic=N is set
	}
	if !pid1 {
		return 0
	}
	unix.Sync()
	switch final {
	case "poweroff":
		fmt.Fprintln(out, "TESTOS-POWEROFF")
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	case "reboot":
		fmt.Fprintln(out, "TESTOS-REBOOT")
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
	for { // PID 1 must not exit; reap whatever gets orphaned to us
		if _, err := unix.Wait4(-1, nil, 0, nil); err != nil {
			time.Sleep(time.Second)
		}
	}
}

// uptime is the time since the kernel started (CLOCK_BOOTTIME, what
// /proc/uptime shows), readable before /proc is mounted.
func uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
