package kernelparts

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	"github.com/nodeinit/nodeinit/device"
	"golang.org/x/sys/unix"
)

// Set makes the kernel show exactly want as the partitions of the open disk f
// (see syncPartitions), and says how ("unchanged", "blkpg" or "reread"). The
// error wraps device.ErrRereadDeferred when the kernel could not be told.
func Set(f *os.File, want []device.Partition) (string, error) {
	k, err := newSysfsKernel(f)
	if err != nil {
		return "", fmt.Errorf("%w: %w", device.ErrRereadDeferred, err)
	}
	return syncPartitions(k, want)
}

// sysfsKernel is partitionKernel for a real block device.
type sysfsKernel struct {
	f   *os.File
	dir string // /sys/dev/block/MAJ:MIN resolved
}

func newSysfsKernel(f *os.File) (*sysfsKernel, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat: %w", err)
	}
	dir, err := filepath.EvalSymlinks(fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)))
	if err != nil {
		return nil, fmt.Errorf("find the disk in sysfs: %w", err)
	}
	return &sysfsKernel{f: f, dir: dir}, nil
}

func (k *sysfsKernel) Reread() error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, k.f.Fd(), unix.BLKRRPART, 0); e != 0 {
		return e
	}
	return nil
}

func (k *sysfsKernel) Partitions() ([]device.Partition, error) {
	entries, err := os.ReadDir(k.dir)
	if err != nil {
		return nil, err
	}
	var parts []device.Partition
	for _, e := range entries {
		num, err := readSysInt(filepath.Join(k.dir, e.Name(), "partition"))
		if err != nil {
			continue // not a partition directory
		}
		start, err1 := readSysInt(filepath.Join(k.dir, e.Name(), "start"))
		size, err2 := readSysInt(filepath.Join(k.dir, e.Name(), "size"))
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("read sysfs partition %s: %w", e.Name(), errors.Join(err1, err2))
		}
		// sysfs counts 512-byte units whatever the sector size.
		parts = append(parts, device.Partition{Number: int(num), StartByte: start * 512, SizeBytes: size * 512})
	}
	return parts, nil
}

func (k *sysfsKernel) Add(p device.Partition) error {
	return blkpg(k.f, unix.BLKPG_ADD_PARTITION, p)
}

func (k *sysfsKernel) Delete(number int) error {
	return blkpg(k.f, unix.BLKPG_DEL_PARTITION, device.Partition{Number: number})
}

func blkpg(f *os.File, op int32, p device.Partition) error {
	part := unix.BlkpgPartition{Start: p.StartByte, Length: p.SizeBytes, Pno: int32(p.Number)}
	arg := unix.BlkpgIoctlArg{Op: op, Datalen: int32(unsafe.Sizeof(part)), Data: (*byte)(unsafe.Pointer(&part))}
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKPG, uintptr(unsafe.Pointer(&arg))); e != 0 {
		return e
	}
	return nil
}

func readSysInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// List returns the partitions the kernel shows for the open disk f.
func List(f *os.File) ([]device.Partition, error) {
	k, err := newSysfsKernel(f)
	if err != nil {
		return nil, err
	}
	return k.Partitions()
}
