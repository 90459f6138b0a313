package qemutests

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// biosBoot starts the machine under SeaBIOS (QEMU's default firmware: no OVMF), from its
// disks, or with the initrd at path and args when initrd is set. reboot lets the guest
// reboot by itself (a kernel panic reboots after panic=N) until it powers off.
func (n *node) biosBoot(initrd, args string, reboot bool) *vm.VM {
	n.t.Helper()
	c := vm.Config{Disks: n.disks, NoReboot: !reboot, MemoryMiB: 1536, Events: n.eventsFile(), Timeout: 6 * time.Minute}
	if initrd != "" {
		c.Kernel, c.Initramfs, c.Append = n.f.Debian.Vmlinuz, initrd, "console=ttyS0 panic=5 nodeinit.events=ttyS1 "+args
	}
	return vm.Start(n.t, c)
}

// biosPlan is what this test reads from the plan event beyond vm.Plan.
type biosPlan struct {
	Action   string `json:"action"`
	Slot     string `json:"slot"`
	Firmware string `json:"firmware"`
	Layout   *struct {
		Partitions []struct {
			Name     string `json:"name"`
			TypeGUID string `json:"type_guid"`
		} `json:"partitions"`
	} `json:"layout"`
}

func expectBIOSPlan(t *testing.T, v *vm.VM) biosPlan {
	t.Helper()
	e := v.ExpectEvent("the plan", func(e stages.Event) bool { return e.Kind == stages.EventPlan }, 3*time.Minute)
	var p biosPlan
	if err := json.Unmarshal(e.Plan, &p); err != nil {
		t.Fatalf("the plan event does not decode: %v\n%s", err, e.Plan)
	}
	return p
}

