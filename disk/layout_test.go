package disk

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/operr"
)

const gibibyte = 1 << 30

func TestPlanLayoutDefaults(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		l, err := PlanLayout(64*gibibyte, ss, nil)
		if err != nil {
			t.Fatalf("sector %d: %v", ss, err)
		}
		want := []struct {
			name   string
			num    int
			sizeMB int64
			fs     string
		}{
			{LabelESP, 1, 512, FSVfat},
			{LabelRootA, 2, 2048, FSRaw},
			{LabelRootB, 3, 2048, FSRaw},
			{LabelConfig, 4, 64, FSExt4},
			{LabelLogging, 5, 2048, FSExt4},
			{LabelSwap, 6, 2048, FSSwap},
			{LabelData, 7, 64*1024 - 2 - 512 - 4096 - 64 - 2048 - 2048, FSExt4},
		}
		if len(l.Partitions) != len(want) {
			t.Fatalf("sector %d: %d partitions, want %d: %+v", ss, len(l.Partitions), len(want), l.Partitions)
		}
		next := MiB
		for i, w := range want {
			p := l.Partitions[i]
			if p.Name != w.name || p.Number != w.num || p.Size != w.sizeMB*MiB || p.FS != w.fs {
				t.Errorf("sector %d: partition %d = %+v, want %+v", ss, i, p, w)
			}
			if p.Start != next {
				t.Errorf("sector %d: %s starts at %d, want %d (packed, 1 MiB aligned)", ss, p.Name, p.Start, next)
			}
			next = p.End()
		}
		if last := l.Partitions[len(l.Partitions)-1]; last.End() != l.DiskSize-MiB {
			t.Errorf("sector %d: last partition ends at %d, want the last MiB free (%d)", ss, last.End(), l.DiskSize-MiB)
		}
		if l.SectorSize != ss || l.DiskSize != 64*gibibyte {
			t.Errorf("layout geometry %d/%d", l.SectorSize, l.DiskSize)
		}
	}
}

