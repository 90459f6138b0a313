// Package kernelparts tells the kernel which partitions a disk has: through
// BLKPG, touching only the partitions that differ, with BLKRRPART as the
// fallback. It works on kernels without a partition-table parser (this build
// machine's) and while other partitions of the disk are in use. It is the one
// implementation: device/linuxdev's SetPartitions and disk/diskio's path-based
// WriteTable and Wipe both call it.
package kernelparts
