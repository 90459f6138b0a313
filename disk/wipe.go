package disk

import (
	"encoding/binary"
	"sort"
	"time"
)

// WipeOptions tunes Wipe and WipeBlock.
type WipeOptions struct {
	// SectorSize is the logical sector size; 0 asks the device (512 for an image file).
	SectorSize int
	// Partitions are extents to clear besides those the wipe finds itself (the
	// GPT, its backup, the MBR and the kernel's list), for partitions known
	// from elsewhere, e.g. facts gathered before a table was lost.
	Partitions []Partition
	// Mode is how the disk is erased (EraseSignatures when empty).
	Mode EraseMode
	// Discard is the old spelling of Mode EraseDiscard, kept for callers
	// that predate Mode.
	Discard bool
	// Secure asks for BLKSECDISCARD in EraseDiscard mode; when the device
	// cannot, a plain discard is issued and the report says so.
	Secure bool
	// Keep are partitions whose contents must survive (nodeinit.keep=data):
	// no region inside them is cleared, discarded or zeroed.
	Keep []Partition
	// Progress, when set, is called as bytes are cleared (done of total),
	// so that the engine can show MB/s and an ETA. total is fixed per wipe.
	Progress func(done, total int64)
}

// WipeReport says what Wipe did.
type WipeReport struct {
	Device string `json:"device"`
	// Mode is the erase mode that ran: signatures, discard or zero.
	Mode EraseMode `json:"mode"`
	// Method is how the signature regions were cleared: "zeroout" (BLKZEROOUT,
	// the device zeroes them itself), "punch" (holes punched in an image
	// file) or "write" (zeros written).
	Method string `json:"method"`
	// Discarded is set when the device (or every byte not kept) was discarded.
	Discarded bool `json:"discarded,omitempty"`
	// DiscardMethod is BLKDISCARD or BLKSECDISCARD when Discarded.
	DiscardMethod string `json:"discard_method,omitempty"`
	// DiscardError says why a requested discard (or secure discard) did not happen.
	DiscardError string `json:"discard_error,omitempty"`
	// DiscardZeroes says whether the device guarantees that discarded blocks
	// read back as zeroes, and how that was learnt. Signature regions are
	// zeroed after a discard either way.
	DiscardZeroes string `json:"discard_zeroes,omitempty"`
	// Erased is the byte count discarded or zeroed over the whole disk (or
	// everything not kept) in discard and zero modes.
	Erased int64 `json:"erased,omitempty"`
	// Partitions is how many partition extents were cleared besides the disk's own.
	Partitions int `json:"partitions"`
	// Regions and Bytes count the signature ranges zeroed.
	Regions int   `json:"regions"`
	Bytes   int64 `json:"bytes"`
	// Found is what the wipe found before writing: partitions, PVs, LVs,
	// md members, LUKS volumes and filesystems with their backup counts.
	Found []Found `json:"found,omitempty"`
	// Remote are LV extents on PVs that are not on this disk: they survive
	// this wipe (see CrossDiskLVs).
	Remote   []RemoteSegment `json:"remote,omitempty"`
	Duration time.Duration   `json:"duration"`
}

// extent is a byte range on a disk.
type extent struct{ Start, Size int64 }

func (e extent) end() int64 { return e.Start + e.Size }

// Where signatures live, relative to the start of a disk or partition:
//
//   - head, first 8 MiB: MBR, GPT header and entries, LVM label (sectors 0-3)
//     and metadata, md 1.1 (0) and 1.2 (4 KiB), ext2/3/4 (1 KiB), xfs (0),
//     vfat, swap (last bytes of the first page), iso9660 (32 KiB), btrfs
//     primary (64 KiB), LUKS1 and LUKS2 with both headers (the LUKS2 secondary
//     header sits at 16 KiB up to 4 MiB depending on the metadata size), ZFS
//     labels 0 and 1.
//   - tail, last 1 MiB: backup GPT, md 0.90 (64 KiB aligned, 64 KiB from the
//     end) and 1.0 (8 KiB from the end), ZFS labels 2 and 3, hardware RAID
//     metadata (DDF, Intel IMSM and friends keep theirs in the last sectors).
//   - btrfs mirror superblocks at 64 MiB, 256 GiB and 1 PiB.
const (
	wipeHead = 8 * MiB
	wipeTail = 1 * MiB
)

var btrfsMirrors = []int64{64 * MiB, 256 << 30, 1 << 50}

// btrfsMirrorSpan is how much is cleared at each btrfs mirror (its superblock is 4 KiB).
const btrfsMirrorSpan = 64 << 10

