package stages

import (
	"fmt"

	"golang.org/x/sys/unix"
)

const mountReadOnly = unix.MS_RDONLY

// SysMounter is the Mounter that calls mount(2) and umount(2).
type SysMounter struct{}

// Mount mounts source on target.
func (SysMounter) Mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return fmt.Errorf("mount %s on %s (%s): %w", source, target, fstype, err)
	}
	return nil
}

// Unmount unmounts target.
func (SysMounter) Unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}
