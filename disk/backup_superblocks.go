package disk

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Filesystems keep copies of their superblock away from the start, so that a
// damaged start can be repaired: `e2fsck -b 32768` brings back an ext4 whose
// first 8 MiB were zeroed, and xfs_repair finds the secondary superblocks of
// its allocation groups. A complete wipe clears those copies too. Where they
// are is computed from the filesystem's own primary superblock, read before
// the wipe writes anything; every count read from it is bounded.

const (
	// maxBackups bounds the backup locations taken from one superblock (an
	// ext2 without sparse_super has one per block group).
	maxBackups = 1 << 16
	// fsBackupSpan is the least cleared at each backup location.
	fsBackupSpan = 4096
	// xfsAGHeadSpan is the least cleared at the start of each xfs allocation
	// group: the four header sectors and the btree root blocks after them,
	// which on v5 filesystems all carry the filesystem UUID.
	xfsAGHeadSpan = 64 << 10
)

// BackupSuperblocks returns the byte ranges (from the start of r) of the
// backup superblocks of the filesystem of type fsType (ext2, ext3, ext4 or
// xfs; btrfs mirrors sit at fixed offsets and are cleared with every
// container) whose primary superblock is at the start of r, size bytes long.
// The note says what was bounded or could not be read.
func BackupSuperblocks(r io.ReaderAt, size int64, fsType string) ([]Range, string) {
	return backupSuperblocks(r, size, fsType)
}

func backupSuperblocks(r io.ReaderAt, size int64, fsType string) ([]Range, string) {
	p := prober{r: r, size: size}
	switch fsType {
	case SigExt2, SigExt3, SigExt4, "jbd":
		sb, err := p.read(1024, 1024)
		if err != nil || sb == nil {
			return nil, fmt.Sprintf("read ext superblock: %v", err)
		}
		return extBackups(sb, size)
	case SigXFS:
		sb, err := p.read(0, 512)
		if err != nil || sb == nil {
			return nil, fmt.Sprintf("read xfs superblock: %v", err)
		}
		return xfsBackups(sb, size)
	}
	return nil, ""
}

// extBackups lists the backup superblocks of an ext2/3/4 superblock sb (the
// 1024 bytes at offset 1024): in groups 1 and the powers of 3, 5 and 7 with
// sparse_super, in the two groups s_backup_bgs names with sparse_super2, in
// every group otherwise.
func extBackups(sb []byte, size int64) ([]Range, string) {
	le := binary.LittleEndian
	if len(sb) < 1024 || le.Uint16(sb[56:58]) != 0xef53 {
		return nil, "no ext superblock"
	}
	logBS := le.Uint32(sb[24:28])
	if logBS > 6 {
		return nil, fmt.Sprintf("ext block size 2^%d KiB is not plausible", logBS)
	}
	bs := int64(1024) << logBS
	blocks := int64(le.Uint32(sb[4:8]))
	const incompat64bit = 0x80
	if le.Uint32(sb[96:100])&incompat64bit != 0 {
		blocks |= int64(le.Uint32(sb[0x150:0x154])) << 32
	}
	first := int64(le.Uint32(sb[20:24]))
	bpg := int64(le.Uint32(sb[32:36]))
	if bpg < 8 || bpg > 8*bs || blocks <= first || first > 1 {
		return nil, fmt.Sprintf("ext geometry (%d blocks, %d per group, first %d) is not plausible", blocks, bpg, first)
	}
	groups := (blocks - first + bpg - 1) / bpg
	const (
		compatSparseSuper2   = 0x200
		roCompatSparseSuper  = 0x1
		maxGroupsForPowerSum = 1 << 32
	)
	var gs []int64
	var note string
	switch {
	case le.Uint32(sb[92:96])&compatSparseSuper2 != 0:
		for _, g := range []int64{int64(le.Uint32(sb[0x24c:])), int64(le.Uint32(sb[0x250:]))} {
			if g > 0 && g < groups {
				gs = append(gs, g)
			}
		}
	case le.Uint32(sb[100:104])&roCompatSparseSuper != 0:
		if groups > 1 {
			gs = append(gs, 1)
		}
		for _, base := range []int64{3, 5, 7} {
			for g := base; g < groups && g < maxGroupsForPowerSum; g *= base {
				gs = append(gs, g)
			}
		}
	default:
		for g := int64(1); g < groups; g++ {
			if len(gs) == maxBackups {
				note = fmt.Sprintf("%d block groups without sparse_super: only the first %d backups are cleared", groups, maxBackups)
				break
			}
			gs = append(gs, g)
		}
	}
	span := max(bs, fsBackupSpan)
	var out []Range
	for _, g := range gs {
		off := (g*bpg + first) * bs
		if off >= size {
			continue // a superblock saying the filesystem is larger than its container
		}
		out = append(out, Range{off, span})
	}
	return out, note
}

