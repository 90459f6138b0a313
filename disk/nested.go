package disk

import (
	"encoding/binary"
	"fmt"
	"io"
	"sort"
)

// A wipe that clears only the start and end of the disk and of each partition
// leaves whatever a container maps inside: the filesystems in the LVs of a
// PV, the array inside an md member, a partition table inside an LV. This
// file walks those containers from the disk's bytes alone (no device-mapper,
// no md driver), the way the kernel would map them, and collects every range
// that holds a signature or a backup of one, in disk offsets.
//
// A container is a space: a logical byte range (an LV, an md array's data, a
// partition) and how its offsets map to the disk. Parts of an LV on another
// PV map to nothing here; they are reported, and the planner refuses when
// that PV is on a disk the plan leaves alone (CrossDiskLVs).

const (
	// nestMaxDepth bounds containers inside containers (disk → PV → LV → GPT →
	// partition → PV …); real stacks are three or four deep.
	nestMaxDepth = 6
	// nestMaxContainers bounds the containers visited on one disk.
	nestMaxContainers = 4096
)

// Found is one thing the wipe found on the disk before writing.
type Found struct {
	// Kind is partition, pv, lv, md, luks, table or fs.
	Kind string `json:"kind"`
	// Type is the signature type for fs, md and luks (ext4, xfs, linux_raid_member…).
	Type string `json:"type,omitempty"`
	// Name says which: "partition 3", "HostVG/Config", "md node:0".
	Name string `json:"name"`
	UUID string `json:"uuid,omitempty"`
	// Offset is the disk offset of its first byte, -1 when that byte is on another disk.
	Offset int64 `json:"offset"`
	// Size is its size in its own address space (an LV's size, not only the part here).
	Size int64 `json:"size"`
	// Backups is how many backup copies (ext superblocks, xfs AG headers,
	// btrfs mirrors) or metadata areas were added for it.
	Backups int `json:"backups,omitempty"`
	// Note says what could not be followed.
	Note string `json:"note,omitempty"`
}

// RemoteSegment is a run of an LV's extents that lies on a PV not on this disk.
type RemoteSegment struct {
	VG      string `json:"vg"`
	VGUUID  string `json:"vg_uuid"`
	LV      string `json:"lv"`
	PVUUID  string `json:"pv_uuid"`
	StartPE int64  `json:"start_pe"`
	Extents int64  `json:"extents"`
}

// WipePlan is everything a wipe will clear on one disk, computed from its bytes.
type WipePlan struct {
	// Regions are the sorted, merged, sector-aligned byte ranges to clear.
	Regions []Range `json:"regions"`
	// Found lists the partitions, PVs, LVs, arrays and filesystems found.
	Found []Found `json:"found,omitempty"`
	// PVs are the LVM PVs on the disk, for CrossDiskLVs.
	PVs []PV `json:"pvs,omitempty"`
	// Remote are LV extents this disk's metadata maps to PVs elsewhere.
	Remote []RemoteSegment `json:"remote,omitempty"`
}

// Bytes is the total size of the regions.
func (p WipePlan) Bytes() int64 {
	var n int64
	for _, r := range p.Regions {
		n += r.Size
	}
	return n
}

// PlanWipe computes what a wipe of a disk of size bytes clears: the start and
// end of the disk and of every partition (from the GPT, primary or backup,
// the MBR with its logical partitions, and parts), the btrfs mirrors, and
// everything nested: LVM PVs with their label, metadata areas and every LV
// mapped on this disk, md member data, GPT and MBR tables inside those, LUKS
// headers and keyslots, and the backup superblocks of every ext2/3/4, xfs and
// btrfs filesystem found in any of them. It only reads.
func PlanWipe(r io.ReaderAt, size int64, sectorSize int, parts []Range) (WipePlan, error) {
	if sectorSize != 512 && sectorSize != 4096 {
		return WipePlan{}, fmt.Errorf("plan wipe: sector size %d: want 512 or 4096", sectorSize)
	}
	w := &wipeScan{r: r, size: size, sector: sectorSize, seen: map[string]bool{}}
	disk := &space{name: "disk", size: size, r: r, resolve: func(off int64) (int64, int64, bool) { return off, size - off, true }}
	var extra []extent
	for _, p := range parts {
		extra = append(extra, extent{p.Start, p.Size})
	}
	if err := w.container(disk, 0, extra); err != nil {
		return WipePlan{}, err
	}
	merged := mergeAligned(w.regions, int64(sectorSize), size)
	plan := WipePlan{Found: w.found, PVs: w.pvs, Remote: w.remote}
	for _, e := range merged {
		plan.Regions = append(plan.Regions, Range{e.Start, e.Size})
	}
	return plan, nil
}

