package disk

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
	"unicode/utf16"
)

// Probing reads device bytes in pure Go, because the initramfs has no blkid.
// Each prober looks for the magic that blkid (libblkid) looks for, at the same
// offsets, and reports the offset of the magic itself, as `wipefs -n` does, so
// that a report can be compared line by line with wipefs and blkid -p.
//
// The GPT reader is our own rather than go-diskfs' gpt.Read: that one needs a
// seekable fs.File and returns one table, while probing works on an
// io.ReaderAt and must report both headers (a disk whose primary header was
// zeroed still carries a backup that resurrects the table).

// Signature types reported by Probe, named as blkid names them.
const (
	SigGPT      = "gpt"
	SigPMBR     = "PMBR"
	SigDOS      = "dos"
	SigExt2     = "ext2"
	SigExt3     = "ext3"
	SigExt4     = "ext4"
	SigXFS      = "xfs"
	SigBtrfs    = "btrfs"
	SigVFAT     = "vfat"
	SigSwap     = "swap"
	SigLVM      = "LVM2_member"
	SigMD       = "linux_raid_member"
	SigLUKS     = "crypto_LUKS"
	SigISO9660  = "iso9660"
	SigSquashfs = "squashfs"
	// SigData is bytes that no known signature explains at the start or end of a
	// disk. Unknown content is never taken for blank: it needs consent like any data.
	SigData = "data"
)

// ProbeResult is everything probing learned from one device's bytes.
type ProbeResult struct {
	// Signatures are every signature found on the whole device and inside
	// each partition, with offsets relative to the start of the device.
	// For LVM2_member, Label is the volume group name; for md, the array name.
	Signatures []Signature
	// Partitions come from the GPT (or, failing that, the MBR) on the device,
	// with PartLabel, TypeGUID, PartUUID and the filesystem found inside.
	// Name and Path are empty: the caller knows the kernel names.
	Partitions []Partition
	// TableSectorSize is the logical sector size the partition table was
	// written for, or 0 when there is no table.
	TableSectorSize int
}

// Probe returns the signatures on a device of size bytes with the given
// logical sector size: the whole device first, then each partition of its
// GPT or MBR, with Where set to "disk" or "partition N".
func Probe(r io.ReaderAt, size int64, sectorSize int) ([]Signature, error) {
	res, err := ProbeDevice(r, size, sectorSize)
	if err != nil {
		return nil, err
	}
	return res.Signatures, nil
}

// ProbeDevice is Probe plus the partition table that was found.
func ProbeDevice(r io.ReaderAt, size int64, sectorSize int) (ProbeResult, error) {
	var res ProbeResult
	if sectorSize != 512 && sectorSize != 4096 {
		return res, fmt.Errorf("probe: sector size %d: want 512 or 4096", sectorSize)
	}
	p := prober{r: r, size: size}
	sigs, err := p.whole(sectorSize, &res)
	if err != nil {
		return res, err
	}
	res.Signatures = sigs
	for i := range res.Partitions {
		part := &res.Partitions[i]
		if part.StartByte <= 0 || part.SizeBytes <= 0 || part.StartByte+part.SizeBytes > size {
			continue // a table pointing past the end: the table itself is reported
		}
		pp := prober{r: io.NewSectionReader(r, part.StartByte, part.SizeBytes), size: part.SizeBytes}
		where := fmt.Sprintf("partition %d", part.Number)
		psigs, err := pp.content(where)
		if err != nil {
			return res, fmt.Errorf("probe partition %d: %w", part.Number, err)
		}
		for j := range psigs {
			psigs[j].Offset += part.StartByte
			if part.FSType == "" {
				part.FSType, part.FSLabel, part.FSUUID = psigs[j].Type, psigs[j].Label, psigs[j].UUID
			}
		}
		res.Signatures = append(res.Signatures, psigs...)
	}
	if len(res.Signatures) == 0 {
		if off, ok := firstNonZero(r, size); ok {
			res.Signatures = append(res.Signatures, Signature{Type: SigData, Offset: off, Where: "disk"})
		}
	}
	return res, nil
}

// dataScan is how much of each end of a disk is checked for unexplained bytes.
const dataScan = 1 << 20

