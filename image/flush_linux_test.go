package image

import (
	"os"

	"golang.org/x/sys/unix"
)

func flushBufs(f *os.File) error {
	return unix.IoctlSetInt(int(f.Fd()), unix.BLKFLSBUF, 0)
}
