package early

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
)

// Shells are tried in order for the rescue shell: u-root's gosh in busybox mode, then /bin/sh.
var Shells = []string{"/bbin/gosh", "/bin/gosh", "/bin/sh"}

// RescueShellBanner is printed before the rescue shell starts; tests wait for it.
const RescueShellBanner = "nodeinit: rescue shell"

// RescueShell prints facts and a banner to out, then runs the shell on /dev/console as a new
// session with the console as its controlling terminal, and waits for it to exit. TERM=dumb
// keeps the shell to plain line reading, which works on a serial line and a VT alike.
func RescueShell(out io.Writer, facts string) error {
	if facts != "" {
		fmt.Fprintf(out, "%s\n", facts)
	}
	shell := ""
	for _, s := range Shells {
		if _, err := os.Stat(s); err == nil {
			shell = s
			break
		}
	}
	if shell == "" {
		return fmt.Errorf("rescue shell: none of %v in the initramfs", Shells)
	}
	console, err := os.OpenFile("/dev/console", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("rescue shell: open /dev/console: %w", err)
	}
	defer console.Close()
	fmt.Fprintf(out, "%s (%s) on /dev/console; type exit to leave\n", RescueShellBanner, shell)
	cmd := exec.Command(shell)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = console, console, console
	cmd.Env = []string{"PATH=/bbin:/bin:/sbin:/usr/bin:/usr/sbin", "HOME=/", "TERM=dumb", "PS1=rescue# "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("rescue shell %s: %w", shell, err)
	}
	return nil
}
