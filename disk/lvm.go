package disk

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// LVM2 is read here from the bytes of a physical volume, without
// device-mapper or the LVM tools, because the initramfs has neither and
// because the wipe must know where every logical volume lies before it
// writes anything. The on-disk format (lib/format_text in lvm2):
//
//   - a label in one of the first four 512-byte sectors: "LABELONE", the
//     sector number, a CRC, the offset of the PV header, "LVM2 001";
//   - the PV header: the PV UUID (32 characters), the device size, then two
//     zero-terminated lists of {offset, size} byte ranges, data areas first,
//     then metadata areas;
//   - each metadata area starts with a 512-byte header (magic
//     " LVM2 x[5A%r0N*>") whose first raw location {offset, size, checksum,
//     flags} points at the newest metadata text inside the area, which is a
//     circular buffer: text that runs past the end continues right after the
//     header;
//   - the text is the VG in LVM's config syntax: sections `name { … }` and
//     `key = value`, values being numbers, "strings" or [lists].
//
// Every size read from the disk is bounded before anything is allocated:
// the metadata may be corrupt or hostile.

const (
	lvmLabelMagic = "LABELONE"
	lvmLabelType  = "LVM2 001"
	lvmMDAMagic   = " LVM2 x[5A%r0N*>"
	lvmMDAHeader  = 512
	// lvmMaxText bounds the metadata text read from one area. LVM's default
	// area is 1 MiB; VGs with thousands of LVs are configured larger.
	lvmMaxText = 16 << 20
	// lvmMaxAreas bounds the disk location lists in the PV header.
	lvmMaxAreas = 8
	// lvmMaxDepth and lvmMaxTokens bound the text parser.
	lvmMaxDepth  = 16
	lvmMaxTokens = 1 << 22
	// lvmMaxSegments bounds the segments kept per LV.
	lvmMaxSegments = 1 << 14
)

// PV is an LVM2 physical volume found on a disk.
type PV struct {
	// Offset is where the PV starts on the disk (0, or a partition's start).
	Offset int64 `json:"offset"`
	// Size is the size of the container that holds the PV.
	Size int64 `json:"size"`
	// UUID is the PV UUID in LVM's dashed form (6-4-4-4-4-4-6).
	UUID string `json:"uuid"`
	// MetadataAreas are the PV's metadata areas, in bytes from Offset.
	MetadataAreas []Range `json:"metadata_areas,omitempty"`
	// VG is the newest volume group metadata this PV carries; nil when the PV
	// has no metadata area (pvcreate --metadatacopies 0), no VG or unreadable
	// metadata (MetadataError says why).
	VG            *VG    `json:"vg,omitempty"`
	MetadataError string `json:"metadata_error,omitempty"`
}

// Range is a byte range.
type Range struct {
	Start int64 `json:"start"`
	Size  int64 `json:"size"`
}

// VG is the parsed text metadata of a volume group.
type VG struct {
	Name  string `json:"name"`
	UUID  string `json:"uuid"`
	Seqno int64  `json:"seqno"`
	// ExtentSize is the physical extent size in bytes.
	ExtentSize int64  `json:"extent_size"`
	PVs        []VGPV `json:"pvs"`
	LVs        []LV   `json:"lvs"`
}

// VGPV is one physical volume as the VG metadata lists it.
type VGPV struct {
	// Name is the metadata's key for it (pv0, pv1, …), which segments use.
	Name string `json:"name"`
	UUID string `json:"uuid"`
	// PEStart is where the first extent starts, in bytes from the PV's start.
	PEStart int64 `json:"pe_start"`
	PECount int64 `json:"pe_count"`
}

// LV is one logical volume, hidden sub-volumes (_rimage_0, _tdata, …) included.
type LV struct {
	Name    string `json:"name"`
	UUID    string `json:"uuid"`
	Visible bool   `json:"visible"`
	// Segments are sorted by StartExtent.
	Segments []LVSegment `json:"segments"`
}

