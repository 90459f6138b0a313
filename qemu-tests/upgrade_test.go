package qemutests

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// bundleDisk makes an ext4 disk image labelled label holding the bundle directory's
// files at its root: the medium `nodeinit upgrade --image label:LABEL` reads inside
// the running node.
func bundleDisk(t *testing.T, bundle, label string) string {
	t.Helper()
	var size int64 = 64 << 20
	filepath.Walk(bundle, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			size += fi.Size() + 4096
		}
		return nil
	})
	img := vm.NewDisk(t, strings.ToLower(label)+".img", size+size/4)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", label, "-d", bundle, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 -d %s: %v\n%s", bundle, err, out)
	}
	return img
}

// TestUpgradeFromRunningNode is the management-engine path: the running 1.0 test OS runs
// `nodeinit upgrade --image label:NODEUPD` (a disk holding the 2.0 bundle), which writes
// slot b, migrates config and reboots. 2.0 then runs from slot b with the persisted file
// and the migrated setting, refuses to "upgrade" to the version it runs, and `nodeinit
// status` shows slot b on trial.
func TestUpgradeFromRunningNode(t *testing.T) {
	f := fixtures(t)
	upd := bundleDisk(t, f.Bundles["2.0"], "NODEUPD")
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "ONLINE01"},
		vm.Disk{Path: upd, Interface: vm.Virtio, Serial: "UPDATE01"})
	acts := "testos.action=show:/etc/testos/written,show:/etc/testos/migrated,write:/etc/testos/written:kept," +
		"run:/usr/sbin/nodeinit:upgrade:--image:label%3ANODEUPD,run:/usr/sbin/nodeinit:status,poweroff"
	start := time.Now()
	v := n.installer("1.0", "install storage_init=serial:ONLINE01 hostname=online1 "+acts)
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	t.Logf("install: %s", time.Since(start).Round(time.Second))

	start = time.Now()
	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=online1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/testos/migrated missing`, 30*time.Second)
	v.Expect(`TESTOS-WROTE /etc/testos/written`, 30*time.Second)
	// The node's own `nodeinit upgrade` streams its events on the boot's
	// nodeinit.events= port, after the boot's own.
	if bp := v.ExpectPlan(time.Minute); bp.Action != "boot" || bp.Slot != "a" {
		t.Errorf("the boot's plan is %s of slot %q, want a boot of slot a", bp.Action, bp.Slot)
	}
	p := v.ExpectPlan(2 * time.Minute)
	if p.Action != "upgrade" || p.Slot != "b" || p.Image == nil || p.Image.Version != "2.0" ||
		len(p.Destroys) == 0 || !strings.HasPrefix(p.Destroys[0], "/dev/nvme0n1: node-root-b") {
		t.Errorf("the online upgrade plans %s of %+v into slot %q, destroying %q; want 2.0 into node-root-b", p.Action, p.Image, p.Slot, p.Destroys)
	}
	v.ExpectEvent("the migration", vm.InfoHas("migrate-config", `config snapshot "1.0" taken; applying 1 migrations`), 2*time.Minute)
	v.ExpectEvent("the upgrade's last step", vm.StageDone("report"), time.Minute)
	waitExit(t, v) // nodeinit reboots; QEMU runs with -no-reboot
	t.Logf("online upgrade boot: %s", time.Since(start).Round(time.Second))
	ledger := espFile(t, n.disks[0].Path, "/ledger.json")
	if !regexp.MustCompile(`"b": \{\s*"state": "ready",\s*"version": "2\.0"`).MatchString(ledger) {
		t.Errorf("ledger does not hold 2.0 ready in slot b:\n%s", ledger)
	}

	v = n.powerOn()
	v.Expect(`TESTOS version=2\.0 build=2\.0 slot=b hostname=online1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/testos/written "kept\\n"`, 30*time.Second)
	v.Expect(`TESTOS-SHOW /etc/testos/migrated "from-1\.0\\n"`, 30*time.Second)
	v.Expect(`upgrade: version 2\.0 is already running`, time.Minute)
	v.Expect(`TESTOS-RUN /usr/sbin/nodeinit exit=1`, 30*time.Second)
	status := v.Expect(`(?s)booted slot: b\n(.*?)TESTOS-RUN /usr/sbin/nodeinit exit=`, time.Minute)[1]
	for _, want := range []string{"slot b: ready   version 2.0", "slot a: good    version 1.0", "on trial", "config snapshots: 1.0"} {
		if !strings.Contains(status, want) {
			t.Errorf("status lacks %q:\n%s", want, status)
		}
	}
	waitExit(t, v)
}

// TestUpgradePowerCuts cuts the power (kills QEMU) at three points of an upgrade of a
// 1.0 node: during the slot write, before the new loader entry is written (a break), and
// right after the config snapshot. Each time the next power-on runs 1.0 from slot a with
// 1.0's config (the migrated setting absent), and the initramfs records the interrupted
// upgrade; only when the host read the snapshot event too late for the last cut to land
// before the entry was written does the new slot boot, with the migrated config.
func TestUpgradePowerCuts(t *testing.T) {
	longTest(t)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "CUT00001"})
	v := n.installer("1.0", "install storage_init=serial:CUT00001 hostname=cut1 testos.action=show:/etc/testos/migrated,poweroff")
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)

	bootsOld := func(point string, restored bool) {
		t.Helper()
		start := time.Now()
		v := n.powerOn()
		v.ExpectEvent("the interrupted upgrade", vm.InfoHas("", "UPGRADE INTERRUPTED: slot b (version "), 3*time.Minute)
		if restored {
			v.ExpectEvent("the config restored", vm.InfoHas("", `config restored from snapshot "1.0"`), 30*time.Second)
		}
		v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=cut1`, time.Minute)
		v.Expect(`TESTOS-SHOW /etc/testos/migrated missing`, 30*time.Second)
		waitExit(t, v)
		t.Logf("power cut %s: next boot ran 1.0 with its config (%s)", point, time.Since(start).Round(time.Second))
		if ledger := espFile(t, n.disks[0].Path, "/ledger.json"); !strings.Contains(ledger, `"action": "upgrade-interrupted"`) {
			t.Errorf("after the cut %s the ledger does not record the interrupted upgrade:\n%s", point, ledger)
		}
	}

	// 1. During the slot write: 1.5 carries 160 MiB that cannot be compressed.
	v = n.installer("1.5", "upgrade nodeinit.onfail=poweroff")
	p := v.ExpectEvent("write-slot progress", func(e stages.Event) bool {
		return e.Stage == "write-slot" && e.Kind == stages.EventProgress && e.Done > 0
	}, 3*time.Minute)
	v.Kill()
	t.Logf("cut during write-slot at %d of %d bytes", p.Done, p.Total)
	if p.Done >= p.Total {
		t.Errorf("the slot write had finished (%d bytes) before the cut; the test needs a larger filler", p.Done)
	}
	ledger := espFile(t, n.disks[0].Path, "/ledger.json")
	if !regexp.MustCompile(`"b": \{\s*"state": "writing"`).MatchString(ledger) {
		t.Errorf("the ledger does not mark slot b as being written:\n%s", ledger)
	}
	bootsOld("during write-slot", false)

	// 2. After migration, before the entry is written (the add-boot-entry stage).
	v = n.installer("2.0", "upgrade nodeinit.break=add-boot-entry")
	v.ExpectEvent("the break before add-boot-entry", vm.StageIs("add-boot-entry", stages.EventBreak), 3*time.Minute)
	v.Kill()
	if entries := mdir(t, n.disks[0].Path, "/loader/entries"); strings.Contains(entries, "node-b") {
		t.Errorf("an entry for slot b exists before the add-boot-entry stage ran:\n%s", entries)
	}
	bootsOld("before the entry", true)

	// 3. During migration: the cut follows the snapshot line as fast as the
	// host reads the events, which under load may be after the upgrade wrote
	// slot b's entry. The entry decides, as it does for the boot
	// (stages.DetectInterruptedUpgrade: an entry that exists belongs to a
	// finished upgrade, and the ledger is written after it), so the node must
	// boot old-with-old-config without it and new-with-new-config with it
	// (every crash point in between is enumerated by blackbox.TestCrashUpgradeAToB).
	v = n.installer("2.0", "upgrade nodeinit.onfail=poweroff")
	v.ExpectEvent("the snapshot", vm.InfoHas("migrate-config", `config snapshot "1.0" taken`), 3*time.Minute)
	v.Kill()
	if entries := mdir(t, n.disks[0].Path, "/loader/entries"); !strings.Contains(entries, "node-b") {
		var l boot.Ledger
		if err := json.Unmarshal([]byte(espFile(t, n.disks[0].Path, "/ledger.json")), &l); err != nil {
			t.Fatalf("the ledger after the cut: %v", err)
		}
		if l.Last == nil || l.Last.Action != stages.ActionMigrating {
			t.Errorf("the cut fell after the snapshot and before slot b's entry, but the ledger's last action is %+v, not %q", l.Last, stages.ActionMigrating)
		}
		bootsOld("during migrate-config", true)
		return
	}
	t.Log("the cut fell after slot b's entry was written (the host read the snapshot event late): the new slot must boot with the migrated config")
	v = n.powerOn()
	v.Expect(`TESTOS version=2\.0 build=2\.0 slot=b hostname=cut1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/testos/migrated "from-1\.0\\n"`, 30*time.Second)
	waitExit(t, v)
}

