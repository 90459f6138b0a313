package diskio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"github.com/nodeinit/nodeinit/device/kernelparts"
	"github.com/nodeinit/nodeinit/disk"
	"golang.org/x/sys/unix"
)

// Wipe erases the disk (or image file) at devPath: it opens it exclusively,
// runs WipeBlock with opts (the signature regions of the disk, its
// partitions and everything nested in them: LVM PVs and their LVs, md
// members, LUKS headers, tables inside LVs, backup superblocks; plus the
// discard or zeroing opts.Mode asks for), flushes, and then tells the kernel
// the disk has no partitions. If the kernel cannot be told, the error wraps
// ErrRereadDeferred and the report is still valid. Partitions are found in
// the GPT (primary or backup), the MBR and the kernel's list, plus
// opts.Partitions.
//
// The caller decides whether the disk may be wiped (the guards); Wipe only
// refuses a disk that is in use, which the exclusive open detects.
func Wipe(devPath string, opts disk.WipeOptions) (disk.WipeReport, error) {
	return WipeContext(context.Background(), devPath, opts)
}

// WipeContext is Wipe with a context that stops a long discard or zeroing.
func WipeContext(ctx context.Context, devPath string, opts disk.WipeOptions) (disk.WipeReport, error) {
	began := time.Now()
	d, err := openDevice(devPath, opts.SectorSize)
	if err != nil {
		return disk.WipeReport{Device: devPath}, fmt.Errorf("wipe %s: %w", devPath, err)
	}
	defer d.f.Close()
	if d.block {
		if kp, err := kernelparts.List(d.f); err == nil {
			for _, p := range kp {
				opts.Partitions = append(opts.Partitions, disk.Partition{StartByte: p.StartByte, SizeBytes: p.SizeBytes})
			}
		}
	}
	rep, err := disk.WipeBlock(ctx, &fileBlock{d: d}, opts)
	if err != nil || !d.block {
		return rep, err
	}
	if _, err := kernelparts.Set(d.f, nil); err != nil {
		return rep, fmt.Errorf("wipe %s: %w", devPath, err)
	}
	rep.Duration = time.Since(began)
	return rep, nil
}

// zero clears the regions, with BLKZEROOUT where the device supports it and
// plain writes of zeros otherwise. It returns the method used.
func (d *openDisk) zero(regions []disk.Range) (string, error) {
	method := "write"
	if d.block {
		method = "zeroout"
	}
	for _, r := range regions {
		if method == "zeroout" {
			err := blkRange(d.f, unix.BLKZEROOUT, r.Start, r.Size)
			if err == nil {
				continue
			}
			if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
				return "", fmt.Errorf("zero %d bytes at %d: %w", r.Size, r.Start, err)
			}
			method = "write"
		}
		if err := writeZeros(d.f, r.Start, r.Size); err != nil {
			return "", err
		}
	}
	return method, nil
}

// blkRange issues a range ioctl (BLKDISCARD, BLKZEROOUT) taking {start, length} in bytes.
func blkRange(f *os.File, req uint, start, size int64) error {
	r := [2]uint64{uint64(start), uint64(size)}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), uintptr(req), uintptr(unsafe.Pointer(&r[0])))
	if e != 0 {
		return e
	}
	return nil
}

// writeZeros writes size zero bytes at start in 1 MiB writes.
func writeZeros(f *os.File, start, size int64) error {
	buf := make([]byte, min(size, disk.MiB))
	for off := start; off < start+size; {
		n := min(int64(len(buf)), start+size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return fmt.Errorf("write zeros at %d: %w", off, err)
		}
		off += n
	}
	return nil
}
