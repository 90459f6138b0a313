// Package blackbox tests whole actions without a VM, the way Ignition's blackbox
// tests do: a disk image and a command line go in, the real engine runs every
// stage against the disk through the recording device edge (device/recorder), and
// what comes out is judged by independent tools (sgdisk, blkid, e2fsck, fsck.vfat)
// and by the project's own readers.
//
// The crash-point harness lives here too (crash_linux_test.go): it replays every
// prefix of the recorded writes that a power cut could leave and checks the
// invariants of DESIGN.md on each (see Inspect).
//
// The tests need root, /dev/fuse and loop devices; they skip otherwise. They
// touch nothing but the loop devices and files they create.
package blackbox