// mdir lists an ESP directory of an installed disk image with mtools.
func mdir(t *testing.T, img, dir string) string {
	t.Helper()
	cmd := exec.Command("mdir", "-b", "-i", img+"@@1M", "::"+dir)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mdir %s: %v\n%s", dir, err, out)
	}
	return string(out)
}

// TestUpgradeWithALoaderThatDoesNotStart upgrades 1.0 to 2.1, whose bundle
// carries a boot loader the firmware cannot start. The upgrade stages it
// beside the old one with a trial Boot#### entry and BootNext; on power-on
// the firmware fails to start it and falls back to the old loader, which boots
// slot b; nodeinit sees from LoaderImageIdentifier that the new loader never
// ran, marks slot b bad and reboots, and the node comes back on slot a with
// 1.0. The ledger says why.
func TestUpgradeWithALoaderThatDoesNotStart(t *testing.T) {
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "LOADER01"})
	v := n.installer("1.0", "install storage_init=serial:LOADER01 hostname=ldr1 testos.action=poweroff")
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)

	v = n.installer("2.1", "upgrade nodeinit.onfail=poweroff")
	v.ExpectEvent("the new loader staged", vm.InfoHas("copy-boot-files", "new boot loader staged at "), 3*time.Minute)
	v.ExpectEvent("the trial's BootNext", vm.InfoHas("boot-order", "loader trial: BootNext is Boot"), time.Minute)
	v.ExpectEvent("upgrade finished", vm.Finished, time.Minute)
	waitExit(t, v)

	v = n.powerOnUntilOff()
	e := v.ExpectEvent("the failed loader trial", vm.InfoHas("mount-root", "ROLLBACK from slot b to slot a: slot b's new boot loader"), 5*time.Minute)
	t.Logf("%s", e.Message)
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=ldr1`, 4*time.Minute)
	waitExit(t, v)
	ledger := espFile(t, n.disks[0].Path, "/ledger.json")
	for _, want := range []string{`"action": "loader-trial-failed"`, "did not start", `"from": "b"`} {
		if !strings.Contains(ledger, want) {
			t.Errorf("the ledger lacks %s:\n%s", want, ledger)
		}
	}
}

// TestUpgradeWithANewLoader upgrades 1.0 to 2.2, whose boot loader differs
// from the installed one and starts. The trial boot (BootNext) comes through
// the new loader, which nodeinit confirms; the node blesses slot b; the next
// boot makes the new loader the firmware's default; and the boot after that,
// through the promoted entry, runs 2.2 again.
func TestUpgradeWithANewLoader(t *testing.T) {
	longTest(t)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "LOADER02"})
	v := n.installer("1.0", "install storage_init=serial:LOADER02 hostname=ldr2 testos.action=bless,poweroff")
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)

	v = n.installer("2.2", "upgrade nodeinit.onfail=poweroff")
	v.ExpectEvent("the new loader staged", vm.InfoHas("copy-boot-files", "new boot loader staged at "), 3*time.Minute)
	v.ExpectEvent("upgrade finished", vm.Finished, 2*time.Minute)
	waitExit(t, v)

	v = n.powerOn()
	v.ExpectEvent("the trial confirmed", vm.InfoHas("mount-root", "loader trial: the firmware started slot b's new loader"), 4*time.Minute)
	v.Expect(`TESTOS version=2\.2 build=2\.2 slot=b hostname=ldr2`, 2*time.Minute)
	v.Expect(`TESTOS-BLESSED slot=b`, 30*time.Second)
	waitExit(t, v)

	v = n.powerOn()
	e := v.ExpectEvent("the promotion", vm.InfoHas("mount-root", "slot b is blessed: Boot"), 4*time.Minute)
	t.Logf("%s", e.Message)
	v.Expect(`TESTOS version=2\.2 build=2\.2 slot=b hostname=ldr2`, 2*time.Minute)
	waitExit(t, v)
	ledger := espFile(t, n.disks[0].Path, "/ledger.json")
	if !strings.Contains(ledger, `"loader": "EFI/nodeinit/loader-`) || !strings.Contains(ledger, `"action": "loader-promoted"`) {
		t.Errorf("the ledger does not record the promoted loader:\n%s", ledger)
	}

	v = n.powerOn()
	v.Expect(`TESTOS version=2\.2 build=2\.2 slot=b hostname=ldr2`, 3*time.Minute)
	waitExit(t, v)
}
