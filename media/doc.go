// Package media builds install media: the boot menu model shared by the ISO, USB and
// network boot configs (Entries), and the hybrid ISO (BuildISO) that boots as a CD and,
// written as is to a USB stick, as a disk, on BIOS (isolinux) and UEFI (systemd-boot).
package media
