package disk

import "fmt"

// The BIOS boot partition of a disk installed for BIOS (nodeinit.firmware=bios):
// GRUB's core.img lives in it, read by boot.img in the MBR. It fills the gap
// between the GPT's partition entries and the first MiB, where the layout
// puts nothing else, so a BIOS install has the same partitions at the same
// places as a UEFI one, plus this. Its number is fixed like the others'.
const (
	LabelBIOSBoot  = "BIOS-BOOT"
	TypeBIOSBoot   = "21686148-6449-6e6f-744e-656564454649"
	BIOSBootNumber = 8
	// biosBootFirstLBA is the first sector after the primary GPT header and
	// its 128 entries of 128 bytes, at 512-byte sectors.
	biosBootFirstLBA = 34
)

// WithBIOSBoot returns l with the BIOS boot partition added in front. BIOS
// boots 512-byte-sector disks only, so other sector sizes are refused.
func (l Layout) WithBIOSBoot() (Layout, error) {
	if l.SectorSize != 512 {
		return l, fmt.Errorf("a BIOS install needs a disk with 512-byte sectors, and this one has %d-byte sectors: install for UEFI (nodeinit.firmware=uefi)", l.SectorSize)
	}
	if _, ok := l.Find(LabelBIOSBoot); ok {
		return l, nil
	}
	start := int64(biosBootFirstLBA * 512)
	p := PartSpec{Number: BIOSBootNumber, Volume: "bios", Name: LabelBIOSBoot, TypeGUID: TypeBIOSBoot, Start: start, Size: MiB - start, FS: FSRaw}
	l.Partitions = append([]PartSpec{p}, l.Partitions...)
	return l, nil
}

// IsBIOSBoot reports the BIOS boot partition, the one not aligned to 1 MiB.
func (p PartSpec) IsBIOSBoot() bool { return p.TypeGUID == TypeBIOSBoot }
