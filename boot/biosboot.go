package boot

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// GRUB's i386-pc images, as an initramfs carries them (GrubImageDir): boot.img
// from Debian's grub-pc-bin and a core.img made by grub-mkimage with its
// prefix on the ESP (see README, "BIOS installs").
const (
	GrubImageDir  = "lib/nodeinit/grub-i386-pc" // relative to the root
	GrubBootImage = "boot.img"
	GrubCoreImage = "core.img"
)

// GrubCoreModules are the GRUB modules a BIOS install's core.img must hold:
// the disk, GPT and FAT to read the ESP, and what grub.cfg uses (script and
// menu, test, load_env and save_env, echo, the serial console, the Linux
// loader). Nothing is loaded from the ESP at boot.
var GrubCoreModules = []string{"biosdisk", "part_gpt", "fat", "normal", "test", "loadenv", "echo", "serial", "terminal", "linux"}

// GrubCorePrefix is the prefix core.img is made with (grub-mkimage -p): the
// grub directory on the first partition (the ESP) of the disk the BIOS booted.
const GrubCorePrefix = "(,gpt1)/grub"

// Offsets in GRUB 2.06's boot.img and diskboot.img (include/grub/i386/pc/boot.h).
const (
	mbrBPBStart      = 0x03  // the BPB a setup keeps from the sector it replaces
	mbrBPBEnd        = 0x5a  // …
	mbrKernelSector  = 0x5c  // uint64: first sector of core.img
	mbrBootDrive     = 0x64  // 0xff: the drive the BIOS booted from
	mbrDriveCheck    = 0x66  // the jump over the drive check, NOPed on a hard disk
	mbrCodeEnd       = 0x1b8 // the disk signature and partition table follow
	diskbootListEnd  = 0x200 // the blocklists grow down from the end of the first sector
	blocklistSize    = 12    // uint64 start, uint16 length, uint16 segment
	coreSegment      = 0x820 // GRUB_BOOT_I386_PC_KERNEL_SEG + 512>>4
	biosSectorSize   = 512
	maxCoreImageSize = 1 << 20
)

// WriteBIOSBoot makes a GPT disk boot GRUB under BIOS, as grub-bios-setup
// --no-rs-codes does for a BIOS boot partition: core.img goes to the
// partition (first sector partStart, partSectors long, 512-byte sectors) with
// its first sector's blocklist pointing at the rest, then boot.img's code
// goes into the MBR, keeping the disk signature and the protective MBR's
// partition table, pointing at core.img. The MBR is written last: until then
// the disk does not boot GRUB at all, rather than a half-written one.
func WriteBIOSBoot(disk interface {
	io.ReaderAt
	io.WriterAt
}, bootImg, coreImg []byte, partStart, partSectors int64) error {
	if len(bootImg) != biosSectorSize || bootImg[510] != 0x55 || bootImg[511] != 0xaa {
		return errors.New("bios boot: boot.img is not a 512-byte boot sector")
	}
	if len(coreImg) < 2*biosSectorSize || len(coreImg) > maxCoreImageSize {
		return fmt.Errorf("bios boot: core.img is %d bytes: not a GRUB i386-pc core image", len(coreImg))
	}
	nsec := (int64(len(coreImg)) + biosSectorSize - 1) / biosSectorSize
	if nsec > partSectors {
		return fmt.Errorf("bios boot: core.img needs %d sectors and the BIOS boot partition has %d", nsec, partSectors)
	}
	core := make([]byte, nsec*biosSectorSize)
	copy(core, coreImg)
	// Clear the blocklists grub-mkimage left, then one list for all of
	// core.img after its first sector, and a terminator below it.
	for off := diskbootListEnd - blocklistSize; off > biosSectorSize/2; off -= blocklistSize {
		if binary.LittleEndian.Uint16(core[off+8:]) == 0 {
			break
		}
		clear(core[off : off+blocklistSize])
	}
	clear(core[diskbootListEnd-2*blocklistSize : diskbootListEnd-blocklistSize])
	bl := core[diskbootListEnd-blocklistSize : diskbootListEnd]
	binary.LittleEndian.PutUint64(bl[0:], uint64(partStart+1))
	binary.LittleEndian.PutUint16(bl[8:], uint16(nsec-1))
	binary.LittleEndian.PutUint16(bl[10:], coreSegment)
	if _, err := disk.WriteAt(core, partStart*biosSectorSize); err != nil {
		return fmt.Errorf("bios boot: write core.img: %w", err)
	}

	mbr := make([]byte, biosSectorSize)
	if _, err := disk.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("bios boot: read the MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xaa {
		return errors.New("bios boot: the disk has no protective MBR: write the GPT first")
	}
	code := bytes.Clone(bootImg[:mbrCodeEnd])
	copy(code[mbrBPBStart:mbrBPBEnd], mbr[mbrBPBStart:mbrBPBEnd])
	binary.LittleEndian.PutUint64(code[mbrKernelSector:], uint64(partStart))
	code[mbrBootDrive] = 0xff
	code[mbrDriveCheck], code[mbrDriveCheck+1] = 0x90, 0x90
	copy(mbr, code)
	if _, err := disk.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("bios boot: write the MBR: %w", err)
	}
	return nil
}
