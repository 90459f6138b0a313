package image

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/internal/testloop"
	"github.com/nodeinit/nodeinit/operr"
)

// mediumImage makes a small filesystem image file labelled label.
func mediumImage(t *testing.T, fstype, label, content string) string {
	t.Helper()
	dir := t.TempDir()
	img := filepath.Join(dir, fstype+".img")
	var cmd *exec.Cmd
	switch fstype {
	case "vfat":
		if _, err := exec.LookPath("mkfs.vfat"); err != nil {
			t.Skip("needs mkfs.vfat")
		}
		os.WriteFile(img, nil, 0o644)
		os.Truncate(img, 32<<20)
		cmd = exec.Command("mkfs.vfat", "-n", label, img)
	case "iso9660":
		if _, err := exec.LookPath("xorriso"); err != nil {
			t.Skip("needs xorriso")
		}
		cmd = exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-V", label, "-o", img, content)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v: %s", cmd.Args, err, out)
	}
	return img
}

// fakeDev is one block device of a fake sysfs tree.
type fakeDev struct {
	name   string // kernel name: sda, sdb1, dm-0, loop0
	target string // what dev/NAME links to: an image file or a real device node ("" for no node)
	disk   string // for a partition, the kernel name of its disk
	bus    bool   // the disk has a device link (sys/block/DISK/device): a bus device behind it
}

// bus lists physical whole disks: each name gets a device link, and dev/NAME
// links to its target.
func bus(devs map[string]string) []fakeDev {
	var out []fakeDev
	for name, target := range devs {
		out = append(out, fakeDev{name: name, target: target, bus: true})
	}
	return out
}

