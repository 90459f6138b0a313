package image

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openTarget opens an existing file or device for writing, with O_DIRECT
// when offset is aligned and the filesystem or driver accepts it.
func openTarget(path string, offset int64) (*os.File, bool, error) {
	flags := unix.O_WRONLY | unix.O_CLOEXEC
	if offset%directAlign == 0 {
		fd, err := unix.Open(path, flags|unix.O_DIRECT, 0)
		if err == nil {
			return os.NewFile(uintptr(fd), path), true, nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return nil, false, fmt.Errorf("open %s: %w", path, err)
		}
		// tmpfs and some drivers refuse O_DIRECT: fall back to buffered writes.
	}
	fd, err := unix.Open(path, flags, 0)
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), false, nil
}

// setDirect switches O_DIRECT on or off for an open file.
func setDirect(f *os.File, on bool) error {
	fd := int(f.Fd())
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return err
}

func isEINVAL(err error) bool { return errors.Is(err, unix.EINVAL) }

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
