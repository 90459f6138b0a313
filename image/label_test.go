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

// fakeBlockTree makes sys/class/block/NAME entries and dev/NAME nodes
// (regular files or symlinks to real devices).
func fakeBlockTree(t *testing.T, devs map[string]string) (sysRoot, devRoot string) {
	t.Helper()
	root := t.TempDir()
	sysRoot, devRoot = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	os.MkdirAll(devRoot, 0o755)
	for name, target := range devs {
		os.MkdirAll(filepath.Join(sysRoot, "class", "block", name), 0o755)
		if err := os.Symlink(target, filepath.Join(devRoot, name)); err != nil {
			t.Fatal(err)
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
	sys, dev := fakeBlockTree(t, map[string]string{"sda": vfat, "sr0": iso, "sdb": other, "sdc": empty})

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
	sys2, dev2 := fakeBlockTree(t, map[string]string{"sda": vfat, "sdb": vfat})
	if _, _, err := FindByLabel("NODEMEDIA", sys2, dev2); err == nil {
		t.Error("two devices with one label were not refused")
	}
}

// TestLabelSourceMountsReadOnly finds a loop device by filesystem label,
// mounts it read-only and opens a signed bundle from it. The host kernel of
// CI has ext4 built in but no vfat or iso9660, so the medium here is ext4;
// vfat and iso9660 label detection is covered by TestFindByLabel, and their
// mounts by the QEMU tests.
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
	sys, dev := fakeBlockTree(t, map[string]string{filepath.Base(loop): loop})
	mnt := t.TempDir()
	src, err := OpenSource("label:NODEMEDIA/bundle", SourceOptions{SysRoot: sys, DevRoot: dev, MountDir: mnt})
	if err != nil {
		t.Fatalf("OpenSource: %v", err)
	}
	target := filepath.Join(mnt, "NODEMEDIA")
	t.Cleanup(func() { exec.Command("umount", target).Run() })
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
