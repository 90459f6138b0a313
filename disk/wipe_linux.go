package disk

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Wipe removes every signature blkid knows from the disk (or image file) at
// devPath: at the start and end of the disk and of each partition, both GPT
// headers and the protective MBR, md, LVM and LUKS metadata and the btrfs
// mirror superblocks (see wipeRegions). It zeroes only those regions, so a
// 1 TiB disk takes well under a second; with opts.Discard it also discards the
// whole device first. Partitions are found in the GPT (primary or backup), the
// MBR and the kernel's list, plus opts.Partitions. Afterwards the kernel is
// told the disk has no partitions; if it cannot be, the error wraps
// ErrRereadDeferred and the report is still valid.
//
// The caller decides whether the disk may be wiped (the guards); Wipe only
// refuses a disk that is in use, which the exclusive open detects.
func Wipe(devPath string, opts WipeOptions) (WipeReport, error) {
	began := time.Now()
	rep := WipeReport{Device: devPath}
	d, err := openDevice(devPath, opts.SectorSize)
	if err != nil {
		return rep, fmt.Errorf("wipe %s: %w", devPath, err)
	}
	defer d.f.Close()
	if opts.SectorSize > 0 && d.block && opts.SectorSize != d.logical {
		return rep, fmt.Errorf("wipe %s: the disk has %d-byte sectors, not %d as asked: check which disk was meant", devPath, d.logical, opts.SectorSize)
	}

	parts := d.partitionExtents(opts.Partitions)
	rep.Partitions = len(parts)
	var keep []extent
	for _, k := range opts.Keep {
		keep = append(keep, extent{k.StartByte, k.SizeBytes})
	}
	regions := subtractKept(wipeRegions(d.size, d.logical, parts), keep)

	if opts.Discard && len(keep) == 0 {
		if !d.block {
			rep.DiscardError = "not a block device"
		} else if err := d.discard(0, d.size); err != nil {
			rep.DiscardError = err.Error()
		} else {
			rep.Discarded = true
		}
	}
	method, err := d.zero(regions)
	if err != nil {
		return rep, fmt.Errorf("wipe %s: %w", devPath, err)
	}
	rep.Method = method
	rep.Regions = len(regions)
	for _, r := range regions {
		rep.Bytes += r.Size
	}
	if err := d.f.Sync(); err != nil {
		return rep, fmt.Errorf("wipe %s: sync: %w", devPath, err)
	}
	rep.Duration = time.Since(began)
	if !d.block {
		return rep, nil
	}
	k, err := newSysfsKernel(d.f)
	if err != nil {
		return rep, fmt.Errorf("wipe %s: %w: %w", devPath, ErrRereadDeferred, err)
	}
	if _, err := syncKernelPartitions(k, Layout{}); err != nil {
		return rep, fmt.Errorf("wipe %s: %w", devPath, err)
	}
	rep.Duration = time.Since(began)
	return rep, nil
}

// partitionExtents gathers every partition extent the disk is known to have.
func (d *device) partitionExtents(extra []Partition) (out []extent) {
	seen := map[extent]bool{}
	defer func() { // the same partition is often in the GPT and the kernel's list
		uniq := out[:0]
		for _, e := range out {
			if !seen[e] {
				seen[e] = true
				uniq = append(uniq, e)
			}
		}
		out = uniq
	}()
	for _, p := range extra {
		out = append(out, extent{p.StartByte, p.SizeBytes})
	}
	if parts, err := readPartitions(d.f, d.path, d.logical, d.physical); err == nil {
		for _, p := range parts {
			out = append(out, extent{p.StartByte, p.SizeBytes})
		}
	}
	out = append(out, mbrPartitions(d.f.ReadAt, int64(d.logical))...)
	if d.block {
		if k, err := newSysfsKernel(d.f); err == nil {
			if kp, err := k.Partitions(); err == nil {
				for _, p := range kp {
					out = append(out, extent{p.Start, p.Size})
				}
			}
		}
	}
	return out
}

// zero clears the regions, with BLKZEROOUT where the device supports it and
// plain writes of zeros otherwise. It returns the method used.
func (d *device) zero(regions []extent) (string, error) {
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

// discard discards a byte range of a block device.
func (d *device) discard(start, size int64) error {
	if err := blkRange(d.f, unix.BLKDISCARD, start, size); err != nil {
		return fmt.Errorf("BLKDISCARD: %w", err)
	}
	return nil
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
	buf := make([]byte, min(size, MiB))
	for off := start; off < start+size; {
		n := min(int64(len(buf)), start+size-off)
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return fmt.Errorf("write zeros at %d: %w", off, err)
		}
		off += n
	}
	return nil
}
