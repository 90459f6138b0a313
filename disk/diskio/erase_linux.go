package diskio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nodeinit/nodeinit/device"
)

// fileBlock is a device.Block over an open disk or image file, for Wipe's
// callers that still pass a path. device/linuxdev is the Machine's own.
type fileBlock struct {
	d      *openDisk
	method string // how ZeroRange last cleared: zeroout, punch or write
}

var _ device.Block = (*fileBlock)(nil)

func (b *fileBlock) ReadAt(p []byte, off int64) (int, error)  { return b.d.f.ReadAt(p, off) }
func (b *fileBlock) WriteAt(p []byte, off int64) (int, error) { return b.d.f.WriteAt(p, off) }

// Size is the size in bytes.
func (b *fileBlock) Size() int64 { return b.d.size }

// LogicalSectorSize is the device's (or the image's assumed) logical sector size.
func (b *fileBlock) LogicalSectorSize() int { return b.d.logical }

// PhysicalSectorSize is the device's physical sector size.
func (b *fileBlock) PhysicalSectorSize() int { return b.d.physical }

// IsBlockDevice is false for an image file.
func (b *fileBlock) IsBlockDevice() bool { return b.d.block }

// Path is the path it was opened by.
func (b *fileBlock) Path() string { return b.d.path }

// Close closes the file.
func (b *fileBlock) Close() error { return b.d.f.Close() }

// Flush fsyncs.
func (b *fileBlock) Flush() error { return b.d.f.Sync() }

// ZeroMethod says how the last ZeroRange cleared.
func (b *fileBlock) ZeroMethod() string { return b.method }

// Discard issues BLKDISCARD, or BLKSECDISCARD when secure.
func (b *fileBlock) Discard(off, n int64, secure bool) error {
	if !b.d.block {
		return device.ErrUnsupported
	}
	req, name := uint(unix.BLKDISCARD), "BLKDISCARD"
	if secure {
		req, name = unix.BLKSECDISCARD, "BLKSECDISCARD"
	}
	if err := blkRange(b.d.f, req, off, n); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("%s: %w: %w", name, device.ErrUnsupported, err)
		}
		return fmt.Errorf("%s %d bytes at %d: %w", name, n, off, err)
	}
	return nil
}

// ZeroRange uses BLKZEROOUT on a block device (the device may offload it),
// punches a hole in an image file (it stays sparse), and falls back to
// writing zeros.
func (b *fileBlock) ZeroRange(off, n int64) error {
	if b.d.block {
		if b.method != "write" {
			err := blkRange(b.d.f, unix.BLKZEROOUT, off, n)
			if err == nil {
				b.method = "zeroout"
				return nil
			}
			if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
				return fmt.Errorf("BLKZEROOUT %d bytes at %d: %w", n, off, err)
			}
		}
	} else if b.method != "write" {
		if err := unix.Fallocate(int(b.d.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n); err == nil {
			b.method = "punch"
			return nil
		}
	}
	b.method = "write"
	return writeZeros(b.d.f, off, n)
}

// DiscardZeroes asks the kernel whether discarded blocks read back as
// zeroes. Since Linux 4.12 BLKDISCARDZEROES always answers 0 and sysfs
// discard_zeroes_data is gone or 0, so on current kernels this is "not
// guaranteed"; what the device offers instead is named (write_zeroes_max_bytes:
// BLKZEROOUT is offloaded, which is what nodeinit.erase=zero uses).
func (b *fileBlock) DiscardZeroes() (bool, string) {
	if !b.d.block {
		return false, "an image file"
	}
	var v uint32
	_, _, e := unix.Syscall(unix.SYS_IOCTL, b.d.f.Fd(), unix.BLKDISCARDZEROES, uintptr(unsafe.Pointer(&v)))
	how := ""
	switch {
	case e != 0:
		how = "BLKDISCARDZEROES failed: " + e.Error()
	case v != 0:
		return true, "BLKDISCARDZEROES says 1"
	default:
		how = "BLKDISCARDZEROES says 0"
	}
	if q := b.queueDir(); q != "" {
		if wz := readSysTrim(filepath.Join(q, "write_zeroes_max_bytes")); wz != "" && wz != "0" {
			how += "; the device offloads zeroing (write_zeroes_max_bytes " + wz + "), so nodeinit.erase=zero is fast here"
		}
		if dm := readSysTrim(filepath.Join(q, "discard_max_bytes")); dm == "0" {
			how += "; it does not discard (discard_max_bytes 0)"
		}
	}
	return false, how
}

// queueDir is the disk's /sys/dev/block/M:m/queue, or "".
func (b *fileBlock) queueDir() string {
	var st unix.Stat_t
	if err := unix.Fstat(int(b.d.f.Fd()), &st); err != nil {
		return ""
	}
	dir := "/sys/dev/block/" + strconv.Itoa(int(unix.Major(st.Rdev))) + ":" + strconv.Itoa(int(unix.Minor(st.Rdev))) + "/queue"
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

func readSysTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
