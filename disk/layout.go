package disk

import (
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strings"

	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/operr"
)

// The layout of a node disk (DESIGN.md, "On disk"): GPT, 1 MiB aligned, one
// partition per volume in this order. Partition numbers are fixed per volume,
// so a volume sized 0 leaves a gap instead of renumbering the ones after it;
// that keeps node-data at partition 7 whatever else changes, which is what
// reinstall with keep=data relies on.
//
// Type GUIDs follow the Discoverable Partitions Specification where one fits:
// the ESP, the root slots (root of this architecture) and swap. config, logging
// and data use the generic "Linux filesystem data" type on purpose: the spec's
// /var type demands a partition UUID derived from the machine ID, and it has no
// type for /var/log or /data, so a DPS-aware OS (systemd-gpt-auto-generator)
// must not mount them on its own. They are told apart by PARTLABEL.
//
// Default sizes follow oVirt Node 3.x (ovirtnode/storage.py: EFI 256, Root 256
// per image, Config 5, Logging 2048, swap from RAM, Data the rest), scaled to
// what nodeinit stores:
//
//	boot    512 MiB  two slots' kernel + initrd on FAT32 (oVirt: 256)
//	root   2048 MiB  per slot, a whole squashfs image (oVirt: 256); 4096 on disks >= 128 GiB
//	config   64 MiB  persisted files plus a snapshot before migration (oVirt: 5)
//	logging 2048 MiB (oVirt: 2048); 8192 on disks >= 128 GiB
//	swap   2048 MiB  (oVirt: from RAM; stages may pass a RAM-based value); 1024 on disks < 32 GiB
//	data    the rest, at least 1024 MiB
//
// The larger defaults of a larger disk are used only where they fit beside
// the sizes storage_vol gives; otherwise the smaller disks' are. So a layout
// that fits a disk fits every larger one, and MinDiskBytes, computed from the
// same table, is the exact size below which a disk is refused.
//
// Sizes given on the command line are used as they are, never scaled, except
// that a size below what nodeinit needs (the minimums in volumeTable) is rounded
// up to it with a notice in Layout.Notices rather than refused: oVirt Node's
// everyday values (Config 5, EFI or Boot 256) must keep working. oVirt's EFI and
// Boot both size our one ESP (the larger wins); Swap2 and Data2 size the
// app-data disks (appdata.go) and do not change the install disk.

// Partition names (GPT PARTLABEL) of a node disk.
const (
	LabelESP     = "NODE-ESP"
	LabelRootA   = "node-root-a"
	LabelRootB   = "node-root-b"
	LabelConfig  = "node-config"
	LabelLogging = "node-logging"
	LabelSwap    = "node-swap"
	LabelData    = "node-data"
)

// Partition type GUIDs used by the layout (lower case, as blkid prints them).
const (
	TypeESP       = "c12a7328-f81f-11d2-ba4b-00a0c93ec93b"
	TypeRootAMD64 = "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
	TypeRootARM64 = "b921b045-1df0-41c3-af44-4c6f280d3fae"
	TypeSwap      = "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f"
	TypeLinuxData = "0fc63daf-8483-4772-8e79-3d69d8477de4"
)

// Filesystem kinds a PartSpec asks for.
const (
	FSVfat = "vfat"
	FSExt4 = "ext4"
	FSSwap = "swap"
	FSRaw  = "raw" // written raw by another stage (the squashfs root slots)
)

// MiB is one mebibyte, the unit of storage_vol and of partition alignment.
const MiB = int64(1) << 20

// ErrDiskTooSmall is wrapped by PlanLayout when the volumes do not fit.
var ErrDiskTooSmall = errors.New("disk too small for the layout")

