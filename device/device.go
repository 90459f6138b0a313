// Package device is nodeinit's one edge to the machine. Every effect that a stage
// has on disks, filesystems, firmware variables and power goes through a Machine:
// opening a block device and reading, writing, discarding and flushing it, telling
// the kernel about partitions, making filesystems, mounting, locking, EFI variables
// and reboot.
//
// There are two implementations. device/linuxdev calls the kernel. device/recorder
// serves a sparse disk image through FUSE to a loop device, so that every write and
// flush that reaches the "disk" is logged with its offset and length, whether it
// came from nodeinit itself (its ext4 formatter too) or from the kernel's filesystems; it can
// inject faults at any write. The crash-point harness replays that log.
//
// This package holds only the interfaces and their value types; it does no I/O.
package device

import (
	"io"
)

// Block is an open disk, partition or image file.
type Block interface {
	io.ReaderAt
	io.WriterAt
	// Size is the size in bytes.
	Size() int64
	// LogicalSectorSize is the smallest addressable unit (512 or 4096).
	LogicalSectorSize() int
	// PhysicalSectorSize is the unit the device writes atomically.
	PhysicalSectorSize() int
	// IsBlockDevice is false for an image file.
	IsBlockDevice() bool
	// Discard tells the device that [off, off+n) is unused (BLKDISCARD, or
	// BLKSECDISCARD when secure). It returns ErrUnsupported when the device cannot.
	Discard(off, n int64, secure bool) error
	// ZeroRange makes [off, off+n) read back as zeroes (BLKZEROOUT, or plain writes).
	ZeroRange(off, n int64) error
	// Flush makes everything written so far durable (fsync).
	Flush() error
	// Path is the path it was opened by, for error messages.
	Path() string
	Close() error
}

// Partition is one partition the kernel should show for a disk.
type Partition struct {
	Number    int   // 1-based
	StartByte int64 // offset on the disk
	SizeBytes int64
}

// Mkfs asks for a filesystem.
type Mkfs struct {
	// Path is the partition (or image) to format.
	Path string
	// FS is vfat, ext4 or swap.
	FS string
	// Label is the filesystem label.
	Label string
	// UUID is the filesystem UUID, empty for a random one.
	UUID string
	// SectorSize is the disk's logical sector size.
	SectorSize int
}

// EFIVars is the firmware variable store, limited to the EFI global variable
// namespace where Boot#### and BootOrder live.
type EFIVars interface {
	// Get returns the attributes and data of name, or an error wrapping
	// fs.ErrNotExist when it is absent.
	Get(name string) (attrs uint32, data []byte, err error)
	Set(name string, attrs uint32, data []byte) error
	Remove(name string) error
	List() ([]string, error)
}

// Power is what ends a run: reboot or power off.
type Power interface {
	Reboot() error
	PowerOff() error
}

// Machine is every effect the stages have. Paths are absolute device or mount
// paths as the plan names them (/dev/vda, /dev/vda2, /run/nodeinit/esp).
type Machine interface {
	// OpenBlock opens path for reading and writing. On a block device the open is
	// exclusive (O_EXCL), so a disk in use by a mount or a holder is refused.
	// sectorSize, when not 0, is what an image file is taken to have.
	OpenBlock(path string, sectorSize int) (Block, error)
	// OpenBlockReadOnly opens path for reading only, without exclusivity.
	OpenBlockReadOnly(path string, sectorSize int) (Block, error)
	// Lock takes the exclusive flock on the disk at path (the udev convention for
	// "a tool is rewriting this disk"). It does not wait.
	Lock(path string) (unlock func() error, err error)
	// SetPartitions makes the kernel's view of the disk at path show exactly parts
	// (BLKPG, or a re-read). The error wraps ErrRereadDeferred when the table is on
	// the disk but the kernel still uses old partitions.
	SetPartitions(path string, parts []Partition) error
	// WaitPartitions waits until the device nodes of parts exist.
	WaitPartitions(path string, parts []Partition) error
	// MakeFS makes a filesystem.
	MakeFS(req Mkfs) error
	// Mount mounts source on target; flags are mount(2) flags.
	Mount(source, target, fstype string, flags uintptr, data string) error
	// Unmount unmounts target.
	Unmount(target string) error
	// SyncAll flushes every filesystem (sync(2)).
	SyncAll()
	// EFIVars opens the firmware variables; ErrUnsupported when there are none.
	EFIVars() (EFIVars, error)
	Power
}
