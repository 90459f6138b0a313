package qemutests

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// powerOnUntilOff boots from disk and lets the guest reboot by itself (a kernel panic
// reboots after panic=N) until it powers off.
func (n *node) powerOnUntilOff() *vm.VM {
	n.t.Helper()
	return vm.Start(n.t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, MemoryMiB: 1536, Timeout: 6 * time.Minute})
}

// espFile reads a file from the ESP of an installed disk image with mtools (the build
// machine's kernel has no vfat).
func espFile(t *testing.T, img, name string) string {
	t.Helper()
	cmd := exec.Command("mtype", "-i", img+"@@1M", "::"+name)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mtype %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// TestUpgradeThenAutomaticRollback installs 1.0, upgrades to 2.0 by kernel argument from
// the 2.0 medium (slot b, persisted config kept, the image's migration applied), then
// upgrades to a 3.0 whose init crashes: after its tries run out the machine is back on
// 2.0 without help, the ledger names the rollback, and config is as 2.0 left it.
func TestUpgradeThenAutomaticRollback(t *testing.T) {
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "LIFE0001"})
	acts := "testos.action=show:/etc/testos/written,write:/etc/testos/written:kept,show:/etc/testos/migrated,bless,poweroff"
	v := n.installer("1.0", "install storage_init=serial:LIFE0001 BOOTIF=01-52-54-00-12-34-56 hostname=life1 "+acts)
	v.Expect(`nodeinit: install complete`, 3*time.Minute)
	waitExit(t, v)
	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=life1`, 3*time.Minute)
	v.Expect(`TESTOS-WROTE /etc/testos/written`, 30*time.Second)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)

	v = n.installer("2.0", "upgrade nodeinit.onfail=poweroff")
	v.Expect(`action:   upgrade`, 3*time.Minute)
	v.Expect(`nodeinit: \[migrate-config\] info: config snapshot "1\.0" taken; applying 1 migrations`, 2*time.Minute)
	v.Expect(`nodeinit: upgrade complete`, 2*time.Minute)
	waitExit(t, v)
	if entries := espFile(t, n.disks[0].Path, "/ledger.json"); !strings.Contains(entries, `"2.0"`) {
		t.Errorf("ledger does not record 2.0:\n%s", entries)
	}
	v = n.powerOn()
	v.Expect(`TESTOS version=2\.0 build=2\.0 slot=b hostname=life1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/testos/written "kept\\n"`, 30*time.Second)
	v.Expect(`TESTOS-SHOW /etc/testos/migrated "from-1\.0\\n"`, 30*time.Second)
	v.Expect(`TESTOS-BLESSED slot=b`, 30*time.Second)
	waitExit(t, v)

	v = n.installer("3.0", "upgrade nodeinit.tries=2 nodeinit.onfail=poweroff")
	v.Expect(`nodeinit: upgrade complete`, 3*time.Minute)
	waitExit(t, v)
	v = n.powerOnUntilOff()
	v.Expect(`TESTOS version=3\.0 build=3\.0 slot=a`, 3*time.Minute)
	v.Expect(`TESTOS-CRASH`, 30*time.Second)
	v.Expect(`ROLLBACK from slot a to slot b`, 5*time.Minute)
	v.Expect(`TESTOS version=2\.0 build=2\.0 slot=b hostname=life1`, 2*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/testos/written "kept\\n"`, 30*time.Second)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
	crashes := strings.Count(v.Output(), "TESTOS-CRASH")
	t.Logf("3.0 crashed %d times before the rollback", crashes)
	if crashes != 2 {
		t.Errorf("3.0 booted %d times; the upgrade's nodeinit.tries=2 allows 2", crashes)
	}
	ledger := espFile(t, n.disks[0].Path, "/ledger.json")
	if !strings.Contains(ledger, `"rollbacks"`) || !strings.Contains(ledger, `"from": "a"`) {
		t.Errorf("ledger does not name the rollback:\n%s", ledger)
	}
}

// TestUninstallLeavesOtherDisks installs onto one disk beside a second disk with an ext4
// filesystem, then uninstalls: wipefs and blkid find nothing on the install's disk, and
// the second disk is byte-identical.
func TestUninstallLeavesOtherDisks(t *testing.T) {
	other := vm.NewDisk(t, "other.img", 1<<30)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "vmstore", other).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	otherHash := hashFile(t, other)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "UNINST01"},
		vm.Disk{Path: other, Interface: vm.Virtio, Serial: "OTHER001"})
	v := n.installer("1.0", "install storage_init=serial:UNINST01 hostname=gone1")
	v.Expect(`nodeinit: install complete`, 3*time.Minute)
	waitExit(t, v)

	v = n.installer("1.0", "install uninstall nodeinit.onfail=poweroff")
	v.Expect(`action:   uninstall`, 3*time.Minute)
	v.Expect(`nodeinit: uninstall complete`, 2*time.Minute)
	waitExit(t, v)
	if !strings.Contains(v.Output(), "DESTROYS: /dev/nvme0n1") || strings.Contains(v.Output(), "DESTROYS: /dev/vda") {
		t.Errorf("the uninstall plan does not destroy exactly the install's disk")
	}
	if out, _ := exec.Command("wipefs", "-n", n.disks[0].Path).CombinedOutput(); len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("wipefs still finds signatures after uninstall:\n%s", out)
	}
	if out, err := exec.Command("blkid", "-p", n.disks[0].Path).CombinedOutput(); err == nil {
		t.Errorf("blkid -p still finds something after uninstall:\n%s", out)
	}
	if hashFile(t, other) != otherHash {
		t.Errorf("uninstall changed the disk that was never part of the install")
	}
}

// TestStatelessWritesNothing runs the node from RAM: the OS comes up with the command
// line's hostname and every disk is byte-identical afterwards.
func TestStatelessWritesNothing(t *testing.T) {
	d1 := seededDisk(t, "a.img", 2<<30)
	d2 := vm.NewDisk(t, "b.img", 2<<30)
	before := []string{hashFile(t, d1), hashFile(t, d2)}
	n := newNode(t, vm.Disk{Path: d1, Interface: vm.NVMe, Serial: "STATE001"}, vm.Disk{Path: d2, Interface: vm.Virtio, Serial: "STATE002"})
	v := n.installer("1.0", "stateless hostname=ram1 testos.action=show:/etc/hostname,poweroff")
	v.Expect(`action:   stateless`, 3*time.Minute)
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=\S* hostname=ram1`, 2*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/hostname "ram1\\n"`, 30*time.Second)
	waitExit(t, v)
	if after := []string{hashFile(t, d1), hashFile(t, d2)}; after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("a stateless boot changed a disk")
	}
}

// TestInstallTwiceBootsInstead is the PXE loop guard: booting the same install line again
// on a machine that already holds that image boots the node instead of reinstalling.
func TestInstallTwiceBootsInstead(t *testing.T) {
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "TWICE001"})
	line := "install storage_init=serial:TWICE001 hostname=twice1 testos.action=poweroff"
	v := n.installer("1.0", line)
	v.Expect(`nodeinit: install complete`, 3*time.Minute)
	waitExit(t, v)
	v = n.installer("1.0", line)
	v.Expect(`warning:  nvme0n1 already holds version 1\.0: booting it instead of installing again`, 3*time.Minute)
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=\S* hostname=twice1 `, 2*time.Minute)
	waitExit(t, v)
	for _, stage := range []string{"wipe", "partition", "filesystems", "write-slot", "esp"} {
		if strings.Contains(v.Output(), "nodeinit: ["+stage+"] start") {
			t.Errorf("the second install ran stage %s", stage)
		}
	}
}