// Layout is the partition table nodeinit wants on one disk. It is computed by
// PlanLayout without I/O and written by WriteTable.
type Layout struct {
	SectorSize int        `json:"sector_size"` // logical sector size of the disk, 512 or 4096
	DiskSize   int64      `json:"disk_size"`   // bytes
	Partitions []PartSpec `json:"partitions"`  // in disk order
	// MinDiskSize is the smallest disk in bytes that these storage_vol sizes
	// fit on (MinDiskBytes): what the plan states to the operator.
	MinDiskSize int64 `json:"min_disk_size,omitempty"`
	// Notices say where storage_vol was not taken as written (a size rounded up
	// to the minimum, a volume for other disks); the plan shows them as warnings.
	Notices []string `json:"notices,omitempty"`
}

// PartSpec is one partition of a Layout. Start and Size are bytes, multiples of 1 MiB.
type PartSpec struct {
	Number   int    `json:"number"`    // GPT entry index, fixed per volume
	Volume   string `json:"volume"`    // storage_vol name: boot, root, config, logging, swap, data
	Name     string `json:"name"`      // PARTLABEL
	TypeGUID string `json:"type_guid"` // lower case
	Start    int64  `json:"start"`
	Size     int64  `json:"size"`
	FS       string `json:"fs"` // FSVfat, FSExt4, FSSwap or FSRaw
}

// End returns the first byte after the partition.
func (p PartSpec) End() int64 { return p.Start + p.Size }

// volume describes one storage_vol name and the partitions it makes.
type volume struct {
	name    string
	minMiB  int64
	canSkip bool // 0 is allowed
	parts   []PartSpec
}

// volumeTable lists the volumes in disk order. The root volume makes two
// equal partitions (slots a and b).
func volumeTable() []volume {
	return []volume{
		{name: "boot", minMiB: 260, parts: []PartSpec{{Number: 1, Name: LabelESP, TypeGUID: TypeESP, FS: FSVfat}}},
		{name: "root", minMiB: 256, parts: []PartSpec{
			{Number: 2, Name: LabelRootA, TypeGUID: rootType(), FS: FSRaw},
			{Number: 3, Name: LabelRootB, TypeGUID: rootType(), FS: FSRaw},
		}},
		{name: "config", minMiB: 16, parts: []PartSpec{{Number: 4, Name: LabelConfig, TypeGUID: TypeLinuxData, FS: FSExt4}}},
		{name: "logging", minMiB: 64, canSkip: true, parts: []PartSpec{{Number: 5, Name: LabelLogging, TypeGUID: TypeLinuxData, FS: FSExt4}}},
		{name: "swap", minMiB: 16, canSkip: true, parts: []PartSpec{{Number: 6, Name: LabelSwap, TypeGUID: TypeSwap, FS: FSSwap}}},
		{name: "data", minMiB: 1024, canSkip: true, parts: []PartSpec{{Number: 7, Name: LabelData, TypeGUID: TypeLinuxData, FS: FSExt4}}},
	}
}

// rootType is the DPS root partition type of the architecture we run on (the
// init runs on the machine it installs), or generic Linux data when the spec
// has none that we know.
func rootType() string {
	switch runtime.GOARCH {
	case "amd64":
		return TypeRootAMD64
	case "arm64":
		return TypeRootARM64
	}
	return TypeLinuxData
}

// defaultTiers are the sizes in MiB of the volumes that storage_vol does not
// name (-1 is the rest), each tier for disks of at least fromBytes. A larger
// disk gets larger defaults, but never a refusal that a smaller disk would not
// get: when a tier's defaults do not fit beside the sizes storage_vol gives,
// PlanLayout falls back to the tier below. So whether a layout fits grows with
// the disk, and MinDiskBytes is a true threshold.
var defaultTiers = []struct {
	fromBytes int64
	mib       map[string]int64
}{
	{0, map[string]int64{"boot": 512, "root": 2048, "config": 64, "logging": 2048, "swap": 1024, "data": -1}},
	{32 << 30, map[string]int64{"boot": 512, "root": 2048, "config": 64, "logging": 2048, "swap": 2048, "data": -1}},
	{128 << 30, map[string]int64{"boot": 512, "root": 4096, "config": 64, "logging": 8192, "swap": 2048, "data": -1}},
}

