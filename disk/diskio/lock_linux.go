package diskio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive flock on the block device at devPath, the convention
// udev and systemd-repart use to say "a tool is rewriting this disk". It does
// not wait: when another process holds the lock, the error names it when
// /proc/locks tells. The returned unlock releases the lock.
func Lock(devPath string) (unlock func() error, err error) {
	f, err := os.OpenFile(devPath, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", devPath, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %s: %w: the disk is locked by %s; wait for it to finish or stop it", devPath, err, lockHolder(devPath))
		}
		return nil, fmt.Errorf("lock %s: %w", devPath, err)
	}
	return func() error {
		return f.Close() // closing the last descriptor releases the flock
	}, nil
}

// lockHolder names the process holding a flock on path, from /proc/locks, or
// says "another process" when it cannot tell.
func lockHolder(path string) string {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return "another process"
	}
	// /proc/locks identifies the locked inode as MAJ:MIN:INODE of the
	// filesystem holding the node (devtmpfs for /dev/…), in hex for MAJ:MIN.
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return "another process"
	}
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		// 1: FLOCK  ADVISORY  WRITE 1234 00:05:123 0 EOF
		if len(fields) < 6 || fields[1] != "FLOCK" || fields[5] != id {
			continue
		}
		pid := fields[4]
		comm, err := os.ReadFile(filepath.Join("/proc", pid, "comm"))
		if err != nil {
			return "pid " + pid
		}
		return fmt.Sprintf("pid %s (%s)", pid, strings.TrimSpace(string(comm)))
	}
	return "another process"
}
