package disk

import (
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"
)

// memDisk is a sparse in-memory disk: large crafted layouts without large allocations.
type memDisk struct {
	size  int64
	pages map[int64][]byte
}

const memPage = 4096

func newMemDisk(size int64) *memDisk { return &memDisk{size: size, pages: map[int64][]byte{}} }

func (m *memDisk) ReadAt(b []byte, off int64) (int, error) {
	if off >= m.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(b) && off+int64(n) < m.size {
		o := off + int64(n)
		pg, in := o/memPage, o%memPage
		c := min(len(b)-n, int(memPage-in), int(m.size-o))
		if p := m.pages[pg]; p != nil {
			copy(b[n:n+c], p[in:])
		} else {
			clear(b[n : n+c])
		}
		n += c
	}
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memDisk) WriteAt(b []byte, off int64) (int, error) {
	for n := 0; n < len(b); {
		o := off + int64(n)
		pg, in := o/memPage, o%memPage
		p := m.pages[pg]
		if p == nil {
			p = make([]byte, memPage)
			m.pages[pg] = p
		}
		c := copy(p[in:], b[n:])
		n += c
	}
	return len(b), nil
}

// zero clears [off, off+n), dropping whole pages.
func (m *memDisk) zero(off, n int64) {
	for o := off; o < off+n; {
		pg, in := o/memPage, o%memPage
		c := min(memPage-in, off+n-o)
		if p := m.pages[pg]; p != nil {
			if in == 0 && c == memPage {
				delete(m.pages, pg)
			} else {
				clear(p[in : in+c])
			}
		}
		o += c
	}
}

// testPVUUID is 32 characters, as in a label.
const testPVUUID = "r2s1lylasz3fro5LZpxcTRy14llDIdRx"

// writeTestPV writes an LVM2 label (sector 1), a PV header with one data
// area and one 1 MiB metadata area at 4 KiB, and the metadata text. With
// wrap, the text is placed so that it runs past the end of the area and
// continues after the area header, as LVM's circular buffer does.
func writeTestPV(d io.WriterAt, at int64, text string, wrap bool) {
	le := binary.LittleEndian
	lbl := make([]byte, 512)
	copy(lbl[0:], lvmLabelMagic)
	le.PutUint64(lbl[8:], 1)
	le.PutUint32(lbl[20:], 32)
	copy(lbl[24:], lvmLabelType)
	copy(lbl[32:], testPVUUID)
	le.PutUint64(lbl[64:], 1<<30) // device size
	le.PutUint64(lbl[72:], 1<<20) // data area at 1 MiB
	// data list terminator at 88, metadata area at 104
	le.PutUint64(lbl[104:], 4096)
	le.PutUint64(lbl[112:], 1<<20-4096)
	d.WriteAt(lbl, at+512)
	const mdaSize = 1<<20 - 4096
	hdr := make([]byte, 512)
	copy(hdr[4:], lvmMDAMagic)
	le.PutUint32(hdr[20:], 1)
	le.PutUint64(hdr[24:], 4096)
	le.PutUint64(hdr[32:], mdaSize)
	off := int64(512)
	if wrap {
		off = mdaSize - int64(len(text))/2
	}
	le.PutUint64(hdr[40:], uint64(off))
	le.PutUint64(hdr[48:], uint64(len(text)))
	d.WriteAt(hdr, at+4096)
	first := min(int64(len(text)), mdaSize-off)
	d.WriteAt([]byte(text[:first]), at+4096+off)
	if first < int64(len(text)) {
		d.WriteAt([]byte(text[first:]), at+4096+512)
	}
}