// tierOf is the largest tier of defaults for a disk of diskSize bytes.
func tierOf(diskSize int64) int {
	t := 0
	for i, d := range defaultTiers {
		if diskSize >= d.fromBytes {
			t = i
		}
	}
	return t
}

// tableMiB is the room a disk needs besides its partitions: 1 MiB before the
// first partition (MBR, GPT header and entries) and the last MiB kept free for
// the backup GPT, both for alignment.
const tableMiB = 2

// checkGeometry refuses what PlanLayout and MinDiskBytes cannot plan for.
func checkGeometry(diskSize int64, sectorSize int) error {
	if sectorSize != 512 && sectorSize != 4096 {
		return fmt.Errorf("plan layout: logical sector size %d is not supported (512 or 4096)", sectorSize)
	}
	if diskSize <= 0 || diskSize%int64(sectorSize) != 0 {
		return fmt.Errorf("plan layout: disk size %d bytes is not a positive multiple of the %d-byte sector", diskSize, sectorSize)
	}
	return nil
}

// PlanLayout computes the partition table for a disk of diskSize bytes with
// the given logical sector size. vols holds storage_vol sizes in MiB by volume
// name (boot, root, config, logging, swap, data, and oVirt's efi, swap2, data2):
// -1 is the rest of the disk, 0 is none, an absent name takes the default. root
// is the size of each slot. Names are matched case-insensitively. A size below a
// volume's minimum is rounded up, with a notice in Layout.Notices. A disk
// smaller than MinDiskBytes is refused with an error that wraps ErrDiskTooSmall
// and an *operr.Error saying the minimum. It does no I/O.
func PlanLayout(diskSize int64, sectorSize int, vols map[string]int64) (Layout, error) {
	if err := checkGeometry(diskSize, sectorSize); err != nil {
		return Layout{}, err
	}
	table := volumeTable()
	diskMiB := diskSize / MiB
	top := tierOf(diskSize)
	var s sizing
	fits := false
	for tier := top; tier >= 0 && !fits; tier-- {
		var err error
		if s, err = sizeVolumes(table, vols, defaultTiers[tier].mib); err != nil {
			return Layout{}, err
		}
		if fits = s.needMiB <= diskMiB; fits && tier < top {
			s.notices = append(s.notices, fmt.Sprintf("the default sizes for disks of %d GiB and more do not fit beside the storage_vol sizes given: using the defaults for disks under %d GiB (%s)",
				defaultTiers[top].fromBytes>>30, defaultTiers[tier+1].fromBytes>>30, describeSizes(table, s)))
		}
	}
	minMiB, atMin, err := minDiskMiB(table, vols)
	if err != nil {
		return Layout{}, err
	}
	if !fits {
		return Layout{}, fmt.Errorf("plan layout: %w: %w", ErrDiskTooSmall, &operr.Error{
			What: fmt.Sprintf("the disk is %d MiB and this layout needs at least %d MiB (%d MiB short)", diskMiB, minMiB, minMiB-diskMiB),
			Why:  fmt.Sprintf("%s, and %d MiB for the partition tables", describeSizes(table, atMin), tableMiB),
			Fix:  fmt.Sprintf("use a disk of at least %d MiB, or give smaller sizes in storage_vol (logging, swap and data may be 0)", minMiB),
		})
	}
	return assemble(table, s, diskSize, sectorSize, minMiB), nil
}

// assemble lays the volumes of table out on the disk as s sizes them, packed
// from the first MiB in table order; the rest volume, if any, takes what is
// left but the last MiB.
func assemble(table []volume, s sizing, diskSize int64, sectorSize int, minMiB int64) Layout {
	sizes := s.sizes
	if s.rest != "" {
		sizes[s.rest] = (diskSize/MiB - tableMiB - s.fixedMiB) / int64(len(partsOf(table, s.rest)))
	}
	l := Layout{SectorSize: sectorSize, DiskSize: diskSize, MinDiskSize: minMiB * MiB, Notices: s.notices}
	next := MiB
	for _, v := range table {
		size := sizes[v.name]
		if size == 0 {
			continue
		}
		for _, p := range v.parts {
			p.Volume = v.name
			p.Start = next
			p.Size = size * MiB
			next += p.Size
			l.Partitions = append(l.Partitions, p)
		}
	}
	return l
}