// xfsBackups lists the start of every allocation group after the first:
// the secondary superblock, AGF, AGI and AGFL, and the btree roots.
func xfsBackups(sb []byte, size int64) ([]Range, string) {
	be := binary.BigEndian
	if len(sb) < 512 || string(sb[0:4]) != "XFSB" {
		return nil, "no xfs superblock"
	}
	bs := int64(be.Uint32(sb[4:8]))
	agblocks := int64(be.Uint32(sb[84:88]))
	agcount := int64(be.Uint32(sb[88:92]))
	sect := int64(be.Uint16(sb[102:104]))
	if bs < 512 || bs > 65536 || bs&(bs-1) != 0 || sect < 512 || sect > 32768 || agblocks <= 0 || agcount <= 0 {
		return nil, fmt.Sprintf("xfs geometry (block %d, sector %d, %d AGs of %d blocks) is not plausible", bs, sect, agcount, agblocks)
	}
	var note string
	if agcount > maxBackups {
		note = fmt.Sprintf("%d allocation groups: only the first %d are cleared", agcount, maxBackups)
		agcount = maxBackups
	}
	agBytes := agblocks * bs
	span := min(max(4*sect, 16*bs, xfsAGHeadSpan), agBytes)
	var out []Range
	for ag := int64(1); ag < agcount; ag++ {
		off := ag * agBytes
		if off >= size {
			break
		}
		out = append(out, Range{off, span})
	}
	return out, note
}

// luksRegions returns the LUKS header, keyslot and backup header ranges of a
// LUKS1 or LUKS2 volume at the start of r. A LUKS2 volume whose primary
// header was damaged is still found by its secondary header.
func luksRegions(r io.ReaderAt, size int64) ([]Range, string) {
	p := prober{r: r, size: size}
	b, err := p.read(0, 4096)
	if err != nil || b == nil {
		return nil, ""
	}
	be := binary.BigEndian
	if string(b[0:6]) == "LUKS\xba\xbe" && be.Uint16(b[6:8]) == 1 {
		return luks1Regions(b)
	}
	hdrAt := int64(-1)
	if string(b[0:6]) == "LUKS\xba\xbe" && be.Uint16(b[6:8]) == 2 {
		hdrAt = 0
	} else {
		for off := int64(16 << 10); off <= 4<<20; off *= 2 {
			if s, err := p.read(off, 4096); err == nil && s != nil && string(s[0:6]) == "SKUL\xba\xbe" && be.Uint16(s[6:8]) == 2 {
				hdrAt, b = off, s
				break
			}
		}
	}
	if hdrAt < 0 {
		return nil, ""
	}
	hdrSize := int64(be.Uint64(b[8:16]))
	valid := false
	for s := int64(16 << 10); s <= 4<<20; s *= 2 {
		valid = valid || hdrSize == s
	}
	if !valid {
		// Clear every place a secondary header may be; the keyslots cannot be found.
		return []Range{{0, 8 << 20}}, fmt.Sprintf("LUKS2 header size %d is not valid: keyslots unknown, first 8 MiB cleared", hdrSize)
	}
	out := []Range{{0, 2 * hdrSize}}
	js, err := p.read(hdrAt+4096, int(hdrSize-4096))
	if err != nil || js == nil {
		return out, "LUKS2 JSON area unreadable: keyslot areas unknown"
	}
	if i := indexByte(js, 0); i >= 0 {
		js = js[:i]
	}
	var meta struct {
		Keyslots map[string]struct {
			Area struct {
				Offset string `json:"offset"`
				Size   string `json:"size"`
			} `json:"area"`
		} `json:"keyslots"`
	}
	if err := json.Unmarshal(js, &meta); err != nil {
		return out, fmt.Sprintf("LUKS2 JSON: %v: keyslot areas unknown", err)
	}
	note := ""
	for id, ks := range meta.Keyslots {
		off, err1 := strconv.ParseInt(ks.Area.Offset, 10, 64)
		n, err2 := strconv.ParseInt(ks.Area.Size, 10, 64)
		if err1 != nil || err2 != nil || off < 0 || n <= 0 || off > size {
			note = fmt.Sprintf("LUKS2 keyslot %s has no usable area", id)
			continue
		}
		out = append(out, Range{off, min(n, size-off)})
	}
	return out, note
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// luks1Regions: the 592-byte header and the eight keyslots' key material
// (key_bytes × stripes, from the sector each names).
func luks1Regions(b []byte) ([]Range, string) {
	be := binary.BigEndian
	out := []Range{{0, 4096}}
	keyBytes := int64(be.Uint32(b[108:112]))
	if keyBytes <= 0 || keyBytes > 512 {
		return []Range{{0, 8 << 20}}, fmt.Sprintf("LUKS1 key size %d is not valid: first 8 MiB cleared", keyBytes)
	}
	for i := 0; i < 8; i++ {
		ks := b[208+48*i : 208+48*(i+1)]
		off := int64(be.Uint32(ks[40:44])) * 512
		stripes := int64(be.Uint32(ks[44:48]))
		if off == 0 || stripes <= 0 || stripes > 1<<20 {
			continue
		}
		n := (keyBytes*stripes + 4095) / 4096 * 4096
		out = append(out, Range{off, n})
	}
	return out, ""
}