// firstNonZero reports the offset of the first non-zero byte in the first or last
// dataScan bytes of the device: where partition tables, boot sectors and filesystem
// headers of every kind live.
func firstNonZero(r io.ReaderAt, size int64) (int64, bool) {
	buf := make([]byte, dataScan)
	for _, start := range []int64{0, max(size-dataScan, 0)} {
		n, _ := r.ReadAt(buf[:min(int64(len(buf)), size-start)], start)
		for i, b := range buf[:n] {
			if b != 0 {
				return start + int64(i), true
			}
		}
	}
	return 0, false
}

// prober reads one region (a device or a partition).
type prober struct {
	r    io.ReaderAt
	size int64
}

// read returns n bytes at off, or nil when the region is too small. Short
// reads at the end of a device are not errors: the magic is simply absent.
func (p prober) read(off int64, n int) ([]byte, error) {
	if off < 0 || off+int64(n) > p.size {
		return nil, nil
	}
	b := make([]byte, n)
	got, err := p.r.ReadAt(b, off)
	if err != nil && !(errors.Is(err, io.EOF) && got == n) {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %d bytes at %d: %w", n, off, err)
	}
	return b, nil
}

// whole probes partition tables, then the content probers, on the device.
func (p prober) whole(sectorSize int, res *ProbeResult) ([]Signature, error) {
	var sigs []Signature
	// Try the declared sector size first, then the other one: an image written
	// for 4K sectors and probed as 512 (or the reverse) still has a table.
	for _, ss := range []int{sectorSize, 4096 + 512 - sectorSize} {
		gsigs, parts, err := p.gpt(ss)
		if err != nil {
			return nil, err
		}
		if len(gsigs) > 0 {
			sigs = append(sigs, gsigs...)
			res.Partitions, res.TableSectorSize = parts, ss
			break
		}
	}
	content, err := p.content("disk")
	if err != nil {
		return nil, err
	}
	mbr, err := p.read(0, 512)
	if err != nil {
		return nil, err
	}
	if mbr != nil && mbr[510] == 0x55 && mbr[511] == 0xaa {
		switch {
		case isProtectiveMBR(mbr):
			sigs = append(sigs, Signature{Type: SigPMBR, Offset: 510, Where: "disk"})
		case validMBR(mbr) && !hasType(content, SigVFAT): // a FAT boot sector is not a table
			sigs = append(sigs, Signature{Type: SigDOS, Offset: 510, Where: "disk"})
			if res.Partitions == nil {
				res.Partitions, res.TableSectorSize = mbrParts(mbr, sectorSize), sectorSize
			}
		}
	}
	return append(sigs, content...), nil
}

func hasType(sigs []Signature, t string) bool {
	for _, s := range sigs {
		if s.Type == t {
			return true
		}
	}
	return false
}

// content runs the filesystem, volume-manager and RAID probers.
func (p prober) content(where string) ([]Signature, error) {
	var sigs []Signature
	for _, probe := range []func() ([]Signature, error){
		p.ext, p.xfs, p.btrfs, p.vfat, p.swap, p.lvm, p.md, p.luks, p.iso9660, p.squashfs,
	} {
		s, err := probe()
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, s...)
	}
	for i := range sigs {
		sigs[i].Where = where
	}
	return sigs, nil
}

// cstr trims a fixed-size, NUL or space padded field.
func cstr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimSpace(string(b))
}

// uuidString formats 16 bytes as a UUID in on-disk (big-endian) byte order.
func uuidString(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// guidString formats a GPT GUID, whose first three fields are little-endian.
func guidString(b []byte) string {
	return strings.ToUpper(fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16]))
}

// gpt reads the primary header at LBA 1 and the backup header (where the
// primary says, else at the last LBA), and the entries of whichever is valid.
func (p prober) gpt(ss int) ([]Signature, []Partition, error) {
	var sigs []Signature
	primary, err := p.read(int64(ss), ss)
	if err != nil {
		return nil, nil, err
	}
	backupLBA := p.size/int64(ss) - 1
	var hdr []byte
	if h := validGPTHeader(primary); h != nil {
		hdr = h
		sigs = append(sigs, Signature{Type: SigGPT, Offset: int64(ss), Where: "disk"})
		if alt := int64(binary.LittleEndian.Uint64(h[32:40])); alt > 1 && alt <= backupLBA {
			backupLBA = alt
		}
	}
	backup, err := p.read(backupLBA*int64(ss), ss)
	if err != nil {
		return nil, nil, err
	}
	if h := validGPTHeader(backup); h != nil {
		sigs = append(sigs, Signature{Type: SigGPT, Offset: backupLBA * int64(ss), Where: "disk"})
		if hdr == nil {
			hdr = h
		}
	}
	if hdr == nil {
		return nil, nil, nil
	}
	parts, err := p.gptEntries(hdr, ss)
	return sigs, parts, err
}

