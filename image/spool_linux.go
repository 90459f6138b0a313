package image

import (
	"os"

	"golang.org/x/sys/unix"
)

// statfsFree is the space on f's filesystem that an unprivileged writer may
// still use: the blocks root keeps in reserve stay for the node's services.
func statfsFree(f *os.File) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return 0, err
	}
	unit := int64(st.Frsize)
	if unit <= 0 {
		unit = int64(st.Bsize)
	}
	return int64(st.Bavail) * unit, nil
}
