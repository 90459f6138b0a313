package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/operr"
)

func planLine(t *testing.T, line string, f *Facts) (*Blueprint, error) {
	t.Helper()
	p, err := cmdline.Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	return Plan(p, f)
}

func stepIndex(bp *Blueprint, name, disk string) int {
	return slices.IndexFunc(bp.Steps, func(s Step) bool { return s.Name == name && s.Input.Target() == disk })
}

// TestAppDataStepsOrder: every disk of the HostVG and AppVG lists is in
// Blueprint.Disks; each app-data disk is written after the install disk's
// filesystems and before its root slot, so until the ledger (add-boot-entry)
// the install is unfinished and the same command line redoes all of it; the
// job finds each disk's layout through LayoutOf.
func TestAppDataStepsOrder(t *testing.T) {
	f, err := loadFacts("../testdata/facts/several-disks.json")
	if err != nil {
		t.Fatal(err)
	}
	bp, err := planLine(t, "install storage_init=/dev/sda,/dev/sdb;/dev/sdd,/dev/sdc nodeinit.wipe=WD-WCC4N0000004 storage_vol=::::::512", f)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range bp.Disks {
		names = append(names, d.Name)
	}
	if strings.Join(names, ",") != "sda,sdb,sdd,sdc" {
		t.Errorf("Blueprint.Disks %v, want sda,sdb,sdd,sdc", names)
	}
	fsDone, slot, ledger := stepIndex(bp, StageFilesystems, "sda"), stepIndex(bp, StageWriteSlot, "sda"), stepIndex(bp, StageAddBootEntry, "sda")
	for i, want := range []string{"sdb", "sdd", "sdc"} {
		a := bp.AppData[i]
		if a.Index != i+1 || a.Target.Name != want || a.Mount != AppDataMount(i+1) {
			t.Errorf("app-data %d: %+v, want disk %s on /data/app%d", i, a, want, i+1)
		}
		if bp.LayoutOf(want) != &bp.AppData[i].Layout {
			t.Errorf("LayoutOf(%s) is not its app-data layout", want)
		}
		if _, ok := a.Layout.Find(disk.AppDataLabel(i + 1)); !ok {
			t.Errorf("%s: no %s in %+v", want, disk.AppDataLabel(i+1), a.Layout.Partitions)
		}
		for _, st := range []string{StagePartition, StageFilesystems} {
			k := stepIndex(bp, st, want)
			if k < 0 || k < fsDone || k > slot {
				t.Errorf("%s of %s is step %d, want between the install disk's filesystems (%d) and write-slot (%d)", st, want, k, fsDone, slot)
			}
		}
	}
	if w := stepIndex(bp, StageWipe, "sdd"); w < fsDone || w > stepIndex(bp, StagePartition, "sdd") {
		t.Errorf("the foreign disk's wipe is step %d", w)
	}
	if stepIndex(bp, StageWipe, "sdb") >= 0 || stepIndex(bp, StageWipe, "sda") >= 0 {
		t.Error("a blank disk is wiped")
	}
	if ledger < slot || bp.LayoutOf("sda") != bp.Layout || bp.LayoutOf("sde") != nil {
		t.Errorf("add-boot-entry at %d, write-slot at %d; LayoutOf(sda) %p, want %p", ledger, slot, bp.LayoutOf("sda"), bp.Layout)
	}
}

// TestAppDataConsent: a plain install does not replace a nodeinit app-data
// disk (it holds data); reinstall does, consent that names it does, and so
// does an install that finishes one cut short (the ledger never listed it, and
// running the same line again must finish the job).
func TestAppDataConsent(t *testing.T) {
	base, err := loadFacts("../testdata/facts/installed-app-data.json")
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() *Facts {
		f, _ := loadFacts("../testdata/facts/installed-app-data.json")
		f.Install = nil
		f.Disks[0].Content, f.Disks[0].Partitions, f.Disks[0].Signatures, f.Disks[0].InstalledVersion = disk.ContentBlank, nil, nil, ""
		return f
	}
	_, err = planLine(t, "install storage_init=/dev/sda,/dev/sdb", fresh())
	var ce *disk.ConsentError
	if !errors.As(err, &ce) || ce.Disk != "/dev/sdb" {
		t.Fatalf("install over an app-data disk: %v, want a consent refusal for /dev/sdb", err)
	}
	if d := operr.Describe(err); !strings.HasPrefix(d.Message, "app-data disk 1: /dev/sdb holds a nodeinit app-data disk") || d.Arg != "reinstall" {
		t.Errorf("refusal %+v", d)
	}
	for _, line := range []string{"reinstall storage_init=/dev/sda,/dev/sdb", "install storage_init=/dev/sda,/dev/sdb nodeinit.wipe=WD-WCC4N0000002"} {
		bp, err := planLine(t, line, fresh())
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		if stepIndex(bp, StageWipe, "sdb") < 0 {
			t.Errorf("%s: the app-data disk is not wiped first", line)
		}
	}

	cut := base
	cut.Install.Incomplete = "it has no install ledger (an install that did not finish)"
	cut.Install.AppData = nil
	bp, err := planLine(t, "install storage_init=/dev/sda,/dev/sdb,/dev/sdc storage_vol=::::::1024", cut)
	if err != nil {
		t.Fatalf("redo of a cut install with its app-data disks: %v", err)
	}
	if len(bp.AppData) != 2 || stepIndex(bp, StageWipe, "sdc") < 0 {
		t.Errorf("redo: app-data %+v", bp.AppData)
	}
}

