package disk

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/operr"
)

// TestPlanAppDataLayout: an app-data disk is node-swap2 (partition 1, Swap2 MiB,
// none by default) and node-app<N> (partition 2, Data2 MiB, the rest by
// default), packed from the first MiB; a Data2 that does not fill the disk
// leaves the rest unpartitioned, and Swap2 may be the rest instead.
func TestPlanAppDataLayout(t *testing.T) {
	const disk = 100 * gibibyte
	type part struct {
		name      string
		num       int
		startMiB  int64
		sizeMiB   int64
		fs, typeG string
	}
	rest := int64(disk/MiB) - tableMiB
	cases := []struct {
		name string
		n    int
		vols map[string]int64
		want []part
	}{
		{"defaults", 1, nil, []part{{"node-app1", 2, 1, rest, FSExt4, TypeLinuxData}}},
		{"third disk", 3, map[string]int64{"data2": -1}, []part{{"node-app3", 2, 1, rest, FSExt4, TypeLinuxData}}},
		{"swap2 and the rest", 1, map[string]int64{"swap2": 2048}, []part{
			{LabelSwap2, 1, 1, 2048, FSSwap, TypeSwap}, {"node-app1", 2, 2049, rest - 2048, FSExt4, TypeLinuxData}}},
		{"data2 fixed leaves the rest free", 2, map[string]int64{"data2": 2048}, []part{{"node-app2", 2, 1, 2048, FSExt4, TypeLinuxData}}},
		{"both fixed", 1, map[string]int64{"Swap2": 512, "Data2": 4096}, []part{
			{LabelSwap2, 1, 1, 512, FSSwap, TypeSwap}, {"node-app1", 2, 513, 4096, FSExt4, TypeLinuxData}}},
		{"swap2 the rest", 1, map[string]int64{"swap2": -1, "data2": 4096}, []part{
			{LabelSwap2, 1, 1, rest - 4096, FSSwap, TypeSwap}, {"node-app1", 2, 1 + rest - 4096, 4096, FSExt4, TypeLinuxData}}},
		{"install disk volumes are not read", 1, map[string]int64{"boot": 1024, "root": 8192, "data": 0, "efi": 300}, []part{
			{"node-app1", 2, 1, rest, FSExt4, TypeLinuxData}}},
	}
	for _, ss := range []int{512, 4096} {
		for _, c := range cases {
			l, err := PlanAppDataLayout(disk, ss, c.n, c.vols)
			if err != nil {
				t.Fatalf("%s (sector %d): %v", c.name, ss, err)
			}
			if len(l.Partitions) != len(c.want) {
				t.Fatalf("%s: %d partitions, want %d: %+v", c.name, len(l.Partitions), len(c.want), l.Partitions)
			}
			for i, w := range c.want {
				p := l.Partitions[i]
				if p.Name != w.name || p.Number != w.num || p.Start != w.startMiB*MiB || p.Size != w.sizeMiB*MiB || p.FS != w.fs || p.TypeGUID != w.typeG {
					t.Errorf("%s (sector %d): partition %d = %+v, want %+v", c.name, ss, i, p, w)
				}
			}
			if last := l.Partitions[len(l.Partitions)-1]; last.End() > l.DiskSize-MiB {
				t.Errorf("%s: overruns the backup GPT's MiB: ends at %d of %d", c.name, last.End(), l.DiskSize)
			}
			if l.SectorSize != ss || l.DiskSize != disk || len(l.Notices) != 0 {
				t.Errorf("%s: geometry %d/%d, notices %q", c.name, l.SectorSize, l.DiskSize, l.Notices)
			}
		}
	}
}