// MinDiskBytes is the size of the smallest disk with the given logical sector
// size on which PlanLayout plans vols (storage_vol sizes as PlanLayout takes
// them; nil for the default layout): a disk of this size plans, and any disk
// smaller, even by one sector, is refused. The error is PlanLayout's for vols
// that no disk could take (an unknown volume, two volumes as the rest). It
// does no I/O.
func MinDiskBytes(sectorSize int, vols map[string]int64) (int64, error) {
	if err := checkGeometry(int64(sectorSize), sectorSize); err != nil {
		return 0, err
	}
	minMiB, _, err := minDiskMiB(volumeTable(), vols)
	return minMiB * MiB, err
}

// minDiskMiB is the smallest disk in MiB that fits vols, and the sizing that
// fits it. A tier of defaults applies from its fromBytes on, and PlanLayout
// tries every tier up to the disk's, so the smallest disk is the least, over
// the tiers, of the larger of where the tier starts and what it needs.
func minDiskMiB(table []volume, vols map[string]int64) (int64, sizing, error) {
	best, bestMiB := sizing{}, int64(-1)
	for _, t := range defaultTiers {
		s, err := sizeVolumes(table, vols, t.mib)
		if err != nil {
			return 0, sizing{}, err
		}
		need := max(s.needMiB, t.fromBytes/MiB)
		if bestMiB < 0 || need < bestMiB {
			best, bestMiB = s, need
		}
	}
	return bestMiB, best, nil
}

// sizing is storage_vol resolved against one tier of default sizes.
type sizing struct {
	sizes    map[string]int64 // MiB of each partition of a volume; 0 is none
	rest     string           // the volume that takes the rest of the disk, or ""
	fixedMiB int64            // every partition but the rest volume's
	needMiB  int64            // the smallest disk that fits: fixedMiB, the rest at its minimum and tableMiB
	notices  []string
}

