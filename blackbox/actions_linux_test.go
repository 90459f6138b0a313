package blackbox

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/stages"
)

// TestInstallBlankDisk: a blank disk and an install command line in; the GPT,
// filesystems, ESP, ledger and seeded config out, judged by sgdisk, blkid,
// e2fsck and fsck.vfat, and by the inspector as the boot would see it.
func TestInstallBlankDisk(t *testing.T) {
	e := newEnv(t)
	b1 := e.bundle(release{version: "1.0", fillerMiB: 2})
	img := e.newDisk("disk.img")
	m := e.record(img, 512)
	line := "install storage_init=/dev/" + m.name + " nodeinit.image=" + b1 + " " + vols + " hostname=node1.example.com adminpw=$6$salt$hash dns=192.0.2.53"
	res := e.apply(m, m.name, line)
	if res.err != nil {
		t.Fatalf("install: %v\n%s", res.err, res.out)
	}
	want := []string{"probe", "fetch-boot-files", "partition", "filesystems", "write-slot", "copy-boot-files", "seed-config", "add-boot-entry", "boot-order", "report"}
	if got := res.ran(); !slices.Equal(got, want) {
		t.Errorf("stages %v, want %v", got, want)
	}
	writes, flushes := m.Counts()
	t.Logf("install: %d writes, %d flushes reached the disk", writes, flushes)

	out := run(t, "sgdisk", "-v", img)
	if !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	in, err := newInspector(512, t.TempDir(), b1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := in.inspect(img)
	if err != nil {
		t.Fatal(err)
	}
	if v.boots != "a" || v.version != "1.0" {
		t.Fatalf("the installed disk does not boot 1.0 from slot a: %s", v)
	}
	if got := v.liveConfig()["etc/hostname"]; got != "node1.example.com\n" {
		t.Errorf("seeded hostname %q", got)
	}
	for label, want := range map[string]string{disk.LabelESP: "vfat", disk.LabelConfig: "ext4", "node-logging": "ext4"} {
		p, ok := v.parts[label]
		if !ok {
			t.Errorf("no %s partition", label)
			continue
		}
		part := filepath.Join(t.TempDir(), label+".img")
		copyRange(t, img, part, p.StartByte, p.SizeBytes)
		if got := run(t, "blkid", "-p", "-s", "TYPE", "-o", "value", part); strings.TrimSpace(got) != want {
			t.Errorf("%s: blkid says %q, want %s", label, got, want)
		}
		switch want {
		case "ext4":
			run(t, "e2fsck", "-fn", part)
		case "vfat":
			run(t, "fsck.vfat", "-n", part)
		}
		os.Remove(part)
	}
}

// TestStatelessWritesNothing runs a stateless boot's steps (copy the image to
// RAM, assemble the root from it) through the recorder: the root holds the
// image, and not one write reached the disk.
func TestStatelessWritesNothing(t *testing.T) {
	e := newEnv(t)
	b1 := e.bundle(release{version: "1.0", fillerMiB: 1})
	img := e.newDisk("disk.img")
	m := e.record(img, 512)
	runDir, newRoot := filepath.Join(e.dir, "run-stateless"), filepath.Join(e.dir, "newroot")
	before := fileHash(t, img)
	t.Cleanup(func() {
		// The root, then the squashfs over the RAM copy, its loop device, and the
		// RAM tmpfs: in that order, or the tmpfs stays busy.
		exec.Command("umount", "-R", newRoot).Run()
		exec.Command("umount", filepath.Join(runDir, "lower")).Run()
		if out, err := exec.Command("losetup", "-j", filepath.Join(runDir, "ram", "rootfs.squashfs")).Output(); err == nil {
			if dev, _, ok := strings.Cut(string(out), ":"); ok {
				exec.Command("losetup", "-d", dev).Run()
			}
		}
		exec.Command("umount", "-R", runDir).Run()
	})
	var out strings.Builder
	bp, err := stages.Apply(context.Background(), stages.ApplyOptions{
		Cmdline: "stateless nodeinit.image=" + b1 + " hostname=ram.example.com", Dev: m, OnlyDisks: []string{m.name},
		KeysDir: e.keys, RunDir: runDir, NewRoot: newRoot, Out: &out})
	if err != nil {
		t.Fatalf("stateless: %v\n%s", err, out.String())
	}
	if got := []string{bp.Steps[0].Name, bp.Steps[1].Name}; got[0] != "copy-to-ram" || got[1] != "mount-root" {
		t.Errorf("stateless steps %v", got)
	}
	osRelease, err := os.ReadFile(filepath.Join(newRoot, "etc/os-release"))
	if err != nil || !strings.Contains(string(osRelease), "VERSION=1.0") {
		t.Errorf("the root assembled from RAM does not hold the image: %q %v", osRelease, err)
	}
	if w, _ := m.Counts(); w != 0 || fileHash(t, img) != before {
		t.Fatalf("stateless wrote to the disk: %d writes", w)
	}
}
