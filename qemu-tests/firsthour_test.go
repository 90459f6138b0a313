package qemutests

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// TestInitramfsWithoutWhatThePlanNeeds boots an initramfs built the way a user
// might: with a --module list that leaves out overlay. A stateless boot is
// refused by the plan, naming overlay, before the first write, so the blank
// disk is byte-identical afterwards. (An install needs no external tool: ext4
// is made in-process, and the cloud kernel has ext4 built in.)
func TestInitramfsWithoutWhatThePlanNeeds(t *testing.T) {
	f := fixtures(t)
	d := vm.NewDisk(t, "nvme.img", 16<<30)
	before := hashFile(t, d)
	n := newNode(t, vm.Disk{Path: d, Interface: vm.NVMe, Serial: "NOTOOLS1"})
	modules := slices.DeleteFunc(slices.Clone(initramfs.DefaultModules), func(m string) bool { return m == "overlay" })
	initrd, err := f.InstallerBuiltWith(context.Background(), "1.0", "installer-no-tools",
		initramfs.Options{Modules: modules})
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct{ args, want string }{
		{"stateless", "no overlay filesystem in its kernel, which the mount-root step mounts"},
	} {
		v := n.installerFrom(initrd, c.args+" nodeinit.onfail=poweroff")
		e := v.ExpectEvent("the refusal", func(e stages.Event) bool { return e.Kind == stages.EventFailed }, 3*time.Minute)
		if !strings.Contains(e.Error, c.want) || !strings.Contains(e.Error, "nothing was written") || !strings.Contains(e.Hint, "build the initramfs") {
			t.Errorf("%s: refused with %q (fix: %q), want it to say %q, that nothing was written, and how to build the initramfs", c.args, e.Error, e.Hint, c.want)
		}
		v.Expect(early.FailureScreenMarker, 30*time.Second)
		waitExit(t, v)
		if after := hashFile(t, d); after != before {
			t.Fatalf("%s: the refused plan changed the disk", c.args)
		}
	}
}

// TestIncompleteInstallFinishedBySameLine cuts the power in the middle of an
// install's slot write, then boots the same medium with the same command line:
// the probe finds the nodeinit install that never finished (it has no ledger),
// the plan installs it again without asking for consent, and the node boots.
func TestIncompleteInstallFinishedBySameLine(t *testing.T) {
	img := vm.NewDisk(t, "nvme.img", 16<<30)
	n := newNode(t, vm.Disk{Path: img, Interface: vm.NVMe, Serial: "HALF0001"})
	line := "install storage_init=serial:HALF0001 hostname=half1 testos.action=poweroff"

	// 1.5 carries 160 MiB that cannot be compressed: its slot write is long enough to cut.
	v := n.installer("1.5", line)
	p := v.ExpectEvent("write-slot progress", func(e stages.Event) bool {
		return e.Stage == "write-slot" && e.Kind == stages.EventProgress && e.Done > 0
	}, 3*time.Minute)
	v.Kill()
	if p.Done >= p.Total {
		t.Fatalf("the slot write had finished (%d bytes) before the cut", p.Done)
	}
	if out, err := exec.Command("sgdisk", "-p", img).CombinedOutput(); err != nil || !strings.Contains(string(out), "node-root-a") {
		t.Fatalf("after the cut the disk should hold the new partition table: %v\n%s", err, out)
	}

	v = n.installer("1.5", line)
	v.ExpectEvent("the plan to install again", func(e stages.Event) bool {
		return e.Kind == stages.EventPlan && strings.Contains(string(e.Plan), "never finished")
	}, 3*time.Minute)
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)

	v = n.powerOn()
	v.Expect(`TESTOS version=1\.5 build=1\.5 slot=a hostname=half1`, 3*time.Minute)
	waitExit(t, v)
	checkInstalledDisk(t, img)
}
