package image

import (
	"fmt"

	"github.com/nodeinit/nodeinit/kmod"
	"golang.org/x/sys/unix"
)

// sysMounter mounts with mount(2).
type sysMounter struct{}

func defaultMounter() Mounter { return sysMounter{} }

// MountReadOnly mounts device at target read-only, without devices, setuid
// or exec.
func (sysMounter) MountReadOnly(device, target, fstype string) error {
	flags := uintptr(unix.MS_RDONLY | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC)
	kmod.Filesystem(fstype) // the mount's own error says if the type is still unknown
	if err := unix.Mount(device, target, fstype, flags, ""); err != nil {
		return fmt.Errorf("mount %s on %s: %w", device, target, err)
	}
	return nil
}

// Unmount detaches the filesystem at target.
func (sysMounter) Unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}