// space is a container's address space and its map onto the disk.
type space struct {
	name string
	size int64
	// resolve maps off (0 <= off < size) to a disk offset and the number of
	// bytes that stay contiguous from there; ok is false when those bytes
	// are not on this disk (then n is how many are not).
	resolve func(off int64) (disk, n int64, ok bool)
	r       io.ReaderAt // the disk
}

// ReadAt reads through the map; bytes on another disk read as zeroes.
func (s *space) ReadAt(b []byte, off int64) (int, error) {
	if off < 0 || off >= s.size {
		return 0, io.EOF
	}
	want := len(b)
	if int64(want) > s.size-off {
		b = b[:s.size-off]
	}
	done := 0
	for done < len(b) {
		d, n, ok := s.resolve(off + int64(done))
		if n <= 0 {
			return done, fmt.Errorf("read %s at %d: no mapping", s.name, off+int64(done))
		}
		chunk := b[done:min(len(b), done+int(min(n, int64(len(b)-done))))]
		if ok {
			got, err := s.r.ReadAt(chunk, d)
			if err != nil && got < len(chunk) {
				return done + got, err
			}
		} else {
			clear(chunk)
		}
		done += len(chunk)
	}
	if done < want {
		return done, io.EOF
	}
	return done, nil
}

// toDisk maps [off, off+n) of the space, clipped to it, to disk extents.
func (s *space) toDisk(off, n int64) []extent {
	if off < 0 {
		n += off
		off = 0
	}
	n = min(n, s.size-off)
	var out []extent
	for n > 0 {
		d, run, ok := s.resolve(off)
		if run <= 0 {
			break
		}
		run = min(run, n)
		if ok {
			out = append(out, extent{d, run})
		}
		off += run
		n -= run
	}
	return out
}

// sub is the range [off, off+n) of s as a space of its own.
func (s *space) sub(name string, off, n int64) *space {
	n = min(n, s.size-off)
	return &space{name: name, size: max(n, 0), r: s.r, resolve: func(o int64) (int64, int64, bool) {
		d, run, ok := s.resolve(off + o)
		return d, min(run, n-o), ok
	}}
}

// diskStart is the disk offset of the space's first byte, or -1.
func (s *space) diskStart() int64 {
	if s.size <= 0 {
		return -1
	}
	if d, _, ok := s.resolve(0); ok {
		return d
	}
	return -1
}

type wipeScan struct {
	r       io.ReaderAt
	size    int64
	sector  int
	regions []extent
	found   []Found
	pvs     []PV
	remote  []RemoteSegment
	seen    map[string]bool
	visited int
}

// add clears [off, off+n) of s.
func (w *wipeScan) add(s *space, off, n int64) {
	w.regions = append(w.regions, s.toDisk(off, n)...)
}

// addEnds clears what every container gets: its first 8 MiB, its last 1 MiB
// and the btrfs mirror superblocks.
func (w *wipeScan) addEnds(s *space) {
	w.add(s, 0, wipeHead)
	w.add(s, s.size-wipeTail, wipeTail)
	for _, m := range btrfsMirrors {
		if m+btrfsMirrorSpan <= s.size {
			w.add(s, m, btrfsMirrorSpan)
		}
	}
}