// fakeBlockTree makes a sysfs tree laid out as the kernel lays it out, and
// dev/NAME nodes (symlinks to regular files or to real devices): each disk is
// a directory under sys/devices (…/bus0/block/DISK when it has a bus device,
// virtual/block/DISK when not) with sys/block/DISK and sys/class/block/DISK
// linking to it, a bus disk has a device link, and a partition is a directory
// inside its disk's, with a partition file, linked from sys/class/block.
func fakeBlockTree(t *testing.T, devs ...fakeDev) (sysRoot, devRoot string) {
	t.Helper()
	root := t.TempDir()
	sysRoot, devRoot = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	for _, d := range []string{"block", "class/block", "devices/pci0000:00/bus0", "devices/virtual"} {
		if err := os.MkdirAll(filepath.Join(sysRoot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(devRoot, 0o755)
	link := func(target, name string) {
		if err := os.Symlink(target, name); err != nil {
			t.Fatal(err)
		}
	}
	diskDir := func(disk string, bus bool) string {
		dir := filepath.Join(sysRoot, "devices/virtual/block", disk)
		if bus {
			dir = filepath.Join(sysRoot, "devices/pci0000:00/bus0/block", disk)
		}
		if _, err := os.Stat(dir); err == nil {
			return dir
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		link(dir, filepath.Join(sysRoot, "block", disk))
		link(dir, filepath.Join(sysRoot, "class/block", disk))
		if bus {
			link(filepath.Join(sysRoot, "devices/pci0000:00/bus0"), filepath.Join(dir, "device"))
		}
		return dir
	}
	for _, d := range devs {
		if d.disk == "" {
			diskDir(d.name, d.bus)
		} else {
			part := filepath.Join(diskDir(d.disk, d.bus), d.name)
			if err := os.MkdirAll(part, 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(part, "partition"), []byte("1\n"), 0o644)
			link(part, filepath.Join(sysRoot, "class/block", d.name))
		}
		if d.target != "" {
			link(d.target, filepath.Join(devRoot, d.name))
		}
	}
	return sysRoot, devRoot
}

func TestFindByLabel(t *testing.T) {
	vfat := mediumImage(t, "vfat", "NODEMEDIA", "")
	iso := mediumImage(t, "iso9660", "NODE_ISO", t.TempDir())
	other := mediumImage(t, "vfat", "OTHER", "")
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, make([]byte, 100), 0o644)
	sys, dev := fakeBlockTree(t, bus(map[string]string{"sda": vfat, "sr0": iso, "sdb": other, "sdc": empty})...)

	for _, tc := range []struct{ label, dev, fs string }{
		{"NODEMEDIA", "sda", "vfat"}, {"nodemedia", "sda", "vfat"}, {"NODE_ISO", "sr0", "iso9660"},
	} {
		d, fs, err := FindByLabel(tc.label, sys, dev)
		if err != nil || d != filepath.Join(dev, tc.dev) || fs != tc.fs {
			t.Errorf("FindByLabel(%q) = %s, %s, %v; want %s, %s", tc.label, d, fs, err, tc.dev, tc.fs)
		}
	}
	if _, _, err := FindByLabel("MISSING", sys, dev); err == nil || HintOf(err) == "" {
		t.Errorf("FindByLabel(MISSING) = %v, want an error with a hint", err)
	}
	sys2, dev2 := fakeBlockTree(t, bus(map[string]string{"sda": vfat, "sdb": vfat})...)
	if _, _, err := FindByLabel("NODEMEDIA", sys2, dev2); err == nil {
		t.Error("two devices with one label were not refused")
	}
}

// TestFindByLabelSkipsVirtualDevices: a guest's logical volume (dm-0), a loop
// device, a partition of a loop device and a disk with no bus device behind
// it all carry the medium's label, and a partition of a physical disk does
// too: label: finds the partition. With only the virtual devices left, it
// refuses, naming each device it skipped and why, and says how to name a
// source directly.
func TestFindByLabelSkipsVirtualDevices(t *testing.T) {
	medium := mediumImage(t, "vfat", "NODEINIT", "")
	virtual := []fakeDev{
		{name: "dm-0", target: medium},
		{name: "dm-1", target: medium, bus: true}, // a device link does not make dm physical
		{name: "loop0", target: medium},
		{name: "loop1p1", target: medium, disk: "loop1"},
		{name: "vdz", target: medium}, // no device link
	}
	sdb1 := fakeDev{name: "sdb1", target: medium, disk: "sdb", bus: true}
	sys, dev := fakeBlockTree(t, append(virtual, sdb1)...)
	got, fs, err := FindByLabel("NODEINIT", sys, dev)
	if err != nil || got != filepath.Join(dev, "sdb1") || fs != "vfat" {
		t.Fatalf("FindByLabel = %s, %s, %v; want the physical partition %s", got, fs, err, filepath.Join(dev, "sdb1"))
	}

	sys, dev = fakeBlockTree(t, virtual...)
	_, _, err = FindByLabel("NODEINIT", sys, dev)
	e := operr.Of(err)
	if e == nil || e.Fix == "" {
		t.Fatalf("FindByLabel with only virtual devices = %v, want an operator error with a fix", err)
	}
	for name, why := range map[string]string{
		"dm-0": "device-mapper", "dm-1": "device-mapper", "loop0": "loop device",
		"loop1p1": "partition of loop1", "vdz": "no device link",
	} {
		if want := filepath.Join(dev, name) + " ("; !strings.Contains(e.Why, want) || !strings.Contains(e.Why, why) {
			t.Errorf("the error does not name %s as skipped because %s: %v", name, why, err)
		}
	}
	if !strings.Contains(e.Fix, "nodeinit.image=") {
		t.Errorf("the fix does not say how to name the source directly: %q", e.Fix)
	}

	sys, dev = fakeBlockTree(t, fakeDev{name: "dm-0", target: medium})
	_, _, err = FindByLabel("NODEINIT", sys, dev)
	if e := operr.Of(err); e == nil || !strings.Contains(e.Why, filepath.Join(dev, "dm-0")+" (a device-mapper device") ||
		!strings.Contains(e.Fix, "nodeinit.image="+filepath.Join(dev, "dm-0")) {
		t.Errorf("FindByLabel with only dm-0 = %v (fix %q), want it to name dm-0, why it was skipped, and how to name it", err, HintOf(err))
	}
}

// TestLabelSourceMountsReadOnly finds a medium by filesystem label, mounts it
// read-only and opens a signed bundle from it. The medium is a loop device,
// shown to FindByLabel as a disk with a bus device behind it (sdz), which it
// accepts; under its own name, with the kernel's sysfs entries for it, the
// same loop device is refused as a label: source, and named by its path it
// is mounted all the same. The host kernel of CI has ext4 built in but no
// vfat or iso9660, so the medium here is ext4; vfat and iso9660 label
// detection is covered by TestFindByLabel, and their mounts by the QEMU tests.
func TestLabelSourceMountsReadOnly(t *testing.T) {
	needRoot(t, "losetup", "mkfs.ext4")
	if fss, _ := os.ReadFile("/proc/filesystems"); !strings.Contains(string(fss), "ext4") {
		t.Skip("kernel has no ext4")
	}
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	content := t.TempDir()
	if err := os.Rename(dir, filepath.Join(content, "bundle")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "medium.img")
	if out, err := exec.Command("mkfs.ext4", "-q", "-L", "NODEMEDIA", "-d", content, img, "64M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	loop := testloop.Attach(t, img, "-r").Dev
	mnt := t.TempDir()
	// Whatever a check below fails on, nothing stays mounted on the loop device
	// (cleanups run last in first out: this one before the detach).
	t.Cleanup(func() {
		for _, d := range []string{"NODEMEDIA", "dev-" + filepath.Base(loop)} {
			target := filepath.Join(mnt, d)
			for exec.Command("mountpoint", "-q", target).Run() == nil {
				if out, err := exec.Command("umount", target).CombinedOutput(); err != nil {
					t.Errorf("umount %s: %v: %s", target, err, out)
					break
				}
			}
		}
	})

	sys, dev := fakeBlockTree(t, fakeDev{name: "sdz", target: loop, bus: true})
	src, err := OpenSource("label:NODEMEDIA/bundle", SourceOptions{SysRoot: sys, DevRoot: dev, MountDir: mnt})
	if err != nil {
		t.Fatalf("OpenSource: %v", err)
	}
	checkMountedBundle(t, src, filepath.Join(mnt, "NODEMEDIA"), keys)

	// The loop device as the kernel shows it: sysfs entries with no device link.
	name := filepath.Base(loop)
	sys = filepath.Join(t.TempDir(), "sys")
	for _, d := range []string{"block", "class/block"} {
		os.MkdirAll(filepath.Join(sys, d), 0o755)
		if err := os.Symlink(filepath.Join("/sys", d, name), filepath.Join(sys, d, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(sys, "class/block", name, "dev")); err != nil {
		t.Fatalf("no sysfs entry for %s: %v", loop, err)
	}
	_, err = OpenSource("label:NODEMEDIA/bundle", SourceOptions{SysRoot: sys, DevRoot: "/dev", MountDir: mnt})
	if e := operr.Of(err); e == nil || !strings.Contains(e.Why, loop+" (a loop device)") || e.Fix == "" {
		t.Fatalf("label: on a loop device = %v, want a refusal naming %s as a loop device, with a fix", err, loop)
	}
	if exec.Command("mountpoint", "-q", filepath.Join(mnt, "NODEMEDIA")).Run() == nil {
		t.Fatal("the refused loop device was mounted")
	}

	// Named by its device path, as the refusal's fix says, it is mounted.
	src, err = OpenSource(loop+"/bundle", SourceOptions{MountDir: mnt})
	if err != nil {
		t.Fatalf("OpenSource(%s/bundle): %v", loop, err)
	}
	checkMountedBundle(t, src, filepath.Join(mnt, "dev-"+name), keys)
}

// checkMountedBundle verifies the bundle of src, mounted at target, checks
// that the medium is read-only, closes src and checks it is unmounted.
func checkMountedBundle(t *testing.T, src Source, target, keys string) {
	t.Helper()
	b := mustOpen(t, src, mustKeyring(t, keys), VerifyOptions{})
	if err := b.VerifyFiles(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err == nil {
		t.Error("medium is mounted writable")
	}
	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "bundle")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("medium still mounted after Close: %v", err)
	}
}
