package linuxdev

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/device/kernelparts"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/kmod"
	"golang.org/x/sys/unix"
)

// Machine is device.Machine on the running Linux kernel. The zero value is
// ready to use.
type Machine struct {
	// PartitionTimeout bounds WaitPartitions; 0 means 10 s.
	PartitionTimeout time.Duration
}

var _ device.Machine = (*Machine)(nil)

// OpenBlock opens path read-write; a block device exclusively.
func (m *Machine) OpenBlock(path string, sectorSize int) (device.Block, error) {
	return openBlock(path, sectorSize, false)
}

// OpenBlockReadOnly opens path for reading, without exclusivity.
func (m *Machine) OpenBlockReadOnly(path string, sectorSize int) (device.Block, error) {
	return openBlock(path, sectorSize, true)
}

// Lock takes the udev-convention flock on the disk (diskio.Lock).
func (m *Machine) Lock(path string) (func() error, error) { return diskio.Lock(path) }

// SetPartitions tells the kernel about parts through BLKPG, falling back to
// BLKRRPART. An image file has no kernel view, so it is a no-op there.
func (m *Machine) SetPartitions(path string, parts []device.Partition) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("set partitions of %s: %w", path, err)
	}
	if st.Mode()&os.ModeDevice == 0 {
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("set partitions of %s: %w: %w", path, device.ErrRereadDeferred, err)
	}
	defer f.Close()
	if _, err := kernelparts.Set(f, parts); err != nil {
		return fmt.Errorf("set partitions of %s: %w", path, err)
	}
	return nil
}

// WaitPartitions polls until each partition's node exists under /dev as a
// block device. devtmpfs creates the nodes itself, without udev, but
// asynchronously after BLKPG returns.
func (m *Machine) WaitPartitions(path string, parts []device.Partition) error {
	timeout := m.PartitionTimeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	deadline := time.Now().Add(timeout)
	for _, p := range parts {
		node := disk.PartitionPath(path, p.Number)
		for {
			st, err := os.Stat(node)
			if err == nil && st.Mode()&os.ModeDevice != 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("wait for partition %d of %s: %s did not appear within %s", p.Number, path, node, timeout)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// MakeFS runs diskio.MakeFS.
func (m *Machine) MakeFS(req device.Mkfs) error {
	return diskio.MakeFS(req.Path, req.FS, req.Label, disk.MkfsOptions{SectorSize: req.SectorSize, UUID: req.UUID})
}

// Mount is mount(2); the target must exist. A filesystem type the kernel has
// no driver for yet is loaded first, in this process (kmod.Filesystem), rather
// than by the kernel's request to /bbin/modprobe; an ENODEV from the mount then
// says which module was missing.
func (m *Machine) Mount(source, target, fstype string, flags uintptr, data string) error {
	modErr := kmod.Filesystem(fstype)
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		if errors.Is(err, unix.ENODEV) && modErr != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w (%v)", source, fstype, target, err, modErr)
		}
		return fmt.Errorf("mount %s (%s) on %s: %w", source, fstype, target, err)
	}
	return nil
}

// Unmount is umount(2).
func (m *Machine) Unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// SyncAll is sync(2).
func (m *Machine) SyncAll() { unix.Sync() }

// EFIVars opens efivarfs; device.ErrUnsupported on a machine that did not
// boot through UEFI.
func (m *Machine) EFIVars() (device.EFIVars, error) {
	if _, err := os.Stat("/sys/firmware/efi"); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("EFI variables: %w: the machine did not boot through UEFI", device.ErrUnsupported)
	}
	v, err := boot.OpenEFIVars()
	if err != nil {
		return nil, err
	}
	return v, nil
}

// Reboot syncs and restarts the machine; it returns only on failure.
func (m *Machine) Reboot() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	return nil
}

// PowerOff syncs and powers the machine off; it returns only on failure.
func (m *Machine) PowerOff() error {
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF); err != nil {
		return fmt.Errorf("power off: %w", err)
	}
	return nil
}