// container clears s and walks what it holds. extra are partitions of s
// known from elsewhere (for the disk: the kernel's list and the caller's).
func (w *wipeScan) container(s *space, depth int, extra []extent) error {
	if s.size <= 0 {
		return nil
	}
	w.visited++
	w.addEnds(s)
	if depth > nestMaxDepth || w.visited > nestMaxContainers {
		w.found = append(w.found, Found{Kind: "container", Name: s.name, Offset: s.diskStart(), Size: s.size,
			Note: "nested too deeply or too many containers: only its start and end are cleared"})
		return nil
	}
	p := prober{r: s, size: s.size}

	// Partition tables: the GPT at either sector size (both headers), the MBR
	// with its logical partitions.
	var parts []extent
	for _, ss := range []int{w.sector, 4096 + 512 - w.sector} {
		sigs, gparts, err := p.gpt(ss)
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if len(sigs) == 0 {
			continue
		}
		if depth > 0 {
			w.found = append(w.found, Found{Kind: "table", Type: SigGPT, Name: s.name, Offset: s.diskStart(), Size: s.size})
		}
		for _, gp := range gparts {
			parts = append(parts, extent{gp.StartByte, gp.SizeBytes})
		}
		break
	}
	if fat, _ := p.vfat(); len(fat) > 0 {
		// A FAT boot sector ends in 55aa too; its code is not a partition table.
	} else if mparts := mbrPartitions(s.ReadAt, int64(w.sector)); len(mparts) > 0 {
		if depth > 0 {
			w.found = append(w.found, Found{Kind: "table", Type: SigDOS, Name: s.name, Offset: s.diskStart(), Size: s.size})
		}
		parts = append(parts, mparts...)
	}
	parts = append(parts, extra...)
	sort.Slice(parts, func(i, j int) bool {
		if parts[i].Start != parts[j].Start {
			return parts[i].Start < parts[j].Start
		}
		return parts[i].Size < parts[j].Size
	})
	for i, pe := range parts {
		if pe.Size <= 0 || pe.Start < 0 || pe.Start >= s.size || (i > 0 && pe == parts[i-1]) {
			continue
		}
		if pe.Start == 0 && pe.Size >= s.size {
			continue // a partition that is the container itself (an MBR typo, a FAT BPB)
		}
		name := fmt.Sprintf("%s partition at %d", s.name, pe.Start)
		if s.name == "disk" {
			name = fmt.Sprintf("partition at %d", pe.Start)
		}
		child := s.sub(name, pe.Start, pe.Size)
		key := fmt.Sprintf("%d+%d", child.diskStart(), child.size)
		if w.seen[key] {
			continue
		}
		w.seen[key] = true
		w.found = append(w.found, Found{Kind: "partition", Name: name, Offset: child.diskStart(), Size: child.size})
		if err := w.container(child, depth+1, nil); err != nil {
			return err
		}
	}
	return w.content(s, depth)
}

// content handles what sits at the start of s: a volume manager, an array,
// an encrypted volume or a filesystem.
func (w *wipeScan) content(s *space, depth int) error {
	p := prober{r: s, size: s.size}
	if pv := readPV(s, s.size); pv != nil {
		return w.lvm(s, depth, pv)
	}
	if err := w.md(s, depth); err != nil {
		return err
	}
	if n, note := w.luks(s); n > 0 || note != "" {
		sig, _ := p.luks()
		f := Found{Kind: "luks", Type: SigLUKS, Name: s.name, Offset: s.diskStart(), Size: s.size, Backups: n, Note: note}
		if len(sig) > 0 {
			f.UUID = sig[0].UUID
		}
		w.found = append(w.found, f)
		return nil
	}
	return w.filesystems(s)
}

