package early

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

// verbose tells whether the command line asks for nodeinit.debug (early
// setup runs before the command line is parsed, and must not fail on it).
func verbose(cmdline string) bool {
	on := false
	for _, f := range strings.Fields(cmdline) {
		if k, v, _ := strings.Cut(f, "="); k == "nodeinit.debug" {
			on = v == "" || slices.Contains([]string{"1", "yes", "true", "on", "y"}, strings.ToLower(v)) // the last one wins
		}
	}
	return on
}

// Uptime returns the time since the kernel started (CLOCK_BOOTTIME), or 0 if unknown.
func Uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// SwitchRoot moves /dev, /proc, /sys and /run into newRoot, makes it the root, deletes the
// initramfs contents and executes init (through u-root's pkg/mount). It returns only on error.
func (e *Env) SwitchRoot(newRoot, init string) error {
	fmt.Fprintf(e.Out, "nodeinit: switch_root into %s, exec %s at %.3fs after kernel start\n", newRoot, init, Uptime().Seconds())
	unix.Sync()
	if err := mount.SwitchRoot(newRoot, init); err != nil {
		return fmt.Errorf("switch_root to %s (init %s): %w", newRoot, init, err)
	}
	return nil
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
