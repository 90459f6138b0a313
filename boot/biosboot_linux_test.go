package boot

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nodeinit/nodeinit/internal/testloop"
)

const grubPCDir = "/usr/lib/grub/i386-pc"

// TestWriteBIOSBootMatchesGrubBiosSetup writes GRUB's boot.img and a core.img
// onto a GPT disk with a BIOS boot partition at sectors 34–2047, once with
// WriteBIOSBoot and once with grub-bios-setup --no-rs-codes (Debian
// grub-pc-bin) on a loop device of a copy, and compares the MBR and the
// sectors of core.img byte for byte.
func TestWriteBIOSBootMatchesGrubBiosSetup(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root for a loop device and a mount (not with -short)")
	}
	setup := filepath.Join(grubPCDir, "grub-bios-setup")
	for _, tool := range []string{setup, "grub-mkimage", "sgdisk", "partx", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian grub-pc-bin, grub-common, gdisk, util-linux, e2fsprogs)", tool)
		}
	}
	dir := t.TempDir()
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	core := filepath.Join(dir, GrubCoreImage)
	run("grub-mkimage", append([]string{"-O", "i386-pc", "-d", grubPCDir, "-p", GrubCorePrefix, "-o", core}, GrubCoreModules...)...)
	bootImg, err := os.ReadFile(filepath.Join(grubPCDir, GrubBootImage))
	if err != nil {
		t.Fatal(err)
	}
	coreImg, err := os.ReadFile(core)
	if err != nil {
		t.Fatal(err)
	}
	ours, theirs := filepath.Join(dir, "ours.img"), filepath.Join(dir, "theirs.img")
	for _, img := range []string{ours, theirs} {
		run("truncate", "-s", "64M", img)
		run("sgdisk", "-a", "1", "-n", "8:34:2047", "-t", "8:EF02", "-a", "2048", "-n", "1:1M:+32M", "-t", "1:EF00", img)
	}

	f, err := os.OpenFile(ours, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := WriteBIOSBoot(f, bootImg, coreImg, 34, 2014); err != nil {
		t.Fatal(err)
	}

	// grub-bios-setup finds the GRUB directory's device in its device map, so
	// the directory lives on the disk's first partition.
	l := testloop.Attach(t, theirs)
	run("partx", "-a", l.Dev)
	run("mkfs.ext4", "-q", l.Dev+"p1")
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	run("mount", l.Dev+"p1", mnt)
	grub := filepath.Join(mnt, "grub")
	if err := os.Mkdir(grub, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{GrubBootImage: bootImg, GrubCoreImage: coreImg, "device.map": []byte("(hd0) " + l.Dev + "\n")} {
		if err := os.WriteFile(filepath.Join(grub, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(setup, "-d", grub, "-m", filepath.Join(grub, "device.map"), "--no-rs-codes", "-s", l.Dev).CombinedOutput()
	run("umount", mnt)
	if err != nil {
		t.Fatalf("grub-bios-setup: %v\n%s", err, out)
	}
	if err := l.Detach(); err != nil {
		t.Fatal(err)
	}

	n := int64(len(coreImg)+511) / 512
	for _, r := range []struct {
		what     string
		from, to int64
	}{{"the MBR", 0, 512}, {"core.img", 34 * 512, (34 + n) * 512}} {
		a, b := readRange(t, ours, r.from, r.to), readRange(t, theirs, r.from, r.to)
		if !bytes.Equal(a, b) {
			for i := range a {
				if a[i] != b[i] {
					t.Errorf("%s differs from grub-bios-setup's first at byte %#x: ours %#x, theirs %#x", r.what, r.from+int64(i), a[i], b[i])
					break
				}
			}
		}
	}
}

func readRange(t *testing.T, path string, from, to int64) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, to-from)
	if _, err := f.ReadAt(b, from); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteBIOSBootRefuses(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "disk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 20); err != nil {
		t.Fatal(err)
	}
	sector := make([]byte, 512)
	sector[510], sector[511] = 0x55, 0xaa
	core := make([]byte, 4*512)
	if err := WriteBIOSBoot(f, sector, core, 34, 2014); err == nil {
		t.Error("a disk without a protective MBR got boot code")
	}
	if err := WriteBIOSBoot(f, sector, make([]byte, 3000*512), 34, 2014); err == nil {
		t.Error("a core.img larger than the partition was written")
	}
	if err := WriteBIOSBoot(f, make([]byte, 512), core, 34, 2014); err == nil {
		t.Error("a boot.img without the boot signature was taken")
	}
}
