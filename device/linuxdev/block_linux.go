package linuxdev

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/nodeinit/nodeinit/device"
	"golang.org/x/sys/unix"
)

// block is device.Block on a block device or an image file.
type block struct {
	f                 *os.File
	path              string
	size              int64
	logical, physical int
	isBlock           bool
}

// openBlock opens path read-write (exclusive on a block device) or read-only.
func openBlock(path string, sectorSize int, readOnly bool) (*block, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	b := &block{path: path, logical: 512, physical: 512}
	flags := os.O_RDWR | unix.O_CLOEXEC
	if readOnly {
		flags = os.O_RDONLY | unix.O_CLOEXEC
	}
	switch {
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		b.isBlock = true
		if !readOnly {
			// O_EXCL on a block device fails with EBUSY while a partition
			// is mounted or claimed (swap, md, dm): the guard the kernel
			// offers against rewriting a disk in use.
			flags |= unix.O_EXCL
		}
		if b.f, err = os.OpenFile(path, flags, 0); err != nil {
			if errors.Is(err, unix.EBUSY) {
				return nil, fmt.Errorf("open %s exclusively: %w: a partition of it is mounted, active swap, or held by md/LVM; unmount or stop it first", path, err)
			}
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		if err := b.geometry(); err != nil {
			b.f.Close()
			return nil, err
		}
	case st.Mode().IsRegular():
		if b.f, err = os.OpenFile(path, flags, 0); err != nil {
			return nil, fmt.Errorf("open %s: %w", path, err)
		}
		b.size = st.Size()
		if sectorSize > 0 {
			b.logical, b.physical = sectorSize, sectorSize
		}
	default:
		return nil, fmt.Errorf("open %s: neither a block device nor an image file", path)
	}
	return b, nil
}

func (b *block) geometry() error {
	fd := int(b.f.Fd())
	var err error
	if b.logical, err = unix.IoctlGetInt(fd, unix.BLKSSZGET); err != nil {
		return fmt.Errorf("BLKSSZGET %s: %w", b.path, err)
	}
	if b.physical, err = unix.IoctlGetInt(fd, unix.BLKPBSZGET); err != nil {
		b.physical = b.logical
	}
	var size uint64
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, b.f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); e != 0 {
		return fmt.Errorf("BLKGETSIZE64 %s: %w", b.path, e)
	}
	b.size = int64(size)
	return nil
}

func (b *block) ReadAt(p []byte, off int64) (int, error)  { return b.f.ReadAt(p, off) }
func (b *block) WriteAt(p []byte, off int64) (int, error) { return b.f.WriteAt(p, off) }
func (b *block) Size() int64                              { return b.size }
func (b *block) LogicalSectorSize() int                   { return b.logical }
func (b *block) PhysicalSectorSize() int                  { return b.physical }
func (b *block) IsBlockDevice() bool                      { return b.isBlock }
func (b *block) Path() string                             { return b.path }
func (b *block) Close() error                             { return b.f.Close() }

// Flush is fsync: on a block device it writes back the page cache and sends
// the device a cache flush.
func (b *block) Flush() error {
	if err := b.f.Sync(); err != nil {
		return fmt.Errorf("flush %s: %w", b.path, err)
	}
	return nil
}

func (b *block) checkRange(op string, off, n int64) error {
	if off < 0 || n < 0 || off+n > b.size {
		return fmt.Errorf("%s %s [%d, +%d): outside the %d-byte device", op, b.path, off, n, b.size)
	}
	if off%int64(b.logical) != 0 || n%int64(b.logical) != 0 {
		return fmt.Errorf("%s %s [%d, +%d): not aligned to the %d-byte sector", op, b.path, off, n, b.logical)
	}
	return nil
}

// Discard issues BLKDISCARD or BLKSECDISCARD. An image file and a device that
// cannot discard give device.ErrUnsupported: a discard is only a hint, and
// its readback is not defined, so callers that need zeroes use ZeroRange.
func (b *block) Discard(off, n int64, secure bool) error {
	op := "discard"
	if secure {
		op = "secure discard"
	}
	if !b.isBlock {
		return fmt.Errorf("%s %s: %w", op, b.path, device.ErrUnsupported)
	}
	if err := b.checkRange(op, off, n); err != nil {
		return err
	}
	req := uintptr(unix.BLKDISCARD)
	if secure {
		req = unix.BLKSECDISCARD
	}
	r := [2]uint64{uint64(off), uint64(n)}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, b.f.Fd(), req, uintptr(unsafe.Pointer(&r))); e != 0 {
		if e == unix.EOPNOTSUPP || e == unix.ENOTTY {
			return fmt.Errorf("%s %s: %w (%w)", op, b.path, device.ErrUnsupported, e)
		}
		return fmt.Errorf("%s %s [%d, +%d): %w", op, b.path, off, n, e)
	}
	return nil
}

// zeroChunk is the size of the plain writes ZeroRange falls back to: large
// enough to stream, small enough to allocate once.
const zeroChunk = 4 << 20

// ZeroRange asks the device to zero (BLKZEROOUT), which the kernel turns into
// WRITE ZEROES or plain writes itself; on an image file it punches a hole,
// which reads back as zeroes. When neither works it writes zeroes.
func (b *block) ZeroRange(off, n int64) error {
	if err := b.checkRange("zero", off, n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if b.isBlock {
		r := [2]uint64{uint64(off), uint64(n)}
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, b.f.Fd(), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r))); e == 0 {
			return nil
		}
	} else if err := unix.Fallocate(int(b.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err == nil {
		return nil
	}
	zero := make([]byte, min(n, zeroChunk))
	for done := int64(0); done < n; {
		m := min(n-done, int64(len(zero)))
		if _, err := b.f.WriteAt(zero[:m], off+done); err != nil {
			return fmt.Errorf("zero %s [%d, +%d): %w", b.path, off, n, err)
		}
		done += m
	}
	return nil
}

var _ device.Block = (*block)(nil)
