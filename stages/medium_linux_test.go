package stages

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
)

// TestEmbeddedBundleMarksTheStick is a USB stick written from a nodeinit ISO
// and booted with the bundle inside its initrd (mkmedia --embed-bundle): the
// image comes from initramfs:/bundle, yet the stick, labelled NODEINIT, is
// still found and marked as the boot medium, so it is never a target; the
// other disk is not marked.
func TestEmbeddedBundleMarksTheStick(t *testing.T) {
	if _, err := exec.LookPath("mkfs.vfat"); err != nil {
		t.Skip("needs mkfs.vfat (dosfstools)")
	}
	root := t.TempDir()
	stick := filepath.Join(t.TempDir(), "stick.img")
	if err := os.WriteFile(stick, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(stick, 64<<20)
	if out, err := exec.Command("mkfs.vfat", "-n", mediumLabel, stick).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
	blank := filepath.Join(t.TempDir(), "blank.img")
	os.WriteFile(blank, nil, 0o644)
	os.Truncate(blank, 64<<20)
	for name, img := range map[string]string{"sda": blank, "sdb": stick} {
		dir := filepath.Join(root, "sys/devices/pci0000:00/0000:00:14.0/usb1/host0/block", name)
		writeTree(t, root, map[string]string{
			"sys/devices/pci0000:00/0000:00:14.0/usb1/host0/block/" + name + "/size": "131072",
			"sys/block/" + name:       "->" + dir,
			"sys/class/block/" + name: "->" + dir,
			"dev/" + name:             "->" + img,
		})
		if err := os.Symlink(filepath.Dir(filepath.Dir(dir)), filepath.Join(dir, "device")); err != nil {
			t.Fatal(err)
		}
	}
	bundle, keys := signedBundle(t)
	if err := os.Symlink(bundle, filepath.Join(root, "bundle")); err != nil {
		t.Fatal(err)
	}
	p, err := cmdline.Parse("install storage_init=/dev/sda")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Probe(context.Background(), p, GatherOptions{Root: root, KeysDir: keys, RunDir: t.TempDir(),
		DefaultImages: []string{"initramfs:/bundle", "label:" + mediumLabel}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.Facts.Image == nil || m.Facts.Image.Source != "initramfs:/bundle" || m.Facts.Image.Error != "" {
		t.Fatalf("image %+v, want the embedded bundle", m.Facts.Image)
	}
	marked := map[string]bool{}
	for _, d := range m.Facts.Disks {
		marked[d.Name] = d.BootMedium
	}
	if !marked["sdb"] || marked["sda"] {
		t.Errorf("boot medium marks %v, want sdb only", marked)
	}
}
