// Package media builds install media: the boot menu model shared by the ISO, USB and
// network boot configs (Entries), the hybrid ISO (BuildISO) and its USB form (WriteUSB).
//
// One image boots four ways. As a CD, El Torito has two entries: isolinux.bin for BIOS
// (no emulation, boot info table, syslinux menu.c32) and boot/efiboot.img for UEFI, a FAT32
// image holding systemd-boot (the bundle's loader.efi as EFI/BOOT/BOOTX64.EFI), its
// loader.conf and entries, and the kernel and initrd, because systemd-boot loads files only
// from its own partition. Written as is to a USB stick, the isohybrid MBR boots BIOS
// machines (syslinux's isohdpfx.bin code jumps to isolinux.bin), and its one partition, type
// 0xEF over efiboot.img, is the EFI system partition UEFI firmware boots from. So there is
// no separate USB layout: `mkmedia usb` writes the same image (see usb.go for why).
//
// The ISO is labelled NODEINIT and carries the signed bundle at its root, which is where the
// installer's default image source label:NODEINIT looks; the initramfs marks the disk
// holding that filesystem as the boot medium, so it is never a target. The FAT image has a
// different label (EFILabel) so the label stays unique when a kernel parses the stick's MBR.
//
// Libraries: go-diskfs writes the ISO9660 filesystem (Rock Ridge names, El Torito) and the
// FAT32 image. Two gaps are closed here instead of calling xorriso or mkfs.vfat: go-diskfs
// has no isohybrid support, so hybrid.go writes the MBR (about 40 lines, the layout of
// syslinux's isohybrid without its partition over the whole ISO); and its FAT32 writer
// leaves two defects fsck.vfat reports, which fatfix.go repairs. "Boot from local drive"
// under UEFI needs a program systemd-boot can start that fails, so systemd-boot exits and
// the firmware boots its next device; exitefi.go assembles that 1 KiB PE file.
//
// Boot files come from Debian packages: isolinux (isolinux.bin, isohdpfx.bin) and
// syslinux-common (ldlinux.c32, menu.c32, libutil.c32, libcom32.c32); see DebianSyslinux.
package media
