// Package diskio is the effectful half of disk: discovery from sysfs, writing a
// GPT and telling the kernel about it, making filesystems, the udev-style lock,
// and wipes of device paths. Everything the planner needs to decide (types,
// selection, guard rails, layout math, probing an io.ReaderAt, wipe regions)
// is in package disk, which does no I/O of its own; the stages reach this
// package through the device edge (device/linuxdev).
package diskio
