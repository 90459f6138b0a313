package disk

import (
	"encoding/binary"
	"testing"
)

func TestWipeRegions(t *testing.T) {
	const size = 1 << 40
	parts := []extent{{MiB, 512 * MiB}, {513 * MiB, 600 << 30}}
	rs := wipeRegions(size, 4096, parts)
	covered := func(off int64) bool {
		for _, r := range rs {
			if off >= r.Start && off < r.end() {
				return true
			}
		}
		return false
	}
	for name, off := range map[string]int64{
		"MBR":                       0,
		"primary GPT header (4K)":   4096,
		"md 1.2 on disk":            4096,
		"LUKS2 secondary max":       4 * MiB,
		"backup GPT":                size - 4096,
		"md 0.90 near end":          size - 64<<10,
		"btrfs mirror 64M of disk":  64*MiB + 64,
		"btrfs mirror 256G of disk": 256<<30 + 64,
		"ESP start":                 MiB,
		"ESP end":                   513*MiB - 512,
		"data start + 4K":           513*MiB + 4096,
		"data btrfs mirror 256G":    513*MiB + 256<<30 + 64,
		"data end":                  513*MiB + 600<<30 - 1,
	} {
		if !covered(off) {
			t.Errorf("%s (offset %d) not wiped", name, off)
		}
	}
	if covered(100 << 30) {
		t.Error("the middle of the disk is wiped")
	}
	var total int64
	for i, r := range rs {
		total += r.Size
		if r.Start%4096 != 0 || r.Size%4096 != 0 {
			t.Errorf("region %+v not sector aligned", r)
		}
		if i > 0 && r.Start <= rs[i-1].end() {
			t.Errorf("regions %+v and %+v overlap or touch", rs[i-1], r)
		}
	}
	if total > 64*MiB {
		t.Errorf("wipes %d MiB, want a few MiB per partition", total/MiB)
	}
}

func TestWipeRegionsSmallDisk(t *testing.T) {
	rs := wipeRegions(3*MiB, 512, []extent{{MiB, 10 * MiB}}) // partition past the end is clamped
	if len(rs) != 1 || rs[0] != (extent{0, 3 * MiB}) {
		t.Errorf("regions %+v, want the whole 3 MiB disk", rs)
	}
}

func TestMBRPartitions(t *testing.T) {
	disk := make([]byte, 64*1024)
	put := func(sector int64, i int, typ byte, start, count uint32) {
		e := disk[sector*512+446+int64(16*i):]
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], start)
		binary.LittleEndian.PutUint32(e[12:], count)
		disk[sector*512+510], disk[sector*512+511] = 0x55, 0xaa
	}
	put(0, 0, 0x83, 2048, 100)
	put(0, 1, 0x05, 10, 100) // extended at sector 10
	put(10, 0, 0x83, 2, 20)  // logical 1 at 12
	put(10, 1, 0x05, 40, 50) // next EBR at 10+40
	put(50, 0, 0x8e, 2, 30)  // logical 2 at 52
	readAt := func(b []byte, off int64) (int, error) { return copy(b, disk[off:]), nil }
	got := mbrPartitions(readAt, 512)
	want := []extent{{2048 * 512, 100 * 512}, {10 * 512, 100 * 512}, {12 * 512, 20 * 512}, {52 * 512, 30 * 512}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("partition %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	disk[446+4] = 0xee // protective MBR: the GPT is authoritative
	if got := mbrPartitions(readAt, 512); got != nil {
		t.Errorf("protective MBR gives %+v", got)
	}
}

func TestSubtractKeptLeavesKeptPartitionWhole(t *testing.T) {
	const size = 64 << 30
	data := extent{9 << 30, 50 << 30}
	regions := subtractKept(wipeRegions(size, 512, []extent{{1 << 20, 512 << 20}, data}), []extent{data})
	if len(regions) == 0 {
		t.Fatal("nothing left to wipe")
	}
	for _, r := range regions {
		if r.Start < data.end() && r.end() > data.Start {
			t.Fatalf("region %+v overlaps the kept partition %+v", r, data)
		}
	}
	// The disk head (GPT) and tail (backup GPT) must still be cleared.
	if regions[0].Start != 0 || regions[len(regions)-1].end() != size {
		t.Fatalf("head or tail not wiped: %+v", regions)
	}
}
