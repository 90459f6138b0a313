package early

import (
	"github.com/nodeinit/nodeinit/kmod"
	"github.com/u-root/u-root/pkg/libinit"
	"golang.org/x/sys/unix"
)

// FilesystemDriver is the early step that makes the kernel able to mount FSType,
// loading its module in this process when /proc/filesystems lacks it (kmod).
type FilesystemDriver struct{ FSType string }

// Create loads the driver if the kernel does not have it yet.
func (d FilesystemDriver) Create() error { return kmod.Filesystem(d.FSType) }

func (d FilesystemDriver) String() string { return "driver for filesystem " + d.FSType }

const nosuidNodev = unix.MS_NOSUID | unix.MS_NODEV

// EarlyMounts are the mounts and nodes /init needs before anything else: /dev first so that
// consoles and kmsg can be opened, then /proc, /sys, /run and /tmp.
var EarlyMounts = []Step{
	{Creator: libinit.Dir{Name: "/dev", Mode: 0o755}},
	{Creator: libinit.Mount{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Opts: "mode=0755"}},
	{Creator: libinit.Dir{Name: "/proc", Mode: 0o555}},
	{Creator: libinit.Mount{Source: "proc", Target: "/proc", FSType: "proc", Flags: nosuidNodev | unix.MS_NOEXEC}},
	{Creator: libinit.Dir{Name: "/sys", Mode: 0o555}},
	{Creator: libinit.Mount{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: nosuidNodev | unix.MS_NOEXEC}},
	{Creator: libinit.Dir{Name: "/run", Mode: 0o755}},
	{Creator: libinit.Mount{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: nosuidNodev, Opts: "mode=0755"}},
	{Creator: libinit.Dir{Name: "/tmp", Mode: 0o1777}},
	{Creator: libinit.Mount{Source: "tmpfs", Target: "/tmp", FSType: "tmpfs", Flags: nosuidNodev, Opts: "mode=1777"}},
	{Creator: libinit.Dir{Name: "/dev/pts", Mode: 0o755}, Optional: true},
	{Creator: libinit.Mount{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Opts: "newinstance,ptmxmode=666,gid=5,mode=620"}, Optional: true},
	{Creator: libinit.Symlink{NewPath: "/dev/ptmx", Target: "/dev/pts/ptmx"}, Optional: true},
	{Creator: libinit.Symlink{NewPath: "/dev/fd", Target: "/proc/self/fd"}, Optional: true},
	{Creator: libinit.Dir{Name: "/dev/shm", Mode: 0o1777}, Optional: true},
	{Creator: libinit.Mount{Source: "tmpfs", Target: "/dev/shm", FSType: "tmpfs", Flags: nosuidNodev}, Optional: true},
	{Creator: libinit.Mount{Source: "securityfs", Target: "/sys/kernel/security", FSType: "securityfs", Flags: nosuidNodev | unix.MS_NOEXEC}, Optional: true, When: "/sys/kernel/security"},
}

// LateMounts come after the boot's modules. efivarfs is a module in Debian's cloud
// kernel, and no longer one /init loads with the drivers: its step loads it first.
var LateMounts = []Step{
	{Creator: FilesystemDriver{FSType: "efivarfs"}, Optional: true, When: "/sys/firmware/efi/efivars"},
	{Creator: libinit.Mount{Source: "efivarfs", Target: "/sys/firmware/efi/efivars", FSType: "efivarfs", Flags: nosuidNodev | unix.MS_NOEXEC}, Optional: true, When: "/sys/firmware/efi/efivars"},
}