// TestBIOSInstallUpgradeRollbackUninstall is a node's life on a BIOS-only machine, with
// no OVMF anywhere: an installer whose initramfs carries GRUB's i386-pc images installs
// under SeaBIOS, which makes it a BIOS install (GRUB's boot.img in the MBR, core.img in
// the BIOS boot partition, grub.cfg and grubenv on the ESP). The disk then boots by
// itself: SeaBIOS → GRUB → slot a. An upgrade to 2.0 boots slot b on trial (grubenv
// counts it) and is blessed; an upgrade to the crashing 3.0 uses up its 2 tries, GRUB
// falls back to slot b by itself, and the ledger names the rollback. An uninstall
// leaves nothing on the disk that boots or that wipefs finds.
func TestBIOSInstallUpgradeRollbackUninstall(t *testing.T) {
	longTest(t)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "bios.img", 16<<30), Interface: vm.Virtio, Serial: "BIOS0001"})
	img := n.disks[0].Path
	installer, err := n.f.BIOSInstaller(context.Background(), "1.0")
	if err != nil {
		t.Fatal(err)
	}
	acts := "testos.action=show:/etc/testos/written,write:/etc/testos/written:kept,bless,run:/usr/sbin/nodeinit:status,poweroff"

	start := time.Now()
	v := n.biosBoot(installer, "install storage_init=serial:BIOS0001 hostname=bios1 "+acts, false)
	p := expectBIOSPlan(t, v)
	if p.Action != "install" || p.Firmware != "bios" || p.Layout == nil || p.Layout.Partitions[0].Name != "BIOS-BOOT" {
		t.Errorf("the install under SeaBIOS plans %s for firmware %q, layout %+v; want a BIOS install with BIOS-BOOT", p.Action, p.Firmware, p.Layout)
	}
	v.ExpectEvent("GRUB written", vm.InfoHas("copy-boot-files", "GRUB for BIOS: core.img"), 3*time.Minute)
	v.ExpectEvent("install finished", vm.Finished, 2*time.Minute)
	waitExit(t, v)
	t.Logf("install: %s", time.Since(start).Round(time.Second))
	checkBIOSDisk(t, img)

	start = time.Now()
	v = n.biosBoot("", "", false)
	v.Expect(`nodeinit: GRUB boots slot a \(1\.0\)`, 2*time.Minute)
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=bios1`, 3*time.Minute)
	v.Expect(`TESTOS-READY`, time.Minute)
	waitExit(t, v)
	t.Logf("first boot from the disk: %s", time.Since(start).Round(time.Second))

	start = time.Now()
	upgrade, err := n.f.Installer("2.0")
	if err != nil {
		t.Fatal(err)
	}
	v = n.biosBoot(upgrade, "upgrade nodeinit.onfail=poweroff", false)
	if p := expectBIOSPlan(t, v); p.Action != "upgrade" || p.Slot != "b" {
		t.Errorf("the 2.0 medium plans %s into slot %q, want an upgrade into slot b", p.Action, p.Slot)
	}
	v.ExpectEvent("upgrade finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	if env := grubenvOf(t, img); env["node_b_left"] != "3" || env["node_b_done"] != "0" {
		t.Errorf("grubenv after the upgrade: %v; want slot b on trial with 3 tries", env)
	}
	v = n.biosBoot("", "", false)
	v.Expect(`nodeinit: GRUB boots slot b \(2\.0\)`, 2*time.Minute)
	v.Expect(`TESTOS version=2\.0 build=2\.0 slot=b hostname=bios1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/testos/written "kept\\n"`, 30*time.Second)
	v.Expect(`TESTOS-BLESSED slot=b`, 30*time.Second)
	waitExit(t, v)
	if env := grubenvOf(t, img); env["node_b_left"] != "" {
		t.Errorf("grubenv after the blessing: %v; want slot b's counters gone", env)
	}
	t.Logf("upgrade to 2.0 and its boot: %s", time.Since(start).Round(time.Second))

	start = time.Now()
	broken, err := n.f.Installer("3.0")
	if err != nil {
		t.Fatal(err)
	}
	v = n.biosBoot(broken, "upgrade nodeinit.tries=2 nodeinit.onfail=poweroff", false)
	v.ExpectEvent("upgrade finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	v = n.biosBoot("", "", true)
	v.Expect(`TESTOS version=3\.0 build=3\.0 slot=a`, 3*time.Minute)
	v.Expect(`TESTOS-CRASH`, 30*time.Second)
	v.ExpectEvent("the rollback", vm.InfoHas("", "ROLLBACK from slot a to slot b"), 5*time.Minute)
	v.Expect(`TESTOS version=2\.0 build=2\.0 slot=b hostname=bios1`, 2*time.Minute)
	v.Expect(`(?m)^rollback [^\n]*: a -> b: entry node-a\S* \(grubenv\) \(version 3\.0\) ran out of tries`, time.Minute)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
	if crashes := strings.Count(v.Output(), "TESTOS-CRASH"); crashes != 2 {
		t.Errorf("3.0 booted %d times; the upgrade's nodeinit.tries=2 allows 2", crashes)
	}
	if env := grubenvOf(t, img); env["node_a_left"] != "0" || env["node_a_done"] != "2" {
		t.Errorf("grubenv after the rollback: %v; want slot a with 0 tries left after 2", env)
	}
	if ledger := espFile(t, img, "/ledger.json"); !strings.Contains(ledger, `"rollbacks"`) || !strings.Contains(ledger, `"from": "a"`) {
		t.Errorf("ledger does not name the rollback:\n%s", ledger)
	}
	t.Logf("failed upgrade to 3.0 and the rollback: %s", time.Since(start).Round(time.Second))

	start = time.Now()
	v = n.biosBoot(upgrade, "install uninstall nodeinit.onfail=poweroff", false)
	if p := expectBIOSPlan(t, v); p.Action != "uninstall" {
		t.Errorf("the uninstall plans %s", p.Action)
	}
	v.ExpectEvent("uninstall finished", vm.Finished, 2*time.Minute)
	waitExit(t, v)
	if out, _ := exec.Command("wipefs", "-n", img).CombinedOutput(); len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("wipefs still finds signatures after uninstall:\n%s", out)
	}
	if mbr := readAt(t, img, 0, 512); mbr[510] == 0x55 && mbr[511] == 0xaa {
		t.Errorf("the MBR still has its boot signature after uninstall: the BIOS would start GRUB's boot.img")
	}
	t.Logf("uninstall: %s", time.Since(start).Round(time.Second))
}

// checkBIOSDisk asks sgdisk for the BIOS boot partition, and checks the MBR and
// core.img as WriteBIOSBoot leaves them: boot.img's code pointing at sector 34, and the
// ESP's grub.cfg and grubenv.
func checkBIOSDisk(t *testing.T, img string) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-v", "-i", "8", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "21686148-6449-6E6F-744E-656564454649") || !strings.Contains(string(out), "First sector: 34 ") {
		t.Errorf("sgdisk -i 8: %v\n%s", err, out)
	}
	if out, err := exec.Command("sgdisk", "-v", img).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v: %v\n%s", err, out)
	}
	mbr := readAt(t, img, 0, 512)
	if mbr[510] != 0x55 || mbr[511] != 0xaa || mbr[0x1c2] != 0xee || mbr[0x5c] != 34 || mbr[0x64] != 0xff {
		t.Errorf("MBR: signature %x, partition type %#x, core.img sector %d, boot drive %#x; want 55aa, 0xee, 34, 0xff",
			mbr[510:512], mbr[0x1c2], mbr[0x5c], mbr[0x64])
	}
	if cfg := espFile(t, img, "/"+boot.GrubConfigPath); !strings.Contains(cfg, "menuentry 'Node 1.0 (slot a)'") {
		t.Errorf("grub.cfg has no entry for slot a:\n%s", cfg)
	}
	if env := grubenvOf(t, img); len(env) != 0 {
		t.Errorf("grubenv after the install: %v; want no counters", env)
	}
}

func grubenvOf(t *testing.T, img string) boot.Grubenv {
	t.Helper()
	env, err := boot.ParseGrubenv([]byte(espFile(t, img, "/"+boot.GrubenvPath)))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func readAt(t *testing.T, img string, off, n int64) []byte {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}
