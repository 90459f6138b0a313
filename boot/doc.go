// Package boot owns the node's EFI System Partition: the systemd-boot loader
// and its configuration, the per-slot kernel/initrd/manifest under /node/<slot>,
// Boot Loader Specification Type #1 entries with automatic boot assessment
// (boot counting), the install ledger, rollback detection, and the firmware's
// Boot#### / BootOrder variables.
//
// A BIOS install boots through GRUB instead (grub.go, biosboot.go): boot.img
// in the MBR, core.img in the BIOS boot partition, grub/grub.cfg holding the
// entries and grub/grubenv their boot counters. Entries, WriteEntry, Bless,
// MarkBad and RemoveSlotEntry see which one an ESP has (IsGrub) and act on
// it, so the ledger and rollback detection are the same for both.
//
// Every function works on a directory path (the mounted ESP), so it can be
// tested on a temporary directory; mounting is the caller's job. Firmware
// variables go through the small efivarfs.EFIVar interface from u-root.
//
// Entry ordering. systemd-boot (252 and later) sorts entries so that entries
// with no tries left come last; then, when every entry has a sort-key, by
// sort-key ascending, machine-id, and version descending (newest first); then
// by file name descending. loader.conf's "default node-*" picks the first
// entry in that order. Every entry we write carries "sort-key nodeinit" and a
// version "<generation>-<image version>" whose generation is one higher than any
// existing entry's, so a freshly written upgrade entry sorts before the running
// one, and falls behind it once its tries run out (+0-N): the rollback.
//
// FAT and power cuts. vfat's rename is not atomic against a power cut: the
// directory entry update is not journalled. We write to a temporary file,
// fsync it, rename it over the target and fsync the directory, and the ledger
// keeps a ".bak" copy written first, so a torn ledger falls back to the
// previous good copy.
package boot