// validGPTHeader returns the header bytes when the signature and CRC match.
func validGPTHeader(b []byte) []byte {
	if len(b) < 92 || string(b[0:8]) != "EFI PART" {
		return nil
	}
	n := binary.LittleEndian.Uint32(b[12:16])
	if n < 92 || int(n) > len(b) {
		return nil
	}
	h := append([]byte(nil), b[:n]...)
	want := binary.LittleEndian.Uint32(h[16:20])
	copy(h[16:20], []byte{0, 0, 0, 0})
	if crc32.ChecksumIEEE(h) != want {
		return nil
	}
	return b[:n]
}

func (p prober) gptEntries(hdr []byte, ss int) ([]Partition, error) {
	start := int64(binary.LittleEndian.Uint64(hdr[72:80]))
	count := int(binary.LittleEndian.Uint32(hdr[80:84]))
	esize := int(binary.LittleEndian.Uint32(hdr[84:88]))
	if esize < 128 || count <= 0 || count > 1024 {
		return nil, nil
	}
	b, err := p.read(start*int64(ss), count*esize)
	if err != nil || b == nil {
		return nil, err
	}
	var parts []Partition
	for i := 0; i < count; i++ {
		e := b[i*esize : (i+1)*esize]
		if bytes.Equal(e[0:16], make([]byte, 16)) {
			continue
		}
		first := int64(binary.LittleEndian.Uint64(e[32:40]))
		last := int64(binary.LittleEndian.Uint64(e[40:48]))
		u16 := make([]uint16, 36)
		for j := range u16 {
			u16[j] = binary.LittleEndian.Uint16(e[56+2*j:])
		}
		name := string(utf16.Decode(u16))
		if k := strings.IndexByte(name, 0); k >= 0 {
			name = name[:k]
		}
		parts = append(parts, Partition{
			Number:    i + 1,
			StartByte: first * int64(ss),
			SizeBytes: (last - first + 1) * int64(ss),
			PartLabel: name,
			TypeGUID:  guidString(e[0:16]),
			PartUUID:  guidString(e[16:32]),
		})
	}
	return parts, nil
}

func isProtectiveMBR(b []byte) bool {
	for i := 0; i < 4; i++ {
		if b[446+16*i+4] == 0xee {
			return true
		}
	}
	return false
}

// validMBR checks what blkid's dos prober checks: boot flags are 0 or 0x80
// and at least one entry is in use.
func validMBR(b []byte) bool {
	used := false
	for i := 0; i < 4; i++ {
		e := b[446+16*i:]
		if e[0] != 0 && e[0] != 0x80 {
			return false
		}
		if e[4] != 0 {
			used = true
		}
	}
	return used
}

// mbrParts returns the primary partitions (extended containers are skipped;
// logical partitions are not followed).
func mbrParts(b []byte, ss int) []Partition {
	var parts []Partition
	for i := 0; i < 4; i++ {
		e := b[446+16*i:]
		typ := e[4]
		lba := int64(binary.LittleEndian.Uint32(e[8:12]))
		n := int64(binary.LittleEndian.Uint32(e[12:16]))
		if typ == 0 || n == 0 || typ == 0x05 || typ == 0x0f || typ == 0x85 {
			continue
		}
		parts = append(parts, Partition{Number: i + 1, StartByte: lba * int64(ss), SizeBytes: n * int64(ss),
			TypeGUID: fmt.Sprintf("0x%02x", typ)})
	}
	return parts
}

// ext reads the ext2/3/4 superblock at 1024; the magic is at 0x438.
func (p prober) ext() ([]Signature, error) {
	sb, err := p.read(1024, 1024)
	if err != nil || sb == nil || binary.LittleEndian.Uint16(sb[56:58]) != 0xef53 {
		return nil, err
	}
	compat := binary.LittleEndian.Uint32(sb[92:96])
	incompat := binary.LittleEndian.Uint32(sb[96:100])
	roCompat := binary.LittleEndian.Uint32(sb[100:104])
	const (
		hasJournal       = 0x4
		ext3Incompat     = 0x2 | 0x4 | 0x10 // filetype, recover, meta_bg
		ext2ROCompat     = 0x1 | 0x2 | 0x4  // sparse_super, large_file, btree_dir
		journalDevIncomp = 0x8
	)
	typ := SigExt2
	switch {
	case incompat&journalDevIncomp != 0:
		typ = "jbd"
	case incompat&^ext3Incompat != 0 || roCompat&^ext2ROCompat != 0:
		typ = SigExt4
	case compat&hasJournal != 0:
		typ = SigExt3
	}
	return []Signature{{Type: typ, Offset: 1024 + 56, Label: cstr(sb[120:136]), UUID: uuidString(sb[104:120])}}, nil
}