// lvm clears a PV's label and metadata areas and walks each LV mapped on it.
func (w *wipeScan) lvm(s *space, depth int, pv *PV) error {
	pv.Offset = s.diskStart()
	w.pvs = append(w.pvs, *pv)
	w.add(s, 0, 4*512) // the label sectors
	for _, a := range pv.MetadataAreas {
		w.add(s, a.Start, a.Size)
	}
	f := Found{Kind: "pv", Type: SigLVM, Name: s.name, UUID: pv.UUID, Offset: pv.Offset, Size: s.size, Backups: len(pv.MetadataAreas), Note: pv.MetadataError}
	vg := pv.VG
	if vg == nil {
		if f.Note == "" {
			f.Note = "no VG metadata on this PV: its LVs cannot be found from this disk"
		}
		w.found = append(w.found, f)
		return nil
	}
	f.Name = s.name + " (VG " + vg.Name + ")"
	w.found = append(w.found, f)
	type place struct {
		here    bool
		peStart int64
		count   int64
		uuid    string
	}
	pvs := map[string]place{}
	for _, vp := range vg.PVs {
		pvs[vp.Name] = place{here: lvmUUIDKey(vp.UUID) == lvmUUIDKey(pv.UUID), peStart: vp.PEStart, count: vp.PECount, uuid: vp.UUID}
	}
	ext := vg.ExtentSize
	for _, lv := range vg.LVs {
		var segs []lvMapSeg
		var lvSize int64
		anyHere := false
		var note string
		for _, seg := range lv.Segments {
			if seg.ExtentCount <= 0 || seg.ExtentCount > 1<<40/max(ext>>20, 1) {
				continue
			}
			ms := lvMapSeg{start: seg.StartExtent * ext, size: seg.ExtentCount * ext}
			if len(seg.Stripes) == 0 {
				if seg.Type != "striped" {
					note = fmt.Sprintf("segment type %s: its data lives in the sub-LVs %v, cleared as LVs of their own", seg.Type, seg.Uses)
				}
				continue
			}
			n := int64(len(seg.Stripes))
			ms.stripe = seg.StripeSize
			if n > 1 && (ms.stripe <= 0 || seg.ExtentCount%n != 0) {
				note = "striped segment with an unusable stripe size: only its areas' ends are cleared"
				ms.stripe = 0
			}
			areaLen := seg.ExtentCount / n * ext
			for _, st := range seg.Stripes {
				pl, ok := pvs[st.PV]
				a := lvArea{here: ok && pl.here, pvStart: -1}
				if a.here {
					a.pvStart = pl.peStart + st.StartPE*ext
					// Each physical area also gets its own ends cleared, as a partition would.
					area := s.sub(fmt.Sprintf("%s/%s area", vg.Name, lv.Name), a.pvStart, areaLen)
					w.addEnds(area)
					anyHere = true
				} else {
					w.remote = append(w.remote, RemoteSegment{VG: vg.Name, VGUUID: vg.UUID, LV: lv.Name, PVUUID: pl.uuid, StartPE: st.StartPE, Extents: seg.ExtentCount / n})
				}
				ms.areas = append(ms.areas, a)
			}
			segs = append(segs, ms)
			lvSize = max(lvSize, ms.start+ms.size)
		}
		if !anyHere {
			if note != "" || len(lv.Segments) == 0 {
				w.found = append(w.found, Found{Kind: "lv", Name: vg.Name + "/" + lv.Name, Offset: -1, Note: note})
			}
			continue
		}
		lvs := &space{name: vg.Name + "/" + lv.Name, size: lvSize, r: s.r, resolve: lvResolve(s, segs)}
		w.found = append(w.found, Found{Kind: "lv", Name: lvs.name, UUID: lv.UUID, Offset: lvs.diskStart(), Size: lvSize, Note: note})
		if err := w.container(lvs, depth+1, nil); err != nil {
			return err
		}
	}
	return nil
}

// lvMapSeg is one LV segment: [start, start+size) of the LV over its areas.
type lvMapSeg struct {
	start, size int64
	stripe      int64 // chunk size when striped over several areas
	areas       []lvArea
}

// lvArea is one physical area of a segment, at pvStart bytes into the PV.
type lvArea struct {
	here    bool
	pvStart int64
}

// lvResolve maps an LV offset through its segments onto the PV space pv.
func lvResolve(pv *space, segs []lvMapSeg) func(int64) (int64, int64, bool) {
	return func(off int64) (int64, int64, bool) {
		for _, sg := range segs {
			if off < sg.start || off >= sg.start+sg.size {
				continue
			}
			o := off - sg.start
			left := sg.size - o
			var a lvArea
			var po int64
			if n := int64(len(sg.areas)); n == 1 || sg.stripe <= 0 {
				// One area, or stripes we cannot interleave: the segment is read as its first area.
				a, po = sg.areas[0], o
				if n > 1 {
					left = min(left, sg.size/n-o)
					if o >= sg.size/n {
						return 0, left, false
					}
				}
			} else {
				chunk := o / sg.stripe
				a = sg.areas[chunk%n]
				po = (chunk/n)*sg.stripe + o%sg.stripe
				left = min(left, sg.stripe-o%sg.stripe)
			}
			if !a.here {
				return 0, left, false
			}
			d, run, ok := pv.resolve(a.pvStart + po)
			return d, min(run, left), ok
		}
		// A hole between segments (corrupt metadata): nothing here until the next one.
		next := int64(1 << 62)
		for _, sg := range segs {
			if sg.start > off {
				next = min(next, sg.start)
			}
		}
		return 0, next - off, false
	}
}

// md clears an md member's superblock (already in the ends) and walks the
// array data on it. For RAID1 the member's data is the array; for the other
// levels the array is striped over members we cannot see together, so only
// the ends of this member's data are cleared.
func (w *wipeScan) md(s *space, depth int) error {
	m := readMD(s, s.size)
	if m == nil {
		return nil
	}
	w.add(s, m.sbOffset, 4096)
	f := Found{Kind: "md", Type: SigMD, Name: "md " + m.name + " on " + s.name, UUID: m.uuid, Offset: s.diskStart(), Size: s.size}
	if m.dataSize <= 0 || m.dataOffset < 0 || m.dataOffset >= s.size {
		f.Note = "no usable data offset in the superblock: only the member's ends are cleared"
		w.found = append(w.found, f)
		return nil
	}
	data := s.sub(fmt.Sprintf("md %s data on %s", m.name, s.name), m.dataOffset, m.dataSize)
	if m.level != 1 && m.level != -1 { // -1 is linear: its first member starts the array
		f.Note = fmt.Sprintf("raid level %d: array data is striped across members; this member's data ends are cleared", m.level)
		w.found = append(w.found, f)
		w.addEnds(data)
		return nil
	}
	w.found = append(w.found, f)
	return w.container(data, depth+1, nil)
}

