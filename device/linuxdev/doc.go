// Package linuxdev is the Linux implementation of device.Machine: the one
// place where nodeinit's stages reach the kernel. Block I/O and partitions are
// x/sys/unix calls (open with O_EXCL, BLKGETSIZE64, BLKSSZGET, BLKPBSZGET,
// BLKDISCARD, BLKZEROOUT, BLKPG, BLKRRPART); filesystems, locks and EFI
// variables reuse diskio.MakeFS, diskio.Lock and boot.OpenEFIVars.
package linuxdev