// LVSegment maps a run of an LV's logical extents.
type LVSegment struct {
	StartExtent int64 `json:"start_extent"`
	ExtentCount int64 `json:"extent_count"`
	// Type is striped (linear is striped with one stripe), or mirror, raid1,
	// thin-pool, thin, cache, …, whose data lives in the sub-LVs in Uses.
	Type string `json:"type"`
	// StripeSize is the stripe chunk in bytes (0 for one stripe).
	StripeSize int64 `json:"stripe_size,omitempty"`
	// Stripes are the physical areas of a striped segment.
	Stripes []LVStripe `json:"stripes,omitempty"`
	// Uses names the other LVs this segment is built on (raid images, mirror
	// legs, thin pool data and metadata, the pool of a thin LV).
	Uses []string `json:"uses,omitempty"`
}

// LVStripe is one physical area: extents from StartPE on the PV named PV.
type LVStripe struct {
	PV      string `json:"pv"`
	StartPE int64  `json:"start_pe"`
}

// readPV parses an LVM2 PV at the start of r (size bytes), or returns nil
// when there is no LVM2 label.
func readPV(r io.ReaderAt, size int64) *PV {
	p := prober{r: r, size: size}
	for sector := int64(0); sector < 4; sector++ {
		lbl, err := p.read(sector*512, 512)
		if err != nil || lbl == nil || string(lbl[0:8]) != lvmLabelMagic || string(lbl[24:32]) != lvmLabelType {
			continue
		}
		hoff := int(binary.LittleEndian.Uint32(lbl[20:24]))
		if hoff < 32 || hoff+40 > 512 {
			continue
		}
		pv := &PV{Size: size, UUID: lvmUUID(string(lbl[hoff : hoff+32]))}
		areas := lbl[hoff+40:]
		pos := 0
		next := func() (Range, bool) {
			if pos+16 > len(areas) {
				return Range{}, false
			}
			off := binary.LittleEndian.Uint64(areas[pos:])
			n := binary.LittleEndian.Uint64(areas[pos+8:])
			pos += 16
			return Range{int64(off), int64(n)}, off != 0 || n != 0
		}
		for i := 0; i < lvmMaxAreas; i++ { // data areas: pe_start comes from the metadata
			if _, ok := next(); !ok {
				break
			}
		}
		for i := 0; i < lvmMaxAreas; i++ {
			a, ok := next()
			if !ok {
				break
			}
			if a.Start <= 0 || a.Size < lvmMDAHeader || a.Start > size || a.Size > size-a.Start {
				continue // outside the container: corrupt, nothing to read or clear there
			}
			pv.MetadataAreas = append(pv.MetadataAreas, a)
		}
		var errs []string
		for _, a := range pv.MetadataAreas {
			vg, err := readVGText(p, a)
			if err != nil {
				errs = append(errs, err.Error())
				continue
			}
			if vg != nil && (pv.VG == nil || vg.Seqno > pv.VG.Seqno) {
				pv.VG = vg
			}
		}
		if pv.VG == nil && len(errs) > 0 {
			pv.MetadataError = strings.Join(errs, "; ")
		}
		return pv
	}
	return nil
}

