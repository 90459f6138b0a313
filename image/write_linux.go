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

// hugePage is the x86-64 transparent huge page size.
const hugePage = 2 << 20

// chunkBuffers returns n buffers of size bytes for the write pipeline and a
// function that frees them. They are cut from one anonymous mapping aligned
// to 2 MiB and advised MADV_HUGEPAGE, so with transparent huge pages on
// (Debian's cloud kernel: always; most hosts: madvise) a 4 MiB chunk is two
// pages instead of 1024: fewer page faults, and O_DIRECT writes pin and the
// hashers walk far fewer pages. Without huge pages it is plain memory.
func chunkBuffers(n, size int) ([][]byte, func(), error) {
	stride := (size + hugePage - 1) &^ (hugePage - 1)
	mem, err := unix.Mmap(-1, 0, n*stride+hugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, nil, fmt.Errorf("allocate %d write buffers of %d bytes: %w", n, size, err)
	}
	skip := 0
	if r := int(uintptrOf(mem) % hugePage); r != 0 {
		skip = hugePage - r
	}
	region := mem[skip : skip+n*stride]
	unix.Madvise(region, unix.MADV_HUGEPAGE) // advice only: without THP the buffers still work
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = region[i*stride : i*stride+size : i*stride+size]
	}
	return bufs, func() { unix.Munmap(mem) }, nil
}
