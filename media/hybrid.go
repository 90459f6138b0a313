package media

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// The isohybrid step: go-diskfs writes the ISO9660 filesystem and its El Torito catalog
// but leaves the system area (the first 32 KiB) blank; it has no isohybrid support. The MBR
// that makes the same image boot from a USB stick is small enough to write here instead of
// calling xorriso: syslinux's isohdpfx.bin boot code with the block of isolinux.bin patched
// in (as syslinux's isohybrid does), and one partition entry of type 0xEF over the El
// Torito EFI image, which UEFI firmware reads as an EFI system partition.
//
// Unlike isohybrid there is no partition over the whole ISO (type 0 or 0x17 at sector 0):
// a kernel that parses the MBR would show the ISO twice (sdX and sdX1), and label:NODEINIT
// would then match two devices. isohdpfx.bin needs no such partition: it loads
// isolinux.bin from the block patched at offset 432.

const (
	isoBlock        = 2048
	mbrCodeSize     = 432
	hybridAlignment = 1 << 20 // isohybrid pads to 64 heads × 32 sectors
)

// hybridInfo is where the El Torito boot images are, in 2048-byte blocks.
type hybridInfo struct {
	biosLBA, efiLBA uint32
	efiSectors      uint32 // 512-byte sectors of the EFI image
}

// readElTorito reads the boot record and catalog of an ISO image.
func readElTorito(f *os.File) (hybridInfo, error) {
	var h hybridInfo
	brvd := make([]byte, isoBlock)
	if _, err := f.ReadAt(brvd, 17*isoBlock); err != nil {
		return h, fmt.Errorf("read boot record: %w", err)
	}
	if brvd[0] != 0 || string(brvd[1:6]) != "CD001" || !bytes.HasPrefix(brvd[7:], []byte("EL TORITO SPECIFICATION")) {
		return h, errors.New("no El Torito boot record at block 17")
	}
	cat := make([]byte, isoBlock)
	if _, err := f.ReadAt(cat, int64(binary.LittleEndian.Uint32(brvd[0x47:]))*isoBlock); err != nil {
		return h, fmt.Errorf("read boot catalog: %w", err)
	}
	if cat[0] != 1 || cat[30] != 0x55 || cat[31] != 0xaa || cat[32] != 0x88 {
		return h, errors.New("boot catalog: bad validation or initial entry")
	}
	h.biosLBA = binary.LittleEndian.Uint32(cat[40:])
	for off := 64; off+64 <= len(cat); {
		hdr := cat[off : off+32]
		if hdr[0] != 0x90 && hdr[0] != 0x91 {
			break
		}
		n := int(binary.LittleEndian.Uint16(hdr[2:]))
		for i := 0; i < n; i++ {
			e := cat[off+32*(i+1):]
			if hdr[1] == 0xef && e[0] == 0x88 {
				h.efiLBA = binary.LittleEndian.Uint32(e[8:])
			}
		}
		if hdr[0] == 0x91 {
			break
		}
		off += 32 * (n + 1)
	}
	if h.efiLBA == 0 {
		return h, errors.New("boot catalog: no UEFI entry")
	}
	return h, nil
}

// makeHybrid writes the isohybrid MBR into the ISO at path and pads it to a whole MiB.
func makeHybrid(path, mbrCode string) (hybridInfo, error) {
	code, err := os.ReadFile(mbrCode)
	if err != nil {
		return hybridInfo{}, err
	}
	if len(code) < mbrCodeSize {
		return hybridInfo{}, fmt.Errorf("%s: %d bytes, want the %d-byte isohybrid MBR code", mbrCode, len(code), mbrCodeSize)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return hybridInfo{}, err
	}
	defer f.Close()
	h, err := readElTorito(f)
	if err != nil {
		return h, err
	}
	efiSize, err := fatVolumeSize(f, int64(h.efiLBA)*isoBlock)
	if err != nil {
		return h, fmt.Errorf("EFI image at block %d: %w", h.efiLBA, err)
	}
	h.efiSectors = uint32(efiSize / 512)

	pvd := make([]byte, isoBlock)
	if _, err := f.ReadAt(pvd, 16*isoBlock); err != nil {
		return h, err
	}
	isoSize := int64(binary.LittleEndian.Uint32(pvd[80:])) * isoBlock
	if padded := (isoSize + hybridAlignment - 1) / hybridAlignment * hybridAlignment; padded > isoSize {
		if err := f.Truncate(padded); err != nil {
			return h, err
		}
	}

	mbr := make([]byte, 512)
	copy(mbr, code[:mbrCodeSize])
	binary.LittleEndian.PutUint32(mbr[432:], h.biosLBA*4) // isolinux.bin in 512-byte sectors
	sum := sha256.Sum256(pvd)                             // a disk signature stable for the same content
	copy(mbr[440:444], sum[:4])
	p := mbr[446:462]
	p[0] = 0x80 // active: some BIOSes boot only disks with an active partition
	start, count := h.efiLBA*4, h.efiSectors
	copy(p[1:4], chs(start))
	p[4] = 0xef
	copy(p[5:8], chs(start+count-1))
	binary.LittleEndian.PutUint32(p[8:], start)
	binary.LittleEndian.PutUint32(p[12:], count)
	mbr[510], mbr[511] = 0x55, 0xaa
	if _, err := f.WriteAt(mbr, 0); err != nil {
		return h, err
	}
	return h, f.Sync()
}

// fatVolumeSize reads the total sector count of the FAT boot sector at off.
func fatVolumeSize(f *os.File, off int64) (int64, error) {
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, off); err != nil {
		return 0, err
	}
	if bs[510] != 0x55 || bs[511] != 0xaa {
		return 0, errors.New("no FAT boot sector")
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:]))
	total := int64(binary.LittleEndian.Uint16(bs[19:]))
	if total == 0 {
		total = int64(binary.LittleEndian.Uint32(bs[32:]))
	}
	if bps == 0 || total == 0 {
		return 0, errors.New("FAT boot sector without a size")
	}
	return bps * total, nil
}

// chs encodes a 512-byte sector number in the 64-head, 32-sector geometry isohybrid uses,
// or the "beyond CHS" marker.
func chs(lba uint32) []byte {
	const heads, sectors = 64, 32
	c := lba / (heads * sectors)
	if c > 1023 {
		return []byte{0xfe, 0xff, 0xff}
	}
	h := (lba / sectors) % heads
	s := lba%sectors + 1
	return []byte{byte(h), byte(s) | byte((c>>2)&0xc0), byte(c)}
}