// readVGText reads and parses the current metadata in one metadata area.
// It returns nil, nil for an area with no metadata (a PV in no VG).
func readVGText(p prober, a Range) (*VG, error) {
	hdr, err := p.read(a.Start, lvmMDAHeader)
	if err != nil {
		return nil, err
	}
	if hdr == nil || string(hdr[4:20]) != lvmMDAMagic {
		return nil, fmt.Errorf("metadata area at %d: no header", a.Start)
	}
	off := int64(binary.LittleEndian.Uint64(hdr[40:48]))
	n := int64(binary.LittleEndian.Uint64(hdr[48:56]))
	flags := binary.LittleEndian.Uint32(hdr[60:64])
	if off == 0 && n == 0 {
		return nil, nil
	}
	if flags&1 != 0 { // RAW_LOCN_IGNORED: pvchange --metadataignore
		return nil, nil
	}
	buf := a.Size - lvmMDAHeader
	if off < lvmMDAHeader || off >= a.Size || n <= 0 || n > buf || n > lvmMaxText {
		return nil, fmt.Errorf("metadata area at %d: text of %d bytes at %d does not fit its %d bytes", a.Start, n, off, a.Size)
	}
	first := min(n, a.Size-off)
	text, err := p.read(a.Start+off, int(first))
	if err != nil || text == nil {
		return nil, fmt.Errorf("metadata area at %d: read text: %v", a.Start, err)
	}
	if first < n { // wrapped round the circular buffer
		rest, err := p.read(a.Start+lvmMDAHeader, int(n-first))
		if err != nil || rest == nil {
			return nil, fmt.Errorf("metadata area at %d: read wrapped text: %v", a.Start, err)
		}
		text = append(text, rest...)
	}
	if i := strings.IndexByte(string(text), 0); i >= 0 {
		text = text[:i]
	}
	vg, err := ParseVGMetadata(string(text))
	if err != nil {
		return nil, fmt.Errorf("metadata area at %d: %w", a.Start, err)
	}
	return vg, nil
}

// lvmNode is one section of LVM's config syntax.
type lvmNode struct {
	name  string
	vals  map[string]lvmValue
	kids  []*lvmNode
	order []string // keys in order, for lists of sections
}

// lvmValue is a number, a string or a list of them.
type lvmValue struct {
	str    string
	num    int64
	isStr  bool
	isList bool
	list   []lvmValue
}

func (n *lvmNode) kid(name string) *lvmNode {
	for _, k := range n.kids {
		if k.name == name {
			return k
		}
	}
	return nil
}

func (n *lvmNode) str(key string) string { return n.vals[key].str }
func (n *lvmNode) num(key string) int64  { return n.vals[key].num }

// lvmLexer splits LVM config text into tokens.
type lvmLexer struct {
	s      string
	pos    int
	tokens int
}

// next returns the next token: one of = { } [ ] , , a quoted string (with
// its quotes, escapes resolved), or a bare word; "" at the end.
func (l *lvmLexer) next() (tok string, quoted bool, err error) {
	l.tokens++
	if l.tokens > lvmMaxTokens {
		return "", false, fmt.Errorf("more than %d tokens", lvmMaxTokens)
	}
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		switch {
		case c == '#':
			for l.pos < len(l.s) && l.s[l.pos] != '\n' {
				l.pos++
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.pos++
		case strings.IndexByte("={}[],", c) >= 0:
			l.pos++
			return string(c), false, nil
		case c == '"':
			var b strings.Builder
			for l.pos++; l.pos < len(l.s); l.pos++ {
				switch l.s[l.pos] {
				case '\\':
					if l.pos+1 < len(l.s) {
						l.pos++
						b.WriteByte(l.s[l.pos])
					}
				case '"':
					l.pos++
					return b.String(), true, nil
				default:
					b.WriteByte(l.s[l.pos])
				}
			}
			return "", false, fmt.Errorf("unterminated string")
		default:
			start := l.pos
			for l.pos < len(l.s) && strings.IndexByte("={}[],\"# \t\n\r", l.s[l.pos]) < 0 {
				l.pos++
			}
			return l.s[start:l.pos], false, nil
		}
	}
	return "", false, nil
}