// wipeRegions returns the sorted, merged, sector-aligned byte ranges that
// hold signatures on a disk of size bytes and on each of parts.
func wipeRegions(size int64, sectorSize int, parts []extent) []extent {
	var rs []extent
	add := func(container extent, off, n int64) {
		start := container.Start + off
		end := start + n
		if start < container.Start {
			start = container.Start
		}
		if end > container.end() {
			end = container.end()
		}
		if end > size {
			end = size
		}
		if start < 0 {
			start = 0
		}
		if end > start {
			rs = append(rs, extent{start, end - start})
		}
	}
	for _, c := range append([]extent{{0, size}}, parts...) {
		if c.Size <= 0 || c.Start >= size {
			continue
		}
		add(c, 0, wipeHead)
		add(c, c.Size-wipeTail, wipeTail)
		for _, m := range btrfsMirrors {
			if m+btrfsMirrorSpan <= c.Size {
				add(c, m, btrfsMirrorSpan)
			}
		}
	}
	return mergeAligned(rs, int64(sectorSize), size)
}

// subtractKept removes from rs every byte inside a kept extent. Kept extents
// are whole partitions, so they are already sector aligned.
func subtractKept(rs []extent, keep []extent) []extent {
	for _, k := range keep {
		var out []extent
		for _, r := range rs {
			if r.end() <= k.Start || r.Start >= k.end() {
				out = append(out, r)
				continue
			}
			if r.Start < k.Start {
				out = append(out, extent{r.Start, k.Start - r.Start})
			}
			if r.end() > k.end() {
				out = append(out, extent{k.end(), r.end() - k.end()})
			}
		}
		rs = out
	}
	return rs
}

// mergeAligned widens each range to whole sectors, then sorts and merges them.
func mergeAligned(rs []extent, sector, size int64) []extent {
	if sector <= 0 {
		sector = 512
	}
	for i, r := range rs {
		start := r.Start / sector * sector
		end := (r.end() + sector - 1) / sector * sector
		if end > size {
			end = size
		}
		rs[i] = extent{start, end - start}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Start < rs[j].Start })
	var out []extent
	for _, r := range rs {
		if n := len(out); n > 0 && r.Start <= out[n-1].end() {
			if r.end() > out[n-1].end() {
				out[n-1].Size = r.end() - out[n-1].Start
			}
			continue
		}
		out = append(out, r)
	}
	return out
}

// mbrPartitions returns the extents of the partitions in a DOS partition
// table: the four primary entries and the logical partitions in the chain of
// extended boot records. readAt reads from the disk. A protective MBR (type
// 0xee) or a disk without the 0x55aa signature gives none.
func mbrPartitions(readAt func(b []byte, off int64) (int, error), sectorSize int64) []extent {
	const maxLogical = 128
	sector := make([]byte, 512)
	if n, err := readAt(sector, 0); err != nil || n != 512 || sector[510] != 0x55 || sector[511] != 0xaa {
		return nil
	}
	var out []extent
	var extStart int64 = -1
	for i := 0; i < 4; i++ {
		e := sector[446+16*i : 446+16*(i+1)]
		typ := e[4]
		start := int64(binary.LittleEndian.Uint32(e[8:]))
		count := int64(binary.LittleEndian.Uint32(e[12:]))
		if typ == 0 || count == 0 {
			continue
		}
		if typ == 0xee {
			return nil
		}
		out = append(out, extent{start * sectorSize, count * sectorSize})
		if typ == 0x05 || typ == 0x0f || typ == 0x85 {
			extStart = start
		}
	}
	// Logical partitions: each EBR holds the partition (relative to the EBR)
	// and a link to the next EBR (relative to the extended partition).
	ebr := extStart
	for i := 0; ebr > 0 && i < maxLogical; i++ {
		if n, err := readAt(sector, ebr*sectorSize); err != nil || n != 512 || sector[510] != 0x55 || sector[511] != 0xaa {
			break
		}
		first, link := sector[446:462], sector[462:478]
		if start, count := int64(binary.LittleEndian.Uint32(first[8:])), int64(binary.LittleEndian.Uint32(first[12:])); first[4] != 0 && count > 0 {
			out = append(out, extent{(ebr + start) * sectorSize, count * sectorSize})
		}
		next := int64(binary.LittleEndian.Uint32(link[8:]))
		if link[4] == 0 || next == 0 {
			break
		}
		ebr = extStart + next
	}
	return out
}

// SignatureRegions are the ranges a whole-device wipe of a device of size bytes
// clears when it knows no partitions: its start and end, where every
// partition table, filesystem and volume-manager signature lives. mkfs clears
// them first, so blkid sees only the new filesystem.
func SignatureRegions(size int64, sectorSize int) []Range {
	var out []Range
	for _, e := range wipeRegions(size, sectorSize, nil) {
		out = append(out, Range{Start: e.Start, Size: e.Size})
	}
	return out
}