// TestPlanAppDataLayoutRoundsUpAndRefuses: sizes below the minimums are
// rounded up with a notice, as on the install disk; a data volume of 0, a
// negative size, two rests and disk number 0 are refused.
func TestPlanAppDataLayoutRoundsUpAndRefuses(t *testing.T) {
	l, err := PlanAppDataLayout(8*gibibyte, 512, 1, map[string]int64{"swap2": 5, "data2": 100})
	if err != nil {
		t.Fatal(err)
	}
	if sw, _ := l.Find(LabelSwap2); sw.Size != 16*MiB {
		t.Errorf("swap2 %d MiB, want 16", sw.Size/MiB)
	}
	if d, _ := l.Find("node-app1"); d.Size != 1024*MiB || d.Start != 17*MiB {
		t.Errorf("node-app1 %d MiB at %d, want 1024 at 17", d.Size/MiB, d.Start/MiB)
	}
	all := strings.Join(l.Notices, "\n")
	for _, want := range []string{"swap2=5 MiB is below the 16 MiB nodeinit needs: using 16 MiB", "data2=100 MiB is below the 1024 MiB nodeinit needs: using 1024 MiB"} {
		if !strings.Contains(all, want) {
			t.Errorf("notices lack %q:\n%s", want, all)
		}
	}
	for _, c := range []struct {
		n    int
		vols map[string]int64
		want string
	}{
		{1, map[string]int64{"data2": 0}, "sets data2 to 0"},
		{1, map[string]int64{"swap2": -7}, "swap2=-7 MiB is negative"},
		{1, map[string]int64{"swap2": -1, "data2": -1}, "both swap2 and data2 as -1"},
		{0, nil, "numbered from 1"},
	} {
		if _, err := PlanAppDataLayout(8*gibibyte, 512, c.n, c.vols); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v (disk %d): %v, want an error holding %q", c.vols, c.n, err, c.want)
		}
	}
}

// TestMinAppDataDiskBytesIsExact: a disk of exactly the minimum plans, one
// sector less is refused with an operator error that states the minimum.
func TestMinAppDataDiskBytesIsExact(t *testing.T) {
	for _, c := range []struct {
		vols   map[string]int64
		minMiB int64
	}{
		{nil, 1026},
		{map[string]int64{"swap2": 512}, 1538},
		{map[string]int64{"swap2": 512, "data2": 4096}, 4610},
		{map[string]int64{"swap2": -1, "data2": 2048}, 2066},
	} {
		for _, ss := range []int{512, 4096} {
			min, err := MinAppDataDiskBytes(ss, c.vols)
			if err != nil || min != c.minMiB*MiB {
				t.Fatalf("%v: minimum %d MiB, %v; want %d MiB", c.vols, min/MiB, err, c.minMiB)
			}
			if _, err := PlanAppDataLayout(min, ss, 1, c.vols); err != nil {
				t.Errorf("%v: a disk of the minimum is refused: %v", c.vols, err)
			}
			_, err = PlanAppDataLayout(min-int64(ss), ss, 1, c.vols)
			if !errors.Is(err, ErrDiskTooSmall) {
				t.Fatalf("%v: a disk one sector short: %v, want ErrDiskTooSmall", c.vols, err)
			}
			oe := operr.Of(err)
			if oe == nil || !strings.Contains(oe.What, "needs at least "+strconv.FormatInt(c.minMiB, 10)+" MiB") || !strings.Contains(oe.Fix, strconv.FormatInt(c.minMiB, 10)+" MiB") {
				t.Errorf("%v: refusal %+v does not state the minimum %d MiB", c.vols, oe, c.minMiB)
			}
		}
	}
}

func TestAppDataIndex(t *testing.T) {
	for label, want := range map[string]int{"node-app1": 1, "node-app12": 12, "node-app0": 0, "node-app01": 0, "node-app": 0,
		"node-app-1": 0, "node-appx": 0, "node-data": 0, LabelSwap2: 0, "": 0} {
		if got := AppDataIndex(label); got != want {
			t.Errorf("AppDataIndex(%q) = %d, want %d", label, got, want)
		}
	}
	if AppDataLabel(3) != "node-app3" || AppDataIndex(AppDataLabel(7)) != 7 {
		t.Error("AppDataLabel and AppDataIndex disagree")
	}
}