// sizeVolumes resolves vols (see PlanLayout) against the default sizes in
// defaults. Its errors do not depend on the disk.
func sizeVolumes(table []volume, vols map[string]int64, defaults map[string]int64) (sizing, error) {
	known := map[string]bool{}
	for _, v := range table {
		known[v.name] = true
	}
	given := map[string]int64{}
	var notices []string
	names := make([]string, 0, len(vols))
	for name := range vols {
		names = append(names, name)
	}
	sort.Strings(names) // notices in a fixed order
	for _, name := range names {
		size := vols[name]
		switch n := strings.ToLower(name); {
		case known[n]:
			given[n] = size
		case n == "swap2" || n == "data2":
			// They size the app-data disks (PlanAppDataLayout), not the install disk.
		case n != "efi":
			return sizing{}, fmt.Errorf("plan layout: storage_vol names unknown volume %q: use EFI, Boot, Root, Config, Logging, Swap, Data, Swap2 or Data2", name)
		}
	}
	// oVirt Node 3 had an EFI partition for the loader alone and a Boot partition;
	// our ESP is both, and also holds both slots' kernels and initrds.
	if efi, ok := lookupFold(vols, "efi"); ok && known["boot"] {
		boot, hasBoot := given["boot"]
		switch {
		case hasBoot && efi > boot:
			notices = append(notices, fmt.Sprintf("storage_vol gives EFI=%d and Boot=%d; both size the one ESP, which takes the larger, %d MiB", efi, boot, efi))
			given["boot"] = efi
		case hasBoot:
			notices = append(notices, fmt.Sprintf("storage_vol gives EFI=%d and Boot=%d; both size the one ESP, which takes the larger, %d MiB", efi, boot, boot))
		case efi >= 0 && efi < defaults["boot"]:
			notices = append(notices, fmt.Sprintf("storage_vol EFI=%d MiB sized oVirt Node's loader alone; nodeinit's ESP also holds the kernels of both slots: using %d MiB", efi, defaults["boot"]))
		default:
			given["boot"] = efi
		}
	}

	// Resolve each volume's size in MiB; find the one that takes the rest.
	s := sizing{sizes: map[string]int64{}}
	for _, v := range table {
		size, explicit := given[v.name]
		if !explicit {
			size = defaults[v.name]
		}
		switch {
		case size == -1:
			if s.rest != "" {
				return sizing{}, fmt.Errorf("plan layout: storage_vol gives both %s and %s as -1 (the rest of the disk): only one volume can take the rest", s.rest, v.name)
			}
			s.rest = v.name
		case size == 0 && v.canSkip:
		case size == 0:
			return sizing{}, fmt.Errorf("plan layout: storage_vol sets %s to 0, but nodeinit needs it: give at least %d MiB or leave it out for the default", v.name, v.minMiB)
		case size < 0:
			return sizing{}, fmt.Errorf("plan layout: storage_vol %s=%d MiB is negative: use a size in MiB, -1 for the rest or 0 for none", v.name, size)
		case size < v.minMiB:
			notices = append(notices, fmt.Sprintf("storage_vol %s=%d MiB is below the %d MiB nodeinit needs: using %d MiB", v.name, size, v.minMiB, v.minMiB))
			size = v.minMiB
		}
		s.sizes[v.name] = size
		if size > 0 {
			s.fixedMiB += size * int64(len(v.parts))
		}
	}
	s.needMiB = s.fixedMiB + tableMiB
	if s.rest != "" {
		s.needMiB += minMiB(table, s.rest) * int64(len(partsOf(table, s.rest)))
	}
	s.notices = notices
	return s, nil
}

