package rescue

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func init() { register("kill", "[-SIGNAL | -s SIGNAL] PID... | -l", kill) }

func kill(c *call, args []string) error {
	sig, pids, list, err := parseKill(args)
	switch {
	case err != nil:
		return err
	case list:
		for s := syscall.Signal(1); s < 32; s++ {
			fmt.Fprintf(c.stdout, "%2d %s\n", int(s), strings.TrimPrefix(unix.SignalName(s), "SIG"))
		}
		return nil
	}
	failed := false
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil {
			fmt.Fprintf(c.stderr, "kill: %d: %v\n", pid, err)
			failed = true
		}
	}
	if failed {
		return exitStatus(1)
	}
	return nil
}

// parseKill reads kill's command line: the signal (TERM unless given as -9, -KILL, -SIGKILL
// or -s KILL) and the PIDs, or -l.
func parseKill(args []string) (sig syscall.Signal, pids []int, list bool, err error) {
	sig = unix.SIGTERM
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "-h" || a == "--help":
			return 0, nil, false, flag.ErrHelp
		case a == "-l":
			return 0, nil, true, nil
		case a == "-s" && len(args) > 1:
			sig, args = signalNamed(args[1]), args[2:]
		case a == "--":
			args = args[1:]
		case strings.HasPrefix(a, "-"):
			sig, args = signalNamed(a[1:]), args[1:]
		}
	}
	if sig == 0 {
		return 0, nil, false, usageError("unknown signal (kill -l lists them)")
	}
	if len(args) == 0 {
		return 0, nil, false, usageError("missing PID")
	}
	for _, a := range args {
		pid, err := strconv.Atoi(a)
		if err != nil {
			return 0, nil, false, usagef("bad PID %q", a)
		}
		pids = append(pids, pid)
	}
	return sig, pids, false, nil
}

// signalNamed is the signal numbered or named s (KILL, SIGKILL, kill), or 0.
func signalNamed(s string) syscall.Signal {
	if n, err := strconv.Atoi(s); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n)
	}
	return unix.SignalNum("SIG" + strings.TrimPrefix(strings.ToUpper(s), "SIG"))
}