// testVGText is a VG with a linear LV, a two-segment LV, an LV striped over
// this PV and pv1 (on another disk), an LV wholly on pv1 and a raid1 LV
// whose images sit on both PVs. Extents are 4 MiB; pe_start is 1 MiB.
const testVGText = `HostVG {
	id = "MGD7GI-cCuy-XQQA-HbJ4-easV-BIRO-XsdILJ"
	seqno = 7
	format = "lvm2"   # informational
	status = ["RESIZEABLE", "READ", "WRITE"]
	extent_size = 8192
	physical_volumes {
		pv0 {
			id = "r2s1ly-lasz-3fro-5LZp-xcTR-y14l-lDIdRx"
			device = "/dev/sda3"	# Hint only
			pe_start = 2048
			pe_count = 255
		}
		pv1 {
			id = "OTHERP-V000-0000-0000-0000-0000-000001"
			device = "/dev/sdb"
			pe_start = 2048
			pe_count = 255
		}
	}
	logical_volumes {
		Config {
			id = "cfg"
			status = ["READ", "WRITE", "VISIBLE"]
			segment_count = 1
			segment1 {
				start_extent = 0
				extent_count = 8
				type = "striped"
				stripe_count = 1
				stripes = ["pv0", 10]
			}
		}
		Data {
			status = ["READ", "WRITE", "VISIBLE"]
			segment2 {
				start_extent = 4
				extent_count = 2
				type = "striped"
				stripe_count = 1
				stripes = ["pv0", 40]
			}
			segment1 {
				start_extent = 0
				extent_count = 4
				type = "striped"
				stripe_count = 1
				stripes = ["pv0", 30]
			}
		}
		Striped {
			status = ["READ", "WRITE", "VISIBLE"]
			segment1 {
				start_extent = 0
				extent_count = 4
				type = "striped"
				stripe_count = 2
				stripe_size = 128
				stripes = ["pv0", 50, "pv1", 0]
			}
		}
		Elsewhere {
			status = ["READ", "WRITE", "VISIBLE"]
			segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv1", 10] }
		}
		Mirror {
			status = ["READ", "WRITE", "VISIBLE"]
			segment1 { start_extent = 0 extent_count = 2 type = "raid1" device_count = 2
				raids = ["Mirror_rmeta_0", "Mirror_rimage_0", "Mirror_rmeta_1", "Mirror_rimage_1"] }
		}
		Mirror_rimage_0 { status = ["READ"] segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv0", 60] } }
		Mirror_rimage_1 { status = ["READ"] segment1 { start_extent = 0 extent_count = 2 type = "striped" stripe_count = 1 stripes = ["pv1", 60] } }
		Mirror_rmeta_0 { status = ["READ"] segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 62] } }
		Mirror_rmeta_1 { status = ["READ"] segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv1", 62] } }
	}
}
# Generated by LVM2: "quoted \"text\"" in a comment
contents = "Text Format Volume Group"
version = 1
description = "a \"quoted\" description"
creation_time = 1796122206
`

func TestParseVGMetadata(t *testing.T) {
	vg, err := ParseVGMetadata(testVGText)
	if err != nil {
		t.Fatal(err)
	}
	if vg.Name != "HostVG" || vg.Seqno != 7 || vg.ExtentSize != 4<<20 || len(vg.PVs) != 2 || vg.PVs[1].PEStart != 1<<20 {
		t.Fatalf("VG %+v", vg)
	}
	lvs := map[string]LV{}
	for _, lv := range vg.LVs {
		lvs[lv.Name] = lv
	}
	if d := lvs["Data"]; len(d.Segments) != 2 || d.Segments[0].Stripes[0].StartPE != 30 || d.Segments[1].StartExtent != 4 {
		t.Errorf("Data segments not sorted by start extent: %+v", d.Segments)
	}
	if s := lvs["Striped"].Segments[0]; s.StripeSize != 64<<10 || len(s.Stripes) != 2 || s.Stripes[1] != (LVStripe{"pv1", 0}) {
		t.Errorf("Striped: %+v", s)
	}
	if m := lvs["Mirror"]; !m.Visible || strings.Join(m.Segments[0].Uses, ",") != "Mirror_rmeta_0,Mirror_rimage_0,Mirror_rmeta_1,Mirror_rimage_1" {
		t.Errorf("Mirror: %+v", m)
	}
	if lvs["Mirror_rimage_0"].Visible {
		t.Error("a sub-LV is visible")
	}
}