// parseLVMSection parses `key = value` and `name { … }` until "}" (or the
// end of the text at depth 0).
func parseLVMSection(l *lvmLexer, n *lvmNode, depth int) error {
	if depth > lvmMaxDepth {
		return fmt.Errorf("sections nested deeper than %d", lvmMaxDepth)
	}
	for {
		tok, quoted, err := l.next()
		if err != nil {
			return err
		}
		if tok == "" && !quoted {
			if depth > 0 {
				return fmt.Errorf("section %s not closed", n.name)
			}
			return nil
		}
		if tok == "}" && !quoted {
			if depth == 0 {
				return fmt.Errorf("unbalanced }")
			}
			return nil
		}
		op, _, err := l.next()
		if err != nil {
			return err
		}
		switch op {
		case "{":
			kid := &lvmNode{name: tok, vals: map[string]lvmValue{}}
			if err := parseLVMSection(l, kid, depth+1); err != nil {
				return err
			}
			n.kids = append(n.kids, kid)
		case "=":
			v, err := parseLVMValue(l)
			if err != nil {
				return fmt.Errorf("%s: %w", tok, err)
			}
			n.vals[tok] = v
			n.order = append(n.order, tok)
		default:
			return fmt.Errorf("after %q: want = or {, got %q", tok, op)
		}
	}
}

func parseLVMValue(l *lvmLexer) (lvmValue, error) {
	tok, quoted, err := l.next()
	if err != nil {
		return lvmValue{}, err
	}
	if quoted {
		return lvmValue{str: tok, isStr: true}, nil
	}
	if tok == "[" {
		v := lvmValue{isList: true}
		for {
			t, q, err := l.next()
			if err != nil {
				return v, err
			}
			switch {
			case t == "]" && !q:
				return v, nil
			case t == "," && !q:
			case t == "" && !q:
				return v, fmt.Errorf("list not closed")
			case q:
				v.list = append(v.list, lvmValue{str: t, isStr: true})
			default:
				num, _ := strconv.ParseInt(t, 10, 64)
				v.list = append(v.list, lvmValue{str: t, num: num})
			}
		}
	}
	if tok == "" || strings.IndexByte("={}],", tok[0]) >= 0 {
		return lvmValue{}, fmt.Errorf("missing value")
	}
	num, _ := strconv.ParseInt(tok, 10, 64) // floats and words stay 0: no field we read has them
	return lvmValue{str: tok, num: num}, nil
}

// ParseVGMetadata parses the text metadata of a volume group, as found in a
// PV's metadata area or written by vgcfgbackup. Sizes are converted from
// LVM's 512-byte sectors to bytes.
func ParseVGMetadata(text string) (*VG, error) {
	root := &lvmNode{vals: map[string]lvmValue{}}
	if err := parseLVMSection(&lvmLexer{s: text}, root, 0); err != nil {
		return nil, fmt.Errorf("LVM metadata: %w", err)
	}
	var vgn *lvmNode
	for _, k := range root.kids {
		if k.kid("physical_volumes") != nil || k.vals["extent_size"].num > 0 {
			vgn = k
			break
		}
	}
	if vgn == nil {
		return nil, fmt.Errorf("LVM metadata: no volume group section")
	}
	vg := &VG{Name: vgn.name, UUID: vgn.str("id"), Seqno: vgn.num("seqno"), ExtentSize: vgn.num("extent_size") * 512}
	if vg.ExtentSize <= 0 || vg.ExtentSize > 1<<40 {
		return nil, fmt.Errorf("LVM metadata of VG %s: extent size %d bytes is not plausible", vg.Name, vg.ExtentSize)
	}
	if pvs := vgn.kid("physical_volumes"); pvs != nil {
		for _, k := range pvs.kids {
			vg.PVs = append(vg.PVs, VGPV{Name: k.name, UUID: k.str("id"), PEStart: k.num("pe_start") * 512, PECount: k.num("pe_count")})
		}
	}
	lvNames := map[string]bool{}
	if lvs := vgn.kid("logical_volumes"); lvs != nil {
		for _, k := range lvs.kids {
			lvNames[k.name] = true
		}
		for _, k := range lvs.kids {
			lv := LV{Name: k.name, UUID: k.str("id")}
			for _, s := range k.vals["status"].list {
				lv.Visible = lv.Visible || s.str == "VISIBLE"
			}
			for _, sn := range k.kids {
				if !strings.HasPrefix(sn.name, "segment") || len(lv.Segments) >= lvmMaxSegments {
					continue
				}
				lv.Segments = append(lv.Segments, parseLVSegment(sn, lvNames))
			}
			sort.Slice(lv.Segments, func(i, j int) bool { return lv.Segments[i].StartExtent < lv.Segments[j].StartExtent })
			vg.LVs = append(vg.LVs, lv)
		}
	}
	return vg, nil
}