// lookupFold finds a storage_vol size by name, case-insensitively.
func lookupFold(vols map[string]int64, name string) (int64, bool) {
	for k, v := range vols {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return 0, false
}

func partsOf(table []volume, name string) []PartSpec {
	for _, v := range table {
		if v.name == name {
			return v.parts
		}
	}
	return nil
}

func minMiB(table []volume, name string) int64 {
	for _, v := range table {
		if v.name == name {
			return v.minMiB
		}
	}
	return 0
}

// describeSizes prints the resolved sizes the way an operator would write them
// in storage_vol (root is the size of each slot).
func describeSizes(table []volume, s sizing) string {
	var b strings.Builder
	for i, v := range table {
		if i > 0 {
			b.WriteString(", ")
		}
		each := ""
		if len(v.parts) > 1 {
			each = fmt.Sprintf(" (each of %d slots)", len(v.parts))
		}
		if v.name == s.rest {
			fmt.Fprintf(&b, "%s=rest (min %d%s)", v.name, v.minMiB, each)
			continue
		}
		fmt.Fprintf(&b, "%s=%d%s", v.name, s.sizes[v.name], each)
	}
	return b.String()
}

// Find returns the partition with the given PARTLABEL.
func (l Layout) Find(name string) (PartSpec, bool) {
	for _, p := range l.Partitions {
		if p.Name == name {
			return p, true
		}
	}
	return PartSpec{}, false
}

// Diff says how an existing partition table differs from a Layout.
type Diff struct {
	Missing []PartSpec   `json:"missing,omitempty"` // wanted, not on disk (or not under that label)
	Changed []PartChange `json:"changed,omitempty"` // on disk under the label, but elsewhere or of another type
	Extra   []Partition  `json:"extra,omitempty"`   // on disk, not in the layout
}

// PartChange is one partition whose label matches but whose place or type does not.
type PartChange struct {
	Want PartSpec  `json:"want"`
	Have Partition `json:"have"`
}

// Matches reports whether the disk already holds exactly the layout, so
// writing the table again would change nothing.
func (d Diff) Matches() bool {
	return len(d.Missing) == 0 && len(d.Changed) == 0 && len(d.Extra) == 0
}

// String describes the differences in one line per partition.
func (d Diff) String() string {
	if d.Matches() {
		return "partition table matches the layout"
	}
	var lines []string
	for _, p := range d.Missing {
		lines = append(lines, fmt.Sprintf("missing %s (partition %d, %d MiB at %d MiB)", p.Name, p.Number, p.Size/MiB, p.Start/MiB))
	}
	for _, c := range d.Changed {
		lines = append(lines, fmt.Sprintf("%s differs: want partition %d, %d MiB at %d MiB, type %s; have partition %d, %d MiB at %d MiB, type %s",
			c.Want.Name, c.Want.Number, c.Want.Size/MiB, c.Want.Start/MiB, c.Want.TypeGUID,
			c.Have.Number, c.Have.SizeBytes/MiB, c.Have.StartByte/MiB, strings.ToLower(c.Have.TypeGUID)))
	}
	for _, p := range d.Extra {
		lines = append(lines, fmt.Sprintf("extra partition %d %q (%d MiB at %d MiB)", p.Number, p.PartLabel, p.SizeBytes/MiB, p.StartByte/MiB))
	}
	return strings.Join(lines, "\n")
}

// Compare matches existing partitions to the layout by PARTLABEL; a partition
// matches when its number, start, size and type are the same.
func (l Layout) Compare(existing []Partition) Diff {
	var d Diff
	used := make([]bool, len(existing))
	for _, want := range l.Partitions {
		found := false
		for i, have := range existing {
			if used[i] || have.PartLabel != want.Name {
				continue
			}
			used[i], found = true, true
			if have.Number != want.Number || have.StartByte != want.Start || have.SizeBytes != want.Size ||
				!strings.EqualFold(have.TypeGUID, want.TypeGUID) {
				d.Changed = append(d.Changed, PartChange{Want: want, Have: have})
			}
			break
		}
		if !found {
			d.Missing = append(d.Missing, want)
		}
	}
	for i, have := range existing {
		if !used[i] {
			d.Extra = append(d.Extra, have)
		}
	}
	return d
}

// KeepInPlace reports whether the existing partition labelled name can be
// kept, contents and all, under the new layout: it must start where the
// layout puts it and the layout's partition must be at least as large, so the
// filesystem on it stays whole. The error says why not and what to change.
func (l Layout) KeepInPlace(name string, existing []Partition) error {
	want, ok := l.Find(name)
	if !ok {
		return fmt.Errorf("keep %s: the new layout has no %s partition: give it a size in storage_vol or drop nodeinit.keep", name, name)
	}
	for _, have := range existing {
		if have.PartLabel != name {
			continue
		}
		if have.StartByte != want.Start {
			return fmt.Errorf("keep %s: it starts at %d MiB but the new layout puts it at %d MiB: use the storage_vol sizes of the existing install or drop nodeinit.keep",
				name, have.StartByte/MiB, want.Start/MiB)
		}
		if want.Size < have.SizeBytes {
			return fmt.Errorf("keep %s: it is %d MiB but the new layout gives it %d MiB (%d MiB short): raise its storage_vol size or drop nodeinit.keep",
				name, have.SizeBytes/MiB, want.Size/MiB, (have.SizeBytes-want.Size+MiB-1)/MiB)
		}
		return nil
	}
	return fmt.Errorf("keep %s: the disk has no partition labelled %s to keep: drop nodeinit.keep", name, name)
}

// KernelPartitions is the partitions of l as the kernel should show them.
func (l Layout) KernelPartitions() []device.Partition {
	out := make([]device.Partition, 0, len(l.Partitions))
	for _, p := range l.Partitions {
		out = append(out, device.Partition{Number: p.Number, StartByte: p.Start, SizeBytes: p.Size})
	}
	return out
}
