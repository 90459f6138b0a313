package device

import "errors"

// ErrUnsupported is returned by an operation the device or machine cannot do
// (discard on an image file, EFI variables on a BIOS machine).
var ErrUnsupported = errors.New("not supported by this device")

// ErrRereadDeferred says the partition table is on the disk but the kernel still
// uses the old partitions (one of them is open); a reboot makes it take the new one.
var ErrRereadDeferred = errors.New("partition table written, but the kernel could not be told; reboot to use it")
