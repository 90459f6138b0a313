package diskio

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"unsafe"

	"github.com/nodeinit/nodeinit/device/kernelparts"
	"github.com/nodeinit/nodeinit/disk"
	"golang.org/x/sys/unix"
)

// device is an open disk or disk image with its geometry.
type openDisk struct {
	f        *os.File
	path     string
	size     int64
	logical  int
	physical int
	block    bool // a block device (ioctls apply); false for an image file
}

// openDevice opens path read-write. A block device is opened with O_EXCL, so
// the open fails (EBUSY) while a partition of it is mounted or claimed by
// swap, md or device-mapper. An image file reports 512-byte sectors unless
// sectorSize says otherwise.
func openDevice(path string, sectorSize int) (*openDisk, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	d := &openDisk{path: path}
	if st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0 {
		d.block = true
		d.f, err = os.OpenFile(path, os.O_RDWR|unix.O_EXCL|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EBUSY) {
			return nil, fmt.Errorf("open %s exclusively: %w: a partition of it is mounted, active swap, or held by md/LVM; unmount or stop it first", path, err)
		}
		if err != nil {
			return nil, err
		}
		fd := int(d.f.Fd())
		if d.logical, err = unix.IoctlGetInt(fd, unix.BLKSSZGET); err != nil {
			d.f.Close()
			return nil, fmt.Errorf("BLKSSZGET %s: %w", path, err)
		}
		if d.physical, err = unix.IoctlGetInt(fd, unix.BLKPBSZGET); err != nil {
			d.physical = d.logical
		}
		var size uint64
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, d.f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&size))); e != 0 {
			d.f.Close()
			return nil, fmt.Errorf("BLKGETSIZE64 %s: %w", path, e)
		}
		d.size = int64(size)
		return d, nil
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is neither a block device nor an image file", path)
	}
	if d.f, err = os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		return nil, err
	}
	d.size = st.Size()
	d.logical, d.physical = 512, 512
	if sectorSize > 0 {
		d.logical, d.physical = sectorSize, sectorSize
	}
	return d, nil
}

// WriteTable writes the GPT of l, with a protective MBR, to the disk (or image
// file) at devPath, then makes the kernel show the new partitions. The disk's
// real logical sector size and size must be those l was planned for. When the
// table is written but the kernel view could not be updated, the error wraps
// ErrRereadDeferred. Signatures inside the partitions are left alone: Wipe
// first when the disk held anything else.
func WriteTable(devPath string, l disk.Layout) error {
	d, err := openDevice(devPath, l.SectorSize)
	if err != nil {
		return fmt.Errorf("write partition table on %s: %w", devPath, err)
	}
	defer d.f.Close()
	if d.logical != l.SectorSize {
		return fmt.Errorf("write partition table on %s: the disk has %d-byte logical sectors but the layout was planned for %d: plan again for this disk",
			devPath, d.logical, l.SectorSize)
	}
	if d.size != l.DiskSize {
		return fmt.Errorf("write partition table on %s: the disk is %d bytes but the layout was planned for %d: plan again for this disk (was it replaced or resized?)",
			devPath, d.size, l.DiskSize)
	}
	t, err := gptTable(l, d.physical)
	if err != nil {
		return fmt.Errorf("write partition table on %s: %w", devPath, err)
	}
	if err := t.Write(d.f, d.size); err != nil {
		return fmt.Errorf("write partition table on %s: %w", devPath, err)
	}
	mbr := make([]byte, 512)
	if _, err := d.f.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("write partition table on %s: read back MBR: %w", devPath, err)
	}
	if fixProtectiveMBR(mbr, uint64(d.size/int64(d.logical))) {
		if _, err := d.f.WriteAt(mbr, 0); err != nil {
			return fmt.Errorf("write partition table on %s: fix protective MBR: %w", devPath, err)
		}
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("write partition table on %s: sync: %w", devPath, err)
	}
	if !d.block {
		return nil
	}
	how, err := kernelparts.Set(d.f, l.KernelPartitions())
	if err != nil {
		return fmt.Errorf("write partition table on %s: %w", devPath, err)
	}
	slog.Debug("partition table written", "disk", devPath, "partitions", len(l.Partitions), "kernel_update", how)
	return nil
}

// ReadGPT returns the partitions in the GPT of the disk or image at devPath.
// sectorSize 0 uses the device's logical sector size (512 for an image file).
func ReadGPT(devPath string, sectorSize int) ([]disk.Partition, error) {
	f, err := os.Open(devPath)
	if err != nil {
		return nil, fmt.Errorf("read GPT of %s: %w", devPath, err)
	}
	defer f.Close()
	logical, physical := 512, 512
	if sectorSize > 0 {
		logical, physical = sectorSize, sectorSize
	} else if n, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET); err == nil {
		logical, physical = n, n
	}
	return readPartitions(f, devPath, logical, physical)
}