// mdInfo is what the wipe needs from an md superblock.
type mdInfo struct {
	version              string
	name, uuid           string
	level                int32
	sbOffset             int64
	dataOffset, dataSize int64
}

// readMD finds an md superblock of version 1.1 (0), 1.2 (4 KiB), 1.0 (8 KiB
// before the end, 4 KiB aligned) or 0.90 (64 KiB aligned, 64 KiB before the end).
func readMD(r io.ReaderAt, size int64) *mdInfo {
	const magic = 0xa92b4efc
	p := prober{r: r, size: size}
	le := binary.LittleEndian
	try := []int64{0, 4096}
	if size >= 16<<10 {
		try = append(try, ((size>>9)-16)&^7<<9)
	}
	for _, off := range try {
		b, err := p.read(off, 256)
		if err != nil || b == nil || le.Uint32(b[0:4]) != magic || le.Uint32(b[4:8]) != 1 {
			continue
		}
		if int64(le.Uint64(b[144:152])) != off/512 { // super_offset must say where it is
			continue
		}
		m := &mdInfo{version: "1.x", uuid: uuidString(b[16:32]), name: cstr(b[32:64]), level: int32(le.Uint32(b[72:76])), sbOffset: off}
		m.dataOffset = int64(le.Uint64(b[128:136])) * 512
		m.dataSize = int64(le.Uint64(b[136:144])) * 512
		if m.dataOffset < 0 || m.dataOffset > size || m.dataSize < 0 || m.dataSize > size-m.dataOffset {
			m.dataSize = max(size-m.dataOffset, 0)
			if m.dataOffset > size || m.dataOffset < 0 {
				m.dataSize, m.dataOffset = 0, 0
			}
		}
		return m
	}
	if size >= 128<<10 {
		off := (size &^ (64<<10 - 1)) - 64<<10
		if b, err := p.read(off, 256); err == nil && b != nil && le.Uint32(b[0:4]) == magic && le.Uint32(b[4:8]) == 0 {
			// 0.90: data from 0 up to the superblock; level at word 7, UUID in words 5, 13-15.
			u := make([]byte, 16)
			copy(u[0:4], b[20:24])
			copy(u[4:16], b[52:64])
			return &mdInfo{version: "0.90", uuid: uuidString(u), name: "0.90", level: int32(le.Uint32(b[28:32])), sbOffset: off, dataOffset: 0, dataSize: off}
		}
	}
	return nil
}

// luks adds a LUKS1 header with its key material, or both LUKS2 headers and
// every keyslot area: without them the data is ciphertext nobody can open.
// It returns how many regions it added and a note.
func (w *wipeScan) luks(s *space) (int, string) {
	regs, note := luksRegions(s, s.size)
	for _, r := range regs {
		w.add(s, r.Start, r.Size)
	}
	return len(regs), note
}

// filesystems adds the backup superblocks of an ext2/3/4, xfs or btrfs
// filesystem at the start of s.
func (w *wipeScan) filesystems(s *space) error {
	p := prober{r: s, size: s.size}
	var sigs []Signature
	for _, f := range []func() ([]Signature, error){p.ext, p.xfs, p.btrfs, p.swap, p.vfat} {
		got, err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		if len(got) > 0 {
			sigs = got
			break
		}
	}
	if len(sigs) == 0 {
		return nil
	}
	backups, note := backupSuperblocks(s, s.size, sigs[0].Type)
	for _, b := range backups {
		w.add(s, b.Start, b.Size)
	}
	if sigs[0].Type == SigBtrfs {
		backups = nil
		for _, m := range btrfsMirrors {
			if m+btrfsMirrorSpan <= s.size {
				backups = append(backups, Range{m, btrfsMirrorSpan})
			}
		}
	}
	w.found = append(w.found, Found{Kind: "fs", Type: sigs[0].Type, Name: s.name, UUID: sigs[0].UUID, Offset: s.diskStart(), Size: s.size, Backups: len(backups), Note: note})
	return nil
}