// TestAppDataUninstallFindsDisksByName: uninstall wipes the app-data disks by
// their GPT names, listed or not, and refuses one that is in use.
func TestAppDataUninstallFindsDisksByName(t *testing.T) {
	f, err := loadFacts("../testdata/facts/installed-app-data.json")
	if err != nil {
		t.Fatal(err)
	}
	f.Install.AppData = nil // not from the ledger: from the partitions' names
	bp, err := planLine(t, "uninstall storage_init=/dev/sda", f)
	if err != nil {
		t.Fatal(err)
	}
	var wiped []string
	for _, s := range bp.Steps {
		if s.Name == StageWipe {
			wiped = append(wiped, s.Input.Target())
		}
	}
	if strings.Join(wiped, ",") != "sda,sdb,sdc" {
		t.Errorf("uninstall wipes %v, want sda,sdb,sdc (not the blank sdd)", wiped)
	}
	f.Disks[2].Mounts, f.Disks[2].Partitions[1].Mounts = []string{"/data/app2"}, []string{"/data/app2"}
	if _, err := planLine(t, "uninstall", f); err == nil || !strings.Contains(err.Error(), "/dev/sdc holds nodeinit app data but it is mounted at /data/app2") {
		t.Errorf("uninstall with a mounted app-data disk: %v", err)
	}
}

// TestAppDataReinstallFromTheRunningNode: without storage_init a reinstall
// takes the install's app-data disks from the ledger; in place it leaves them
// alone even while the node has them mounted, and one that would be wiped
// while mounted is refused naming it.
func TestAppDataReinstallFromTheRunningNode(t *testing.T) {
	f, err := loadFacts("../testdata/facts/installed-app-data.json")
	if err != nil {
		t.Fatal(err)
	}
	f.Disks[1].Mounts, f.Disks[1].Partitions[1].Mounts = []string{"/data/app1"}, []string{"/data/app1"}
	bp, err := planLine(t, "reinstall storage_vol=::::::1024", f)
	if err != nil {
		t.Fatal(err)
	}
	if bp.Slot != "b" || len(bp.AppData) != 0 || !slices.Contains(bp.Keeps, "/dev/sdb: app-data disk 1 (node-app1 on /data/app1), untouched") {
		t.Errorf("in place: slot %s, app-data %+v, keeps %q", bp.Slot, bp.AppData, bp.Keeps)
	}
	_, err = planLine(t, "reinstall storage_vol=::::::1024 nodeinit.erase=zero", f)
	if err == nil || !strings.Contains(err.Error(), "app-data disk 1: /dev/sdb cannot be written: it is mounted at /data/app1") {
		t.Errorf("a wiping reinstall with app-data mounted: %v", err)
	}
}

// TestAppDataHostVGSpanningDisks: oVirt's HostVG spread over two disks is
// refused when only one is listed (the LV would be half wiped) and planned
// when storage_init lists both, the second becoming app-data disk 1.
func TestAppDataHostVGSpanningDisks(t *testing.T) {
	f := spanningFacts(t, disk.ContentOVirt, "HostVG")
	if _, err := planLine(t, "reinstall storage_init=/dev/nvme0n1", f); err == nil || !strings.Contains(err.Error(), "HostVG/Data") {
		t.Fatalf("one disk of the HostVG: %v", err)
	}
	bp, err := planLine(t, "reinstall storage_init=/dev/nvme0n1,/dev/nvme1n1", f)
	if err != nil {
		t.Fatal(err)
	}
	if len(bp.AppData) != 1 || bp.AppData[0].Target.Name != "nvme1n1" || stepIndex(bp, StageWipe, "nvme0n1") < 0 || stepIndex(bp, StageWipe, "nvme1n1") < 0 {
		t.Errorf("HostVG over both disks: app-data %+v, steps %+v", bp.AppData, bp.Steps)
	}
}

// TestAppDataKeepRewritesTheTableWithoutAWipe: a reinstall that wipes the
// install disk but keeps data keeps each app-data disk's node-app<N> where it
// is, writing the new table over the old one without a wipe, so that through
// a cut one of the two always names the kept partition; a new blank disk
// beside them is laid out fresh.
func TestAppDataKeepRewritesTheTableWithoutAWipe(t *testing.T) {
	f, err := loadFacts("../testdata/facts/installed-app-data.json")
	if err != nil {
		t.Fatal(err)
	}
	bp, err := planLine(t, "reinstall storage_init=/dev/sda,/dev/sdb,/dev/sdc,/dev/sdd storage_vol=::::::1024 nodeinit.keep=data", f)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		disk, keep string
	}{{"sdb", "node-app1"}, {"sdc", "node-app2"}, {"sdd", ""}} {
		a := bp.AppDataOf(c.disk)
		if a == nil || a.Keep != c.keep || stepIndex(bp, StageWipe, c.disk) >= 0 || stepIndex(bp, StagePartition, c.disk) < 0 {
			t.Errorf("%s: %+v; wipe at %d, want keep %q and no wipe", c.disk, a, stepIndex(bp, StageWipe, c.disk), c.keep)
		}
		if k := stepIndex(bp, StageFilesystems, c.disk); k < 0 || bp.Steps[k].Input.(Filesystems).Keep != c.keep {
			t.Errorf("%s: filesystems step %+v", c.disk, bp.Steps)
		}
	}
	_, err = planLine(t, "reinstall storage_init=/dev/sda,/dev/sdb,/dev/sdc storage_vol=::::::2048 nodeinit.keep=data nodeinit.erase=zero", f)
	if err == nil || !strings.Contains(err.Error(), "keep node-app1: it starts at 1025 MiB but the new layout puts it at 2049 MiB") {
		t.Errorf("a Swap2 that moves the kept partition: %v", err)
	}
}
