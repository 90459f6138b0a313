package measure

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lockFile takes the exclusive flock that systemd's writers take on the log.
func lockFile(f *os.File) (func(), error) {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return nil, err
	}
	return func() { unix.Flock(int(f.Fd()), unix.LOCK_UN) }, nil
}

// bootTime is CLOCK_BOOTTIME, which systemd's records carry as timestamp.
func bootTime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
