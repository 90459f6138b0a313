package blackbox

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/plan"
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
	// The install gives the node its machine ID, persisted like the hostname.
	if got := v.liveConfig()["etc/machine-id"]; !regexp.MustCompile(`^[0-9a-f]{32}\n$`).MatchString(got) {
		t.Errorf("seeded machine ID %q, want 32 lower-case hex digits and a newline", got)
	}
	if got := v.liveConfig()[".nodeinit/persisted"]; !strings.Contains(got, "\n/etc/machine-id\n") || !strings.Contains(got, "\n/etc/hostname\n") {
		t.Errorf("persisted list %q lacks /etc/machine-id or /etc/hostname", got)
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
		if label == disk.LabelConfig {
			if st := run(t, "debugfs", "-R", "stat /etc/machine-id", part); !regexp.MustCompile(`Mode:\s+0444\b`).MatchString(st) {
				t.Errorf("debugfs stat /etc/machine-id, want mode 0444:\n%s", st)
			}
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
	before := fileHash(t, img)
	bp, newRoot, out, err := e.stateless(m, "stateless nodeinit.image="+b1+" hostname=ram.example.com")
	if err != nil {
		t.Fatalf("stateless: %v\n%s", err, out)
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

// TestStatelessAdminHashFromBundle boots stateless with nodeinit.adminpw=bundle and no
// adminpw=: the node's /etc/shadow gives admin the hash from the bundle's signed
// adminpw.hash, and neither the command line the node keeps as /proc/cmdline nor the
// plan text and events the boot printed show it.
func TestStatelessAdminHashFromBundle(t *testing.T) {
	const hash = "$6$blackboxsalt$AdminHashFromTheSignedBundle0123456789abcdefghijklmnopqrstuvwxyz/."
	e := newEnv(t)
	b1 := e.bundle(release{version: "1.0", adminHash: hash})
	m := e.record(e.newDisk("disk.img"), 512)
	line := "stateless nodeinit.image=" + b1 + " nodeinit.adminpw=bundle hostname=ram.example.com"
	_, newRoot, out, err := e.stateless(m, line)
	if err != nil {
		t.Fatalf("stateless: %v\n%s", err, out)
	}
	shadow, err := os.ReadFile(filepath.Join(newRoot, "etc/shadow"))
	if err != nil || !strings.Contains(string(shadow), "admin:"+hash+":") {
		t.Fatalf("the node's /etc/shadow does not give admin the bundle's hash: %v\n%s", err, shadow)
	}
	for what, s := range map[string]string{"the command line": line, "the plan and events": out} {
		if strings.Contains(s, "AdminHashFromTheSignedBundle") {
			t.Errorf("%s shows the admin hash:\n%s", what, s)
		}
	}
}

// stateless runs line, a stateless boot, through the recorder m and returns the
// plan, the root it assembled, and the plan text and events it printed. Whatever
// the test does next, the root, the squashfs over the RAM copy, its loop device
// and the RAM tmpfs are released when it ends: in that order, or the tmpfs stays busy.
func (e *env) stateless(m *machine, line string) (*plan.Blueprint, string, string, error) {
	t := e.t
	runDir, newRoot := filepath.Join(e.dir, "run-stateless"), filepath.Join(e.dir, "newroot")
	t.Cleanup(func() {
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
	sink := stages.SinkFunc(func(ev stages.Event) {
		b, _ := json.Marshal(ev)
		out.Write(append(b, '\n'))
	})
	bp, err := stages.Apply(context.Background(), stages.ApplyOptions{
		Cmdline: line, Dev: m, OnlyDisks: []string{m.name},
		KeysDir: e.keys, RunDir: runDir, NewRoot: newRoot, Out: &out, Sink: sink})
	return bp, newRoot, out.String(), err
}