func parseLVSegment(sn *lvmNode, lvNames map[string]bool) LVSegment {
	seg := LVSegment{StartExtent: sn.num("start_extent"), ExtentCount: sn.num("extent_count"), Type: sn.str("type")}
	if seg.Type == "striped" {
		seg.StripeSize = sn.num("stripe_size") * 512
		l := sn.vals["stripes"].list
		for i := 0; i+1 < len(l); i += 2 {
			seg.Stripes = append(seg.Stripes, LVStripe{PV: l[i].str, StartPE: l[i+1].num})
		}
		return seg
	}
	// Any other type names the LVs it is built from, in lists (raids,
	// mirrors) or keys (pool, data, metadata, origin, …): collect every
	// string that is the name of an LV in this VG.
	seen := map[string]bool{}
	use := func(s string) {
		if lvNames[s] && !seen[s] {
			seen[s] = true
			seg.Uses = append(seg.Uses, s)
		}
	}
	for _, key := range sn.order {
		v := sn.vals[key]
		use(v.str)
		for _, e := range v.list {
			use(e.str)
		}
	}
	return seg
}

// lvmUUIDKey drops the dashes so that a label's 32 characters and the
// metadata's dashed form compare equal.
func lvmUUIDKey(u string) string { return strings.ReplaceAll(u, "-", "") }

// LVMOn returns every LVM2 PV on a disk of size bytes: on the whole disk and
// in each partition of its GPT or MBR. It reads only; it is what facts should
// carry for CrossDiskLVs.
func LVMOn(r io.ReaderAt, size int64, sectorSize int) ([]PV, error) {
	res, err := ProbeDevice(r, size, sectorSize)
	if err != nil {
		return PVsIn(r, size, nil), err // the whole disk's PV, if any
	}
	return PVsIn(r, size, res.Partitions), nil
}

// PVsIn is LVMOn for a disk already probed: parts are the partitions
// ProbeDevice found on it.
func PVsIn(r io.ReaderAt, size int64, parts []Partition) []PV {
	var pvs []PV
	if pv := readPV(r, size); pv != nil {
		pvs = append(pvs, *pv)
	}
	for _, part := range parts {
		if part.StartByte <= 0 || part.SizeBytes <= 0 || part.StartByte+part.SizeBytes > size {
			continue
		}
		if pv := readPV(io.NewSectionReader(r, part.StartByte, part.SizeBytes), part.SizeBytes); pv != nil {
			pv.Offset = part.StartByte
			pvs = append(pvs, *pv)
		}
	}
	return pvs
}

// SpanningLV is a logical volume with extents both on a disk being wiped and
// on a PV that is not: wiping destroys it, and the survivor holds half an LV.
type SpanningLV struct {
	VG     string `json:"vg"`
	VGUUID string `json:"vg_uuid"`
	LV     string `json:"lv"`
	// Wiped are the disks in the wipe that hold some of its extents.
	Wiped []string `json:"wiped"`
	// Untouched are the other disks holding its extents.
	Untouched []string `json:"untouched,omitempty"`
	// MissingPVs are UUIDs of its PVs found on no disk given.
	MissingPVs []string `json:"missing_pvs,omitempty"`
}