func (p prober) xfs() ([]Signature, error) {
	sb, err := p.read(0, 512)
	if err != nil || sb == nil || string(sb[0:4]) != "XFSB" {
		return nil, err
	}
	return []Signature{{Type: SigXFS, Offset: 0, Label: cstr(sb[108:120]), UUID: uuidString(sb[32:48])}}, nil
}

// btrfs reports the primary superblock and every mirror (64 MiB, 256 GiB):
// a mirror left behind lets btrfs tools resurrect the filesystem.
func (p prober) btrfs() ([]Signature, error) {
	var sigs []Signature
	for _, off := range []int64{64 << 10, 64 << 20, 256 << 30} {
		sb, err := p.read(off, 4096)
		if err != nil {
			return nil, err
		}
		if sb == nil || string(sb[64:72]) != "_BHRfS_M" {
			continue
		}
		sigs = append(sigs, Signature{Type: SigBtrfs, Offset: off + 64, Label: cstr(sb[0x12b : 0x12b+256]), UUID: uuidString(sb[32:48])})
	}
	return sigs, nil
}

// vfat recognises FAT12/16/32 boot sectors by their BPB and type strings.
func (p prober) vfat() ([]Signature, error) {
	b, err := p.read(0, 512)
	if err != nil || b == nil || b[510] != 0x55 || b[511] != 0xaa {
		return nil, err
	}
	bps := binary.LittleEndian.Uint16(b[11:13])
	if bps < 512 || bps > 4096 || bps&(bps-1) != 0 || b[13] == 0 || b[16] == 0 {
		return nil, nil
	}
	var labelOff, serialOff, magicOff int
	switch {
	case string(b[82:90]) == "FAT32   ":
		labelOff, serialOff, magicOff = 71, 67, 82
	case strings.HasPrefix(string(b[54:62]), "FAT1"):
		labelOff, serialOff, magicOff = 43, 39, 54
	default:
		return nil, nil
	}
	label := cstr(b[labelOff : labelOff+11])
	if label == "NO NAME" {
		label = ""
	}
	s := b[serialOff : serialOff+4]
	uuid := fmt.Sprintf("%02X%02X-%02X%02X", s[3], s[2], s[1], s[0])
	return []Signature{{Type: SigVFAT, Offset: int64(magicOff), Label: label, UUID: uuid}}, nil
}

// swap looks at the end of the first page for each page size Linux uses.
func (p prober) swap() ([]Signature, error) {
	for _, page := range []int64{4096, 8192, 16384, 65536} {
		b, err := p.read(page-10, 10)
		if err != nil {
			return nil, err
		}
		if b == nil || (string(b) != "SWAPSPACE2" && string(b) != "SWAP-SPACE") {
			continue
		}
		hdr, err := p.read(1024, 64)
		if err != nil {
			return nil, err
		}
		s := Signature{Type: SigSwap, Offset: page - 10}
		if hdr != nil && string(b) == "SWAPSPACE2" {
			s.UUID, s.Label = uuidString(hdr[12:28]), cstr(hdr[28:44])
		}
		return []Signature{s}, nil
	}
	return nil, nil
}

// lvm finds the LVM2 label in one of the first four 512-byte sectors and
// reads the volume group name from the first metadata area's text.
func (p prober) lvm() ([]Signature, error) {
	for sector := int64(0); sector < 4; sector++ {
		lbl, err := p.read(sector*512, 512)
		if err != nil {
			return nil, err
		}
		if lbl == nil || string(lbl[0:8]) != "LABELONE" || string(lbl[24:32]) != "LVM2 001" {
			continue
		}
		s := Signature{Type: SigLVM, Offset: sector*512 + 24}
		hoff := int(binary.LittleEndian.Uint32(lbl[20:24]))
		if hoff >= 32 && hoff+32 <= 512 {
			uuid := string(lbl[hoff : hoff+32])
			s.UUID = lvmUUID(uuid)
			s.Label = p.lvmVGName(lbl[hoff+40:], sector*512)
		}
		return []Signature{s}, nil
	}
	return nil, nil
}

