// Package recorder is the recording device.Machine for tests: it captures
// every write and flush that reaches a disk, whoever makes it (nodeinit
// itself, its ext4 formatter, or the kernel's ext4 and squashfs while mounted), so that
// package crash can rebuild every disk a power cut could leave.
//
// How: the disk image is served as the only file of an in-process FUSE
// filesystem (go-fuse, mounted with mount(2) by root, no fusermount), and a
// loop device is attached to that file with buffered I/O. FUSE runs
// write-through (no writeback cache), so each WRITE the daemon gets is a
// loop request that the block layer issued, and it completes only when the
// daemon has applied and logged it; the loop device's cache flush arrives as
// FSYNC and is logged as a flush barrier. Discard and write-zeroes arrive as
// FALLOCATE and are logged as writes of zeroes. FLUSH (sent on close) is not
// a barrier and is not logged. Partitions are added with BLKPG (this build
// machine's kernel parses no partition tables), and the stages' disk name
// (/dev/vda, /dev/vda2) is mapped to /dev/loopN, /dev/loopNp2. The rest of
// the Machine is linuxdev on the mapped paths, except EFI variables (in
// memory, each change logged and durable when it returns) and Reboot and
// PowerOff (logged, return nil).
//
// Faults: FailWrite makes the k-th write fail with EIO (and optionally every
// later one), FailFlush fails chosen flushes.
//
// Verified on the build machine (kernel 6.18; recorder_linux_test.go):
//   - fsync of the loop device reaches the daemon as FSYNC, after the write it
//     covers: a 4 KiB write then fsync logs [write, flush] (attaching the loop
//     device logs one flush of its own first);
//   - an injected EIO on a write surfaces as EIO from the writer's fsync, and
//     the failed write is not logged as reaching the disk;
//   - mke2fs on partition 2 of a GPT disk (64 MiB image), mount, a file
//     written and fsynced, umount: 43 ops, 22 writes (9.2 MiB) and 18
//     flushes, with writes and flushes in each phase (mkfs 10/5, mount and
//     fsync 5/3, umount 7/9), and the base image plus every logged write is
//     byte for byte the final image, so no write bypassed the log;
//   - every crash state of that log (113 with DropWindow 4, MaxTears 2) is
//     either blank or an ext4 that e2fsck -fn passes after journal replay;
//     with the flushes removed from the log, e2fsck finds broken states.
//
// vfat is not in this machine's kernel (and there is no modprobe), so a FAT
// ESP can be recorded being written (go-diskfs writes it from user space)
// but not mounted here.
package recorder