// Message says what is wrong and what to do, for a refusal.
func (s SpanningLV) Message() string {
	var where []string
	where = append(where, s.Untouched...)
	for _, u := range s.MissingPVs {
		where = append(where, "PV "+u+" (on no disk present)")
	}
	return fmt.Sprintf("logical volume %s/%s has extents on %s, which will be wiped, and on %s, which will not: "+
		"wiping would destroy it and leave part of it behind; add those disks to the wipe, or remove or move the LV first (lvremove, pvmove)",
		s.VG, s.LV, strings.Join(s.Wiped, ", "), strings.Join(where, ", "))
}

// CrossDiskLVs reports every visible LV that has extents on one of the wiped
// disks and also on a PV elsewhere: on a disk not in wiped, or on no disk in
// pvs at all. pvs maps a disk path to what LVMOn found on it, for every disk
// of the machine. It is pure, so the planner can refuse before any write.
// The newest metadata (highest seqno) of each VG is used.
func CrossDiskLVs(wiped []string, pvs map[string][]PV) []SpanningLV {
	inWipe := map[string]bool{}
	for _, d := range wiped {
		inWipe[d] = true
	}
	diskOf := map[string]string{} // PV UUID key → disk
	vgs := map[string]*VG{}
	disks := make([]string, 0, len(pvs))
	for d := range pvs {
		disks = append(disks, d)
	}
	sort.Strings(disks)
	for _, d := range disks {
		for _, pv := range pvs[d] {
			diskOf[lvmUUIDKey(pv.UUID)] = d
			if vg := pv.VG; vg != nil {
				if old := vgs[vg.UUID]; old == nil || vg.Seqno > old.Seqno {
					vgs[vg.UUID] = vg
				}
			}
		}
	}
	ids := make([]string, 0, len(vgs))
	for id := range vgs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out []SpanningLV
	for _, id := range ids {
		vg := vgs[id]
		pvUUID := map[string]string{}
		for _, p := range vg.PVs {
			pvUUID[p.Name] = lvmUUIDKey(p.UUID)
		}
		for _, lv := range vg.LVs {
			if !lv.Visible {
				continue
			}
			s := SpanningLV{VG: vg.Name, VGUUID: vg.UUID, LV: lv.Name}
			seenDisk, seenMissing := map[string]bool{}, map[string]bool{}
			for _, u := range lvPVs(vg, lv.Name, pvUUID) {
				d, ok := diskOf[u]
				switch {
				case !ok:
					if !seenMissing[u] {
						seenMissing[u] = true
						s.MissingPVs = append(s.MissingPVs, lvmUUID(u))
					}
				case seenDisk[d]:
				case inWipe[d]:
					seenDisk[d] = true
					s.Wiped = append(s.Wiped, d)
				default:
					seenDisk[d] = true
					s.Untouched = append(s.Untouched, d)
				}
			}
			if len(s.Wiped) > 0 && (len(s.Untouched) > 0 || len(s.MissingPVs) > 0) {
				out = append(out, s)
			}
		}
	}
	return out
}

// lvPVs returns the UUID keys of every PV an LV has extents on, through the
// sub-LVs its segments use.
func lvPVs(vg *VG, name string, pvUUID map[string]string) []string {
	byName := map[string]*LV{}
	for i := range vg.LVs {
		byName[vg.LVs[i].Name] = &vg.LVs[i]
	}
	var out []string
	seen := map[string]bool{}
	var walk func(n string, depth int)
	walk = func(n string, depth int) {
		lv := byName[n]
		if lv == nil || seen[n] || depth > lvmMaxDepth {
			return
		}
		seen[n] = true
		for _, seg := range lv.Segments {
			for _, st := range seg.Stripes {
				if u, ok := pvUUID[st.PV]; ok {
					out = append(out, u)
				}
			}
			for _, u := range seg.Uses {
				walk(u, depth+1)
			}
		}
	}
	walk(name, 0)
	sort.Strings(out)
	return out
}