func TestParseVGMetadataHostile(t *testing.T) {
	for name, text := range map[string]string{
		"deep":         strings.Repeat("a {", 1000) + strings.Repeat("}", 1000),
		"unclosed":     "vg { extent_size = 8192 physical_volumes {",
		"unterminated": `vg { id = "abc`,
		"no vg":        "contents = \"x\"\n",
		"bad extent":   "vg { extent_size = -5 physical_volumes { } }",
		"huge extent":  "vg { extent_size = 9223372036854775807 physical_volumes { } }",
		"stray":        "vg { = }",
		"list":         "vg { extent_size = 8192 a = [1, 2",
	} {
		if _, err := ParseVGMetadata(text); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// TestPlanWipeLVM crafts a 1 GiB disk that is one PV and checks that the
// planned regions reach every LV mapped on it (both segments, striped
// chunks, the backup superblocks of an ext4 inside an LV), and that the LV
// extents on the other PV are reported, not invented.
func TestPlanWipeLVM(t *testing.T) {
	d := newMemDisk(1 << 30)
	writeTestPV(d, 0, testVGText, false)
	const pe0, ext = 1 << 20, 4 << 20
	phys := func(pe, off int64) int64 { return pe0 + pe*ext + off }
	// An ext4 in Config (PE 10-17, 32 MiB) with 4 KiB blocks and 1024 blocks
	// per group: 8 groups, backups in groups 1, 3, 5, 7 at 4, 12, 20, 28 MiB.
	sb := extTestSuperblock(8192, 1024, 2, 0, 1)
	d.WriteAt(sb, phys(10, 1024))
	plan, err := PlanWipe(d, d.size, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	covered := func(off int64) bool {
		for _, r := range plan.Regions {
			if off >= r.Start && off < r.Start+r.Size {
				return true
			}
		}
		return false
	}
	for name, off := range map[string]int64{
		"PV label":                 512,
		"Config start":             phys(10, 0),
		"Config end":               phys(18, -1),
		"Config ext4 backup g1":    phys(10, 4<<20),
		"Config ext4 backup g7":    phys(10, 28<<20),
		"Data segment 1 start":     phys(30, 0),
		"Data segment 2 start":     phys(40, 0),
		"Data LV end (segment 2)":  phys(42, -1),
		"Striped area on this PV":  phys(50, 0),
		"Striped area end":         phys(52, -1),
		"raid1 image on this PV":   phys(60, 0),
		"raid1 image end":          phys(62, -1),
		"raid1 metadata":           phys(62, 0),
		"btrfs mirror of the disk": 64 << 20,
	} {
		if !covered(off) {
			t.Errorf("%s (offset %d) not in the plan", name, off)
		}
	}
	for name, off := range map[string]int64{
		"Config between backups": phys(10, 8<<20),
		"Data segment 1 middle":  phys(32, 2<<20),
		"unallocated PE 20":      phys(20, 0),
	} {
		if covered(off) {
			t.Errorf("%s (offset %d) is wiped, want only signature regions", name, off)
		}
	}
	var lvNames []string
	for _, f := range plan.Found {
		if f.Kind == "lv" && f.Offset >= 0 {
			lvNames = append(lvNames, f.Name)
		}
	}
	if got := strings.Join(lvNames, " "); got != "HostVG/Config HostVG/Data HostVG/Striped HostVG/Mirror_rimage_0 HostVG/Mirror_rmeta_0" {
		t.Errorf("LVs found on this disk: %s", got)
	}
	remote := map[string]bool{}
	for _, r := range plan.Remote {
		remote[r.LV] = true
		if r.PVUUID != "OTHERP-V000-0000-0000-0000-0000-000001" {
			t.Errorf("remote segment on PV %q", r.PVUUID)
		}
	}
	if !remote["Striped"] || !remote["Elsewhere"] || !remote["Mirror_rimage_1"] || remote["Config"] {
		t.Errorf("remote LVs %v", remote)
	}
	if plan.Bytes() > 128<<20 {
		t.Errorf("plan clears %d MiB of a 1 GiB PV", plan.Bytes()>>20)
	}
}

// TestReadPVWrappedText puts the metadata text across the end of the
// circular metadata area.
func TestReadPVWrappedText(t *testing.T) {
	d := newMemDisk(1 << 30)
	writeTestPV(d, 0, testVGText, true)
	pv := readPV(d, d.size)
	if pv == nil || pv.VG == nil || pv.VG.Name != "HostVG" || len(pv.VG.LVs) != 9 {
		t.Fatalf("PV %+v", pv)
	}
	if pv.UUID != lvmUUID(testPVUUID) {
		t.Errorf("UUID %s", pv.UUID)
	}
}

// TestReadPVHostile checks that sizes in the label and the metadata header
// are bounded before anything is read or allocated.
func TestReadPVHostile(t *testing.T) {
	le := binary.LittleEndian
	for name, mangle := range map[string]func(d *memDisk){
		"text larger than the area": func(d *memDisk) { d.WriteAt(le.AppendUint64(nil, 1<<40), 4096+48) },
		"text past the end":         func(d *memDisk) { d.WriteAt(le.AppendUint64(nil, 1<<62), 4096+40) },
		"area past the disk":        func(d *memDisk) { d.WriteAt(le.AppendUint64(nil, 1<<50), 512+112) },
		"area at a huge offset":     func(d *memDisk) { d.WriteAt(le.AppendUint64(nil, 1<<62), 512+104) },
		"header offset past sector": func(d *memDisk) { d.WriteAt(le.AppendUint32(nil, 600), 512+20) },
		"garbage text":              func(d *memDisk) { d.WriteAt(bytes.Repeat([]byte("{"), 3000), 4096+512) },
	} {
		d := newMemDisk(1 << 30)
		writeTestPV(d, 0, testVGText, false)
		mangle(d)
		pv := readPV(d, d.size) // must not panic nor allocate terabytes
		if pv != nil && pv.VG != nil && name != "header offset past sector" {
			t.Errorf("%s: VG parsed from corrupt metadata: %+v", name, pv.VG.Name)
		}
		if _, err := PlanWipe(d, d.size, 512, nil); err != nil {
			t.Errorf("%s: plan: %v", name, err)
		}
	}
}

func TestCrossDiskLVs(t *testing.T) {
	vg, err := ParseVGMetadata(testVGText)
	if err != nil {
		t.Fatal(err)
	}
	older := *vg
	older.Seqno, older.LVs = 3, nil
	pvs := map[string][]PV{
		"/dev/sda": {{Offset: 513 << 20, UUID: lvmUUID(testPVUUID), VG: vg}},
		"/dev/sdb": {{UUID: "OTHERP-V000-0000-0000-0000-0000-000001", VG: &older}}, // stale copy: the newest wins
	}
	got := CrossDiskLVs([]string{"/dev/sda"}, pvs)
	var names []string
	for _, s := range got {
		names = append(names, s.LV)
		if len(s.Wiped) != 1 || s.Wiped[0] != "/dev/sda" || len(s.Untouched) != 1 || s.Untouched[0] != "/dev/sdb" {
			t.Errorf("%s: %+v", s.LV, s)
		}
	}
	// Config and Data are wholly on sda, Elsewhere wholly on sdb: only the spanning ones.
	if strings.Join(names, ",") != "Striped,Mirror" {
		t.Errorf("spanning LVs %v, want Striped and Mirror (through its raid images)", names)
	}
	if msg := got[0].Message(); !strings.Contains(msg, "HostVG/Striped") || !strings.Contains(msg, "/dev/sdb") {
		t.Errorf("message %q", msg)
	}
	if got := CrossDiskLVs([]string{"/dev/sda", "/dev/sdb"}, pvs); len(got) != 0 {
		t.Errorf("both disks wiped, still refused: %+v", got)
	}
	delete(pvs, "/dev/sdb")
	got = CrossDiskLVs([]string{"/dev/sda"}, pvs)
	if len(got) != 2 || len(got[0].MissingPVs) != 1 || !strings.Contains(got[0].Message(), "on no disk present") {
		t.Errorf("missing PV: %+v", got)
	}
}

// TestLVMOnFindsPVInPartition: the PV of an oVirt disk is partition 3.
// pvInPartition is a 2 GiB disk whose MBR has one LVM partition at 513 MiB,
// holding a PV of testVGText.
func pvInPartition() *memDisk {
	d := newMemDisk(2 << 30)
	writeTestPV(d, 513<<20, testVGText, false)
	mbr := make([]byte, 512)
	binary.LittleEndian.PutUint32(mbr[446+8:], 513<<11)
	binary.LittleEndian.PutUint32(mbr[446+12:], 1<<21)
	mbr[446+4], mbr[510], mbr[511] = 0x8e, 0x55, 0xaa
	d.WriteAt(mbr, 0)
	return d
}

func TestLVMOnFindsPVInPartition(t *testing.T) {
	d := pvInPartition()
	pvs, err := LVMOn(d, d.size, 512)
	if err != nil || len(pvs) != 1 || pvs[0].Offset != 513<<20 || pvs[0].VG == nil {
		t.Fatalf("LVMOn: %+v, %v", pvs, err)
	}
}

func FuzzParseVGMetadata(f *testing.F) {
	f.Add(testVGText)
	f.Add("vg { extent_size = 8192 physical_volumes { pv0 { id = \"x\" } } }")
	f.Fuzz(func(t *testing.T, text string) {
		vg, err := ParseVGMetadata(text)
		if err == nil && vg.ExtentSize <= 0 {
			t.Fatalf("accepted extent size %d", vg.ExtentSize)
		}
	})
}

// FuzzPlanWipe feeds arbitrary first sectors (label, metadata header, text)
// to the planner: it must neither panic nor return regions outside the disk.
func FuzzPlanWipe(f *testing.F) {
	d := newMemDisk(64 << 20)
	writeTestPV(d, 0, testVGText, false)
	seed := make([]byte, 8192)
	d.ReadAt(seed, 0)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, head []byte) {
		d := newMemDisk(64 << 20)
		writeTestPV(d, 0, testVGText, false)
		d.WriteAt(head[:min(len(head), 1<<20)], 0)
		plan, err := PlanWipe(d, d.size, 512, nil)
		if err != nil {
			return
		}
		for _, r := range plan.Regions {
			if r.Start < 0 || r.Size <= 0 || r.Start+r.Size > d.size {
				t.Fatalf("region %+v outside the disk", r)
			}
		}
	})
}