// TestClassifyAppData: a disk holding only node-swap2 and node-app<N>, with
// only the table and the filesystems inside them, is an app-data disk; any
// other partition or a signature on the disk itself makes it foreign.
func TestClassifyAppData(t *testing.T) {
	gpt := []Signature{{Type: SigGPT, Where: "disk"}, {Type: SigPMBR, Where: "disk"}}
	app := []Partition{{Number: 1, Name: "sdb1", PartLabel: LabelSwap2}, {Number: 2, Name: "sdb2", PartLabel: "node-app1"}}
	fs := append(gpt, Signature{Type: SigSwap, Label: LabelSwap2, Where: "sdb1"}, Signature{Type: SigExt4, Label: "node-app1", Where: "sdb2"})
	cases := []struct {
		name string
		d    Disk
		want ContentClass
	}{
		{"app-data", Disk{Partitions: app, Signatures: fs}, ContentAppData},
		{"app-data without filesystems yet", Disk{Partitions: app[1:], Signatures: gpt}, ContentAppData},
		{"swap2 alone", Disk{Partitions: app[:1], Signatures: gpt}, ContentForeign},
		{"another partition beside", Disk{Partitions: append(append([]Partition(nil), app...), Partition{Number: 3, Name: "sdb3", PartLabel: "mine"}), Signatures: gpt}, ContentForeign},
		{"xfs inside node-app1", Disk{Partitions: app, Signatures: append(append([]Signature(nil), gpt...), Signature{Type: SigXFS, Where: "sdb2"})}, ContentForeign},
		{"ext4 on the whole disk", Disk{Partitions: app, Signatures: append(append([]Signature(nil), gpt...), Signature{Type: SigExt4, Where: "disk"})}, ContentForeign},
		{"install with an app label", Disk{Partitions: append(append([]Partition(nil), app...), Partition{Number: 3, PartLabel: LabelRootA})}, ContentOurs},
		{"unreadable", Disk{Partitions: app, ProbeError: "EIO"}, ContentForeign},
	}
	for _, c := range cases {
		Classify(&c.d)
		if c.d.Content != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.d.Content, c.want)
		}
	}
}

// TestCheckConsentAppData: an app-data disk is replaced by reinstall and
// uninstall, refused by a plain install with the way out, and erased with
// consent that names it.
func TestCheckConsentAppData(t *testing.T) {
	d := Disk{Name: "sdb", Path: "/dev/sdb", Serial: "B1", Content: ContentAppData,
		Partitions: []Partition{{Number: 2, Name: "sdb2", PartLabel: "node-app1"}},
		Signatures: []Signature{{Type: SigGPT, Where: "disk"}, {Type: SigExt4, Label: "node-app1", Where: "sdb2"}}}
	for _, action := range []string{"reinstall", "uninstall"} {
		if err := CheckConsent(d, action, nil); err != nil {
			t.Errorf("%s: %v", action, err)
		}
	}
	if err := CheckConsent(d, "install", []string{"B1"}); err != nil {
		t.Errorf("install with nodeinit.wipe=B1: %v", err)
	}
	err := CheckConsent(d, "install", nil)
	var ce *ConsentError
	if !errors.As(err, &ce) {
		t.Fatalf("install over an app-data disk: %v, want a ConsentError", err)
	}
	de := operr.Of(err)
	if !strings.Contains(err.Error(), "/dev/sdb holds a nodeinit app-data disk and install does not replace its data") ||
		!strings.Contains(err.Error(), "ext4 filesystem labelled 'node-app1' on sdb2") ||
		de.Arg != "reinstall" || !strings.Contains(de.Fix, "nodeinit.keep=data") || !strings.Contains(de.Fix, "nodeinit.wipe=B1") {
		t.Errorf("refusal %q, fix %q, arg %q", err, de.Fix, de.Arg)
	}
}