// lvmUUID formats a 32-character PV UUID the way blkid does (6-4-4-4-4-4-6).
func lvmUUID(u string) string {
	if len(u) != 32 {
		return u
	}
	return u[0:6] + "-" + u[6:10] + "-" + u[10:14] + "-" + u[14:18] + "-" + u[18:22] + "-" + u[22:26] + "-" + u[26:32]
}

// lvmVGName walks the PV header's disk location lists (data areas, then
// metadata areas) and reads the text of the newest metadata, whose first
// token is the VG name. It returns "" when the PV is in no VG.
func (p prober) lvmVGName(areas []byte, _ int64) string {
	pos := 0
	next := func() (off, size uint64, ok bool) {
		if pos+16 > len(areas) {
			return 0, 0, false
		}
		off = binary.LittleEndian.Uint64(areas[pos:])
		size = binary.LittleEndian.Uint64(areas[pos+8:])
		pos += 16
		return off, size, off != 0 || size != 0
	}
	for {
		if _, _, ok := next(); !ok {
			break
		}
	}
	mdaOff, _, ok := next()
	if !ok {
		return ""
	}
	hdr, err := p.read(int64(mdaOff), 512)
	if err != nil || hdr == nil || string(hdr[4:20]) != " LVM2 x[5A%r0N*>" {
		return ""
	}
	textOff := binary.LittleEndian.Uint64(hdr[40:48])
	textSize := binary.LittleEndian.Uint64(hdr[48:56])
	if textOff == 0 || textSize == 0 || textSize > 1<<20 {
		return ""
	}
	text, err := p.read(int64(mdaOff+textOff), int(textSize))
	if err != nil || text == nil {
		return ""
	}
	name, _, found := strings.Cut(string(text), " {")
	if !found || strings.ContainsAny(name, " \n\t") {
		return ""
	}
	return name
}

// md finds Linux software RAID superblocks: 0.90 and 1.0 near the end,
// 1.1 at the start and 1.2 at 4 KiB.
func (p prober) md() ([]Signature, error) {
	const magic = 0xa92b4efc
	var offs []int64
	if p.size >= 128<<10 {
		offs = append(offs, (p.size&^(64<<10-1))-64<<10) // 0.90
	}
	if p.size >= 16<<10 {
		offs = append(offs, ((p.size>>9)-16)&^7<<9) // 1.0
	}
	offs = append(offs, 0, 4096) // 1.1, 1.2
	for _, off := range offs {
		b, err := p.read(off, 256)
		if err != nil {
			return nil, err
		}
		if b == nil || binary.LittleEndian.Uint32(b[0:4]) != magic {
			continue
		}
		s := Signature{Type: SigMD, Offset: off}
		if binary.LittleEndian.Uint32(b[4:8]) == 1 {
			s.UUID = uuidString(b[16:32])
			s.Label = cstr(b[32:64])
		}
		return []Signature{s}, nil
	}
	return nil, nil
}

func (p prober) luks() ([]Signature, error) {
	b, err := p.read(0, 512)
	if err != nil || b == nil || string(b[0:6]) != "LUKS\xba\xbe" {
		return nil, err
	}
	s := Signature{Type: SigLUKS, Offset: 0, UUID: cstr(b[168:208])}
	if binary.BigEndian.Uint16(b[6:8]) == 2 {
		s.Label = cstr(b[24:72])
	}
	return []Signature{s}, nil
}

func (p prober) iso9660() ([]Signature, error) {
	b, err := p.read(32768, 2048)
	if err != nil || b == nil || string(b[1:6]) != "CD001" {
		return nil, err
	}
	// blkid's UUID for iso9660 is the volume creation time, YYYYMMDDHHMMSScc.
	var uuid string
	if d := b[813:829]; d[0] != 0 && d[0] != '0' {
		uuid = fmt.Sprintf("%s-%s-%s-%s-%s-%s-%s", d[0:4], d[4:6], d[6:8], d[8:10], d[10:12], d[12:14], d[14:16])
	}
	return []Signature{{Type: SigISO9660, Offset: 32769, Label: cstr(b[40:72]), UUID: uuid}}, nil
}

func (p prober) squashfs() ([]Signature, error) {
	b, err := p.read(0, 4)
	if err != nil || b == nil || string(b) != "hsqs" {
		return nil, err
	}
	return []Signature{{Type: SigSquashfs, Offset: 0}}, nil
}