func TestPlanLayoutTypes(t *testing.T) {
	l, err := PlanLayout(64*gibibyte, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{LabelESP: TypeESP, LabelSwap: TypeSwap, LabelConfig: TypeLinuxData, LabelLogging: TypeLinuxData, LabelData: TypeLinuxData,
		LabelRootA: rootType(), LabelRootB: rootType()}
	for _, p := range l.Partitions {
		if p.TypeGUID != want[p.Name] {
			t.Errorf("%s type %s, want %s", p.Name, p.TypeGUID, want[p.Name])
		}
	}
}

func TestPlanLayoutScalesWithDisk(t *testing.T) {
	big, err := PlanLayout(1<<40, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	small, err := PlanLayout(16*gibibyte, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	sizeOf := func(l Layout, name string) int64 { p, _ := l.Find(name); return p.Size / MiB }
	for _, c := range []struct {
		l    Layout
		name string
		want int64
	}{
		{big, LabelRootA, 4096}, {big, LabelLogging, 8192}, {big, LabelSwap, 2048},
		{small, LabelRootA, 2048}, {small, LabelLogging, 2048}, {small, LabelSwap, 1024},
	} {
		if got := sizeOf(c.l, c.name); got != c.want {
			t.Errorf("disk %d gibibyte: %s = %d MiB, want %d", c.l.DiskSize/gibibyte, c.name, got, c.want)
		}
	}
}

func TestPlanLayoutStorageVol(t *testing.T) {
	cases := []struct {
		name  string
		disk  int64
		vols  map[string]int64
		check func(t *testing.T, l Layout)
	}{
		{"explicit sizes, names any case", 32 * gibibyte, map[string]int64{"BOOT": 300, "Root": 1024, "swap": 100, "Config": 20, "logging": 500, "data": 4000},
			func(t *testing.T, l Layout) {
				for name, mb := range map[string]int64{LabelESP: 300, LabelRootA: 1024, LabelRootB: 1024, LabelSwap: 100, LabelConfig: 20, LabelLogging: 500, LabelData: 4000} {
					if p, ok := l.Find(name); !ok || p.Size != mb*MiB {
						t.Errorf("%s = %+v, want %d MiB", name, p, mb)
					}
				}
			}},
		{"0 drops swap, logging, data and keeps numbers", 16 * gibibyte, map[string]int64{"swap": 0, "logging": 0, "data": 0},
			func(t *testing.T, l Layout) {
				if len(l.Partitions) != 4 {
					t.Fatalf("partitions %+v", l.Partitions)
				}
				if p, _ := l.Find(LabelConfig); p.Number != 4 {
					t.Errorf("config number %d, want 4", p.Number)
				}
			}},
		{"-1 on logging takes the rest", 16 * gibibyte, map[string]int64{"logging": -1, "data": 2048},
			func(t *testing.T, l Layout) {
				lg, _ := l.Find(LabelLogging)
				data, _ := l.Find(LabelData)
				if data.Size != 2048*MiB || data.End() != l.DiskSize-MiB {
					t.Errorf("data %+v", data)
				}
				if want := int64(16*1024-2-512-4096-64-1024-2048) * MiB; lg.Size != want {
					t.Errorf("logging %d MiB, want %d", lg.Size/MiB, want/MiB)
				}
			}},
		{"-1 on root splits the rest between the slots", 16 * gibibyte, map[string]int64{"root": -1, "data": 0},
			func(t *testing.T, l Layout) {
				a, _ := l.Find(LabelRootA)
				b, _ := l.Find(LabelRootB)
				if a.Size != b.Size || a.Size != int64((16*1024-2-512-64-2048-1024)/2)*MiB {
					t.Errorf("slots %d and %d MiB", a.Size/MiB, b.Size/MiB)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, ss := range []int{512, 4096} {
				l, err := PlanLayout(c.disk, ss, c.vols)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range l.Partitions {
					if p.Start%MiB != 0 || p.Size%MiB != 0 {
						t.Errorf("%s not aligned: %+v", p.Name, p)
					}
				}
				c.check(t, l)
			}
		})
	}
}

func TestPlanLayoutErrors(t *testing.T) {
	cases := []struct {
		name string
		disk int64
		ss   int
		vols map[string]int64
		want []string
	}{
		{"too small says how many MiB", 8 * gibibyte, 512, nil,
			[]string{"disk is 8192 MiB", "needs at least 8770 MiB", "(578 MiB short)", "root=2048 (each of 2 slots)", "data=rest (min 1024)", "2 MiB for the partition tables"}},
		{"too small with explicit sizes", 4 * gibibyte, 4096, map[string]int64{"data": 3000},
			[]string{"disk is 4096 MiB", "needs at least 10746 MiB", "(6650 MiB short)", "data=3000"}},
		{"two rests", 32 * gibibyte, 512, map[string]int64{"logging": -1}, []string{"both logging and data as -1"}},
		{"root 0", 32 * gibibyte, 512, map[string]int64{"root": 0}, []string{"sets root to 0", "at least 256 MiB"}},
		{"unknown name", 32 * gibibyte, 512, map[string]int64{"home": 100}, []string{`unknown volume "home"`}},
		{"rounded up, then too small", 4 * gibibyte, 512, map[string]int64{"data": 5, "swap": 0, "logging": 0, "root": 2000}, []string{"disk too small"}},
		{"negative", 32 * gibibyte, 512, map[string]int64{"swap": -5}, []string{"swap=-5 MiB is negative"}},
		{"bad sector", 32 * gibibyte, 520, nil, []string{"sector size 520"}},
		{"unaligned size", 32*gibibyte + 100, 512, nil, []string{"not a positive multiple"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := PlanLayout(c.disk, c.ss, c.vols)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	_, err := PlanLayout(8*gibibyte, 512, nil)
	if !errors.Is(err, ErrDiskTooSmall) {
		t.Errorf("too small error %v does not wrap ErrDiskTooSmall", err)
	}
	if d := operr.Describe(err); !strings.Contains(d.Fix, "at least 8770 MiB") || !strings.Contains(d.Fix, "storage_vol") || strings.Contains(d.Message, d.Fix) {
		t.Errorf("too small: fix %q should give the minimum and storage_vol, and the message %q should not repeat it", d.Fix, d.Message)
	}
}

// minimumCases are storage_vol requests for TestMinDiskBytesIsExact, among them
// ones whose minimum lies just below a size where the defaults grow.
var minimumCases = []struct {
	name string
	vols map[string]int64
}{
	{"default layout", nil},
	{"explicit data", map[string]int64{"data": 3000}},
	{"logging takes the rest", map[string]int64{"logging": -1, "data": 2048}},
	{"root takes the rest", map[string]int64{"root": -1, "data": 0}},
	{"no rest", map[string]int64{"boot": 300, "root": 1024, "config": 20, "logging": 500, "swap": 100, "data": 4000}},
	{"minimums rounded up", map[string]int64{"boot": 5, "root": 5, "config": 5, "logging": 0, "swap": 0, "data": 0}},
	{"oVirt EFI and Boot", map[string]int64{"efi": 256, "boot": 256}},
	// 2×14000 + the small disks' defaults fit below 32 GiB; with the swap of
	// a 32 GiB disk they would not fit on 32 GiB itself.
	{"just below the 32 GiB defaults", map[string]int64{"root": 14000}},
	// 2×60000 + the defaults of disks under 128 GiB fit below 128 GiB.
	{"just below the 128 GiB defaults", map[string]int64{"root": 60000}},
}

// TestMinDiskBytesIsExact: a disk of exactly MinDiskBytes plans and states that
// minimum, one sector less is refused with the minimum in the message and the
// fix, and every larger disk plans too (also across the sizes where the
// defaults grow).
func TestMinDiskBytesIsExact(t *testing.T) {
	for _, c := range minimumCases {
		for _, ss := range []int{512, 4096} {
			min, err := MinDiskBytes(ss, c.vols)
			if err != nil {
				t.Fatalf("%s, %d-byte sectors: %v", c.name, ss, err)
			}
			if min%MiB != 0 {
				t.Errorf("%s: minimum %d is not whole MiB", c.name, min)
			}
			l, err := PlanLayout(min, ss, c.vols)
			if err != nil {
				t.Errorf("%s, %d-byte sectors: a disk of the minimum %d bytes is refused: %v", c.name, ss, min, err)
			} else if l.MinDiskSize != min {
				t.Errorf("%s: layout states minimum %d, MinDiskBytes says %d", c.name, l.MinDiskSize, min)
			}
			_, err = PlanLayout(min-int64(ss), ss, c.vols)
			if !errors.Is(err, ErrDiskTooSmall) {
				t.Errorf("%s, %d-byte sectors: a disk one sector below the minimum: err = %v, want ErrDiskTooSmall", c.name, ss, err)
				continue
			}
			want := fmt.Sprintf("at least %d MiB", min/MiB)
			if d := operr.Describe(err); !strings.Contains(d.Message, want) || !strings.Contains(d.Fix, want) {
				t.Errorf("%s: refusal %q, fix %q: want %q in both", c.name, d.Message, d.Fix, want)
			}
			larger := []int64{min + int64(ss), min + MiB, min + 1000*MiB, 2 * min}
			for _, tier := range defaultTiers[1:] {
				larger = append(larger, tier.fromBytes-int64(ss), tier.fromBytes, tier.fromBytes+int64(ss))
			}
			for _, size := range larger {
				if size < min {
					continue
				}
				if _, err := PlanLayout(size, ss, c.vols); err != nil {
					t.Errorf("%s: a disk of %d bytes, above the minimum %d, is refused: %v", c.name, size, min, err)
				}
			}
		}
	}
	if _, err := MinDiskBytes(520, nil); err == nil {
		t.Error("MinDiskBytes accepts a 520-byte sector")
	}
	if _, err := MinDiskBytes(512, map[string]int64{"logging": -1}); err == nil || !strings.Contains(err.Error(), "both logging and data") {
		t.Errorf("MinDiskBytes with two rests: %v", err)
	}
}

// TestDefaultsFallBackWhereTheyDoNotFit: at exactly 32 GiB, root=14000 fits only
// with the swap of smaller disks; the layout takes it and says so.
func TestDefaultsFallBackWhereTheyDoNotFit(t *testing.T) {
	l, err := PlanLayout(32*gibibyte, 512, map[string]int64{"root": 14000})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := l.Find(LabelSwap); p.Size != 1024*MiB {
		t.Errorf("swap %d MiB, want the smaller disks' 1024", p.Size/MiB)
	}
	if len(l.Notices) != 1 || !strings.Contains(l.Notices[0], "using the defaults for disks under 32 GiB") {
		t.Errorf("notices %q", l.Notices)
	}
	if l, _ := PlanLayout(64*gibibyte, 512, map[string]int64{"root": 14000}); len(l.Notices) != 0 {
		t.Errorf("a disk where the defaults fit has notices %q", l.Notices)
	}
}

// TestREADMEStatesTheMinimum: the minimum disk size that README.md gives is
// the one the layout code computes.
func TestREADMEStatesTheMinimum(t *testing.T) {
	min, err := MinDiskBytes(512, nil)
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("at least %d MiB", min/MiB); !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not say %q (disk.MinDiskBytes for the default layout)", want)
	}
}

func asExisting(l Layout) []Partition {
	var out []Partition
	for _, p := range l.Partitions {
		out = append(out, Partition{Number: p.Number, StartByte: p.Start, SizeBytes: p.Size, PartLabel: p.Name, TypeGUID: strings.ToUpper(p.TypeGUID)})
	}
	return out
}

func TestCompare(t *testing.T) {
	l, err := PlanLayout(64*gibibyte, 512, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := l.Compare(asExisting(l)); !d.Matches() {
		t.Fatalf("same table does not match: %s", d)
	}
	have := asExisting(l)
	have[4].SizeBytes += MiB             // logging grew
	have = append(have[:5], have[6:]...) // swap gone
	have = append(have, Partition{Number: 9, PartLabel: "foreign", StartByte: 1, SizeBytes: MiB})
	d := l.Compare(have)
	if d.Matches() || len(d.Changed) != 1 || len(d.Missing) != 1 || len(d.Extra) != 1 {
		t.Fatalf("diff %+v", d)
	}
	if d.Changed[0].Want.Name != LabelLogging || d.Missing[0].Name != LabelSwap || d.Extra[0].PartLabel != "foreign" {
		t.Errorf("diff %+v", d)
	}
	if s := d.String(); !strings.Contains(s, "missing node-swap") || !strings.Contains(s, "node-logging differs") || !strings.Contains(s, `extra partition 9 "foreign"`) {
		t.Errorf("diff text %q", s)
	}
}

func TestKeepInPlace(t *testing.T) {
	old, err := PlanLayout(64*gibibyte, 4096, nil)
	if err != nil {
		t.Fatal(err)
	}
	have := asExisting(old)
	// Same layout on the same disk: keepable.
	if err := old.KeepInPlace(LabelData, have); err != nil {
		t.Errorf("same layout: %v", err)
	}
	// A bigger disk keeps the start, grows data: keepable.
	bigger, _ := PlanLayout(100*gibibyte, 4096, nil)
	if err := bigger.KeepInPlace(LabelData, have); err != nil {
		t.Errorf("bigger disk: %v", err)
	}
	// A larger swap moves data: not keepable, and the error says where.
	moved, _ := PlanLayout(64*gibibyte, 4096, map[string]int64{"swap": 4096})
	if err := moved.KeepInPlace(LabelData, have); err == nil || !strings.Contains(err.Error(), "new layout puts it at") {
		t.Errorf("moved: %v", err)
	}
	// Same start but smaller: not keepable.
	shrunk, _ := PlanLayout(64*gibibyte, 4096, map[string]int64{"data": 1024})
	if err := shrunk.KeepInPlace(LabelData, have); err == nil || !strings.Contains(err.Error(), "MiB short") {
		t.Errorf("shrunk: %v", err)
	}
	none, _ := PlanLayout(64*gibibyte, 4096, map[string]int64{"data": 0})
	if err := none.KeepInPlace(LabelData, have); err == nil {
		t.Error("no data in new layout: no error")
	}
	if err := old.KeepInPlace(LabelData, nil); err == nil {
		t.Error("nothing to keep: no error")
	}
}

// TestPlanLayoutOVirtValues: the storage_vol values oVirt Node used every day are never
// refused (issue 12): a size below what nodeinit needs is rounded up with a notice, EFI and Boot
// size the one ESP, Swap2 and Data2 size the app-data disks and leave the install disk alone.
func TestPlanLayoutOVirtValues(t *testing.T) {
	size := func(l Layout, label string) int64 {
		p, ok := l.Find(label)
		if !ok {
			t.Fatalf("no %s in %+v", label, l.Partitions)
		}
		return p.Size / MiB
	}
	cases := []struct {
		name    string
		vols    map[string]int64
		want    map[string]int64 // label → MiB
		notices []string
	}{
		{"oVirt positional :4096::5:2048:-1", map[string]int64{"swap": 4096, "config": 5, "logging": 2048, "data": -1},
			map[string]int64{LabelConfig: 16, LabelSwap: 4096, LabelLogging: 2048}, []string{"config=5 MiB is below the 16 MiB nodeinit needs: using 16 MiB"}},
		{"Boot under 260", map[string]int64{"boot": 100},
			map[string]int64{LabelESP: 260}, []string{"boot=100 MiB is below the 260 MiB"}},
		{"oVirt EFI 256 alone", map[string]int64{"EFI": 256},
			map[string]int64{LabelESP: 512}, []string{"EFI=256 MiB sized oVirt Node's loader alone; nodeinit's ESP also holds the kernels of both slots: using 512 MiB"}},
		{"EFI larger than Boot", map[string]int64{"efi": 1024, "Boot": 300},
			map[string]int64{LabelESP: 1024}, []string{"EFI=1024 and Boot=300; both size the one ESP, which takes the larger, 1024 MiB"}},
		{"Boot larger than EFI", map[string]int64{"efi": 256, "boot": 600},
			map[string]int64{LabelESP: 600}, []string{"the larger, 600 MiB"}},
		{"Swap2 and Data2", map[string]int64{"swap2": 1024, "data2": -1, "Swap": 5, "Logging": 10},
			map[string]int64{LabelSwap: 16, LabelLogging: 64}, []string{"swap=5 MiB", "logging=10 MiB"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := PlanLayout(64*gibibyte, 512, c.vols)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			for label, mib := range c.want {
				if got := size(l, label); got != mib {
					t.Errorf("%s is %d MiB, want %d", label, got, mib)
				}
			}
			all := strings.Join(l.Notices, "\n")
			for _, n := range c.notices {
				if !strings.Contains(all, n) {
					t.Errorf("notices lack %q:\n%s", n, all)
				}
			}
			if len(l.Notices) != len(c.notices) {
				t.Errorf("%d notices, want %d:\n%s", len(l.Notices), len(c.notices), all)
			}
			if last := l.Partitions[len(l.Partitions)-1]; last.End() > l.DiskSize-MiB {
				t.Errorf("the layout overruns the disk: %+v", last)
			}
		})
	}
	if l, _ := PlanLayout(64*gibibyte, 512, map[string]int64{"config": 64}); len(l.Notices) != 0 {
		t.Errorf("notices for sizes taken as written: %q", l.Notices)
	}
}
