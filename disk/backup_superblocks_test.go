package disk

import (
	"encoding/binary"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// extTestSuperblock is the 1024-byte ext superblock with the fields the
// backup computation reads.
func extTestSuperblock(blocks, bpg uint32, logBS, first, roCompat uint32) []byte {
	sb := make([]byte, 1024)
	le := binary.LittleEndian
	le.PutUint32(sb[4:], blocks)
	le.PutUint32(sb[20:], first)
	le.PutUint32(sb[24:], logBS)
	le.PutUint32(sb[32:], bpg)
	le.PutUint16(sb[56:], 0xef53)
	le.PutUint32(sb[100:], roCompat)
	return sb
}

func TestExtBackups(t *testing.T) {
	offsets := func(rs []Range) (out []int64) {
		for _, r := range rs {
			out = append(out, r.Start)
		}
		return out
	}
	// 1 GiB, 4 KiB blocks, sparse_super: what mke2fs makes (dumpe2fs: 32768, 98304, 163840, 229376).
	rs, note := extBackups(extTestSuperblock(262144, 32768, 2, 0, 1), 1<<30)
	if want := []int64{32768 * 4096, 98304 * 4096, 163840 * 4096, 229376 * 4096}; !reflect.DeepEqual(offsets(rs), want) || note != "" {
		t.Errorf("4K sparse_super: %v (%s), want %v", offsets(rs), note, want)
	}
	// 1 KiB blocks start at block 1: backups at 8193, 24577, 40961, 57345 (dumpe2fs on a 64 MiB fs).
	rs, _ = extBackups(extTestSuperblock(65536, 8192, 0, 1, 1), 64<<20)
	if want := []int64{8193 << 10, 24577 << 10, 40961 << 10, 57345 << 10}; !reflect.DeepEqual(offsets(rs), want) {
		t.Errorf("1K sparse_super: %v, want %v", offsets(rs), want)
	}
	if rs[0].Size != fsBackupSpan {
		t.Errorf("1K backup span %d, want %d", rs[0].Size, fsBackupSpan)
	}
	// Powers of 3, 5 and 7 over 1000 groups.
	rs, _ = extBackups(extTestSuperblock(1000*32768, 32768, 2, 0, 1), 1<<50)
	want := []int64{1, 3, 9, 27, 81, 243, 729, 5, 25, 125, 625, 7, 49, 343}
	if len(rs) != len(want) {
		t.Errorf("1000 groups: %d backups, want %d", len(rs), len(want))
	}
	// sparse_super2 names its two groups.
	sb := extTestSuperblock(100*32768, 32768, 2, 0, 0)
	binary.LittleEndian.PutUint32(sb[92:], 0x200)
	binary.LittleEndian.PutUint32(sb[0x24c:], 1)
	binary.LittleEndian.PutUint32(sb[0x250:], 99)
	if rs, _ := extBackups(sb, 1<<50); !reflect.DeepEqual(offsets(rs), []int64{32768 * 4096, 99 * 32768 * 4096}) {
		t.Errorf("sparse_super2: %v", offsets(rs))
	}
	// No sparse_super, hostile geometry: every group, bounded.
	rs, note = extBackups(extTestSuperblock(0xffffffff, 8, 0, 1, 0), 1<<60)
	if len(rs) != maxBackups || !strings.Contains(note, "only the first") {
		t.Errorf("hostile non-sparse: %d backups, note %q", len(rs), note)
	}
	// Backups past the container (a superblock claiming more) are dropped.
	if rs, _ := extBackups(extTestSuperblock(262144, 32768, 2, 0, 1), 200<<20); len(rs) != 1 {
		t.Errorf("fs larger than its 200 MiB container: %v", offsets(rs))
	}
	for name, sb := range map[string][]byte{
		"block size": extTestSuperblock(262144, 32768, 30, 0, 1),
		"bpg zero":   extTestSuperblock(262144, 0, 2, 0, 1),
		"bpg huge":   extTestSuperblock(262144, 1<<31, 2, 0, 1),
		"no magic":   make([]byte, 1024),
	} {
		if rs, note := extBackups(sb, 1<<40); rs != nil || note == "" {
			t.Errorf("%s: %v %q", name, rs, note)
		}
	}
}

func xfsTestSuperblock(bs uint32, agblocks, agcount uint32, sect uint16) []byte {
	sb := make([]byte, 512)
	be := binary.BigEndian
	copy(sb, "XFSB")
	be.PutUint32(sb[4:], bs)
	be.PutUint32(sb[84:], agblocks)
	be.PutUint32(sb[88:], agcount)
	be.PutUint16(sb[102:], sect)
	return sb
}

func TestXFSBackups(t *testing.T) {
	rs, note := xfsBackups(xfsTestSuperblock(4096, 65536, 4, 512), 1<<30)
	if len(rs) != 3 || rs[0] != (Range{256 << 20, xfsAGHeadSpan}) || rs[2].Start != 768<<20 || note != "" {
		t.Errorf("4 AGs: %v %q", rs, note)
	}
	rs, note = xfsBackups(xfsTestSuperblock(4096, 1, 0xffffffff, 512), 1<<62)
	if len(rs) != maxBackups-1 || note == "" || rs[0].Size != 4096 {
		t.Errorf("hostile agcount: %d %q, span %d (want capped, one-block AGs)", len(rs), note, rs[0].Size)
	}
	for _, sb := range [][]byte{xfsTestSuperblock(3000, 1, 1, 512), xfsTestSuperblock(4096, 0, 4, 512), xfsTestSuperblock(4096, 10, 4, 100)} {
		if rs, _ := xfsBackups(sb, 1<<30); rs != nil {
			t.Errorf("implausible geometry accepted: %v", rs)
		}
	}
}

func TestLUKSRegions(t *testing.T) {
	be := binary.BigEndian
	d := newMemDisk(64 << 20)
	h := make([]byte, 4096)
	copy(h, "LUKS\xba\xbe")
	be.PutUint16(h[6:], 1)
	be.PutUint32(h[108:], 32) // key bytes
	for i, sector := range []uint32{8, 0, 4000} {
		ks := h[208+48*i:]
		be.PutUint32(ks[40:], sector)
		be.PutUint32(ks[44:], 4000)
	}
	d.WriteAt(h, 0)
	rs, _ := luksRegions(d, d.size)
	if want := []Range{{0, 4096}, {8 * 512, 131072}, {4000 * 512, 131072}}; !reflect.DeepEqual(rs, want) {
		t.Errorf("LUKS1: %v, want %v", rs, want)
	}

	// LUKS2 known only by its secondary header at 64 KiB (hdr_size 64 KiB).
	d = newMemDisk(64 << 20)
	s := make([]byte, 4096)
	copy(s, "SKUL\xba\xbe")
	be.PutUint16(s[6:], 2)
	be.PutUint64(s[8:], 64<<10)
	d.WriteAt(s, 64<<10)
	js, _ := json.Marshal(map[string]any{"keyslots": map[string]any{
		"0": map[string]any{"area": map[string]string{"offset": "131072", "size": "258048"}},
		"1": map[string]any{"area": map[string]string{"offset": "33554432", "size": "999999999999"}},
	}})
	d.WriteAt(js, 64<<10+4096)
	rs, _ = luksRegions(d, d.size)
	got := map[Range]bool{}
	for _, r := range rs {
		got[r] = true
	}
	if !got[Range{0, 128 << 10}] || !got[Range{131072, 258048}] || !got[Range{33554432, 64<<20 - 33554432}] || len(rs) != 3 {
		t.Errorf("LUKS2 from the secondary header: %v", rs)
	}
	be.PutUint64(s[8:], 12345) // not a valid header size
	d.WriteAt(s, 64<<10)
	if rs, note := luksRegions(d, d.size); len(rs) != 1 || rs[0] != (Range{0, 8 << 20}) || note == "" {
		t.Errorf("bad hdr_size: %v %q", rs, note)
	}
}

// TestPlanWipeMD90 finds a 0.90 member (superblock near the end, data from
// 0) holding a GPT whose partition holds an ext4 with backups.
func TestPlanWipeMD90(t *testing.T) {
	const size = 1 << 30
	d := newMemDisk(size)
	le := binary.LittleEndian
	sbOff := int64(size&^(64<<10-1)) - 64<<10
	sb := make([]byte, 256)
	le.PutUint32(sb[0:], 0xa92b4efc)
	le.PutUint32(sb[28:], 1) // raid1
	d.WriteAt(sb, sbOff)
	// An MBR partition at 1 MiB, 512 MiB long, inside the array data.
	mbr := make([]byte, 512)
	le.PutUint32(mbr[446+8:], 2048)
	le.PutUint32(mbr[446+12:], 1<<20)
	mbr[446+4], mbr[510], mbr[511] = 0x83, 0x55, 0xaa
	d.WriteAt(mbr, 0)
	d.WriteAt(extTestSuperblock(131072, 32768, 2, 0, 1), 1<<20+1024)
	plan, err := PlanWipe(d, size, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, f := range plan.Found {
		kinds[f.Kind]++
		if f.Kind == "fs" && f.Backups != 2 {
			t.Errorf("fs %+v, want 2 backups (groups 1 and 3)", f)
		}
	}
	if kinds["md"] != 1 || kinds["fs"] != 1 {
		t.Errorf("found %+v", plan.Found)
	}
	in := func(off int64) bool {
		for _, r := range plan.Regions {
			if off >= r.Start && off < r.Start+r.Size {
				return true
			}
		}
		return false
	}
	if !in(1<<20+32768*4096) || !in(1<<20+98304*4096) || in(1<<20+65536*4096) {
		t.Errorf("backups of the ext4 inside the md partition: regions %v", plan.Regions)
	}
}
