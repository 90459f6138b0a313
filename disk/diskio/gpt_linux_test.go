package diskio

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/internal/testloop"
	"golang.org/x/sys/unix"
)

// dwLoop attaches a new sparse file of size bytes to a loop device with the
// given logical sector size. Partitions added to it and the device itself are
// removed in t.Cleanup. It skips when not root or losetup is missing.
func dwLoop(t *testing.T, size int64, sectorSize int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	dwNeedTool(t, "losetup", "partx")
	img := dwSparse(t, size)
	return testloop.Attach(t, img, "--sector-size", strconv.Itoa(sectorSize)).Dev
}

// dwBlkid returns blkid -p's export of path (at offset/size when size > 0),
// or nil when it finds nothing.
func dwBlkid(t *testing.T, path string, offset, size int64) map[string]string {
	t.Helper()
	args := []string{"-p", "-o", "export"}
	if size > 0 {
		args = append(args, "-O", strconv.FormatInt(offset, 10), "-S", strconv.FormatInt(size, 10))
	}
	out, err := exec.Command("blkid", append(args, path)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 2 {
		return nil // nothing found
	}
	if err != nil {
		t.Fatalf("blkid %s: %v: %s", path, err, out)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

// dwWipefs returns what wipefs -n lists on path (empty when clean).
func dwWipefs(t *testing.T, path string) string {
	t.Helper()
	return strings.TrimSpace(dwRun(t, "wipefs", "-n", path))
}

// dwHash returns the SHA-256 of the whole device or file.
func dwHash(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// dwWithMount mounts dev on a temp dir, runs fn on it and unmounts, also
// when fn fails the test (defers run on t.FailNow).
func dwWithMount(t *testing.T, dev, fstype string, fn func(dir string)) {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(dev, dir, fstype, 0, ""); err != nil {
		t.Fatalf("mount %s (%s): %v", dev, fstype, err)
	}
	defer func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	}()
	fn(dir)
}

func kernelHas(fstype string) bool {
	b, _ := os.ReadFile("/proc/filesystems")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == fstype {
			return true
		}
	}
	return false
}

// TestInstallCycleLoop partitions, formats, wipes and re-installs a loop
// device at 512 and 4096-byte sectors, with sgdisk, blkid, wipefs, e2fsck and
// fsck.vfat as judges.
func TestInstallCycleLoop(t *testing.T) {
	dwNeedTool(t, "sgdisk", "blkid", "wipefs", "e2fsck", "fsck.vfat", "mke2fs", "swaplabel")
	for _, ss := range []int{512, 4096} {
		t.Run(strconv.Itoa(ss), func(t *testing.T) {
			const size = 24 * gibibyte
			dev := dwLoop(t, size, ss)
			l, err := disk.PlanLayout(size, ss, nil)
			if err != nil {
				t.Fatal(err)
			}
			install(t, dev, l)

			// Re-running on the installed disk is a no-op.
			parts, err := ReadGPT(dev, 0)
			if err != nil {
				t.Fatal(err)
			}
			if d := l.Compare(parts); !d.Matches() {
				t.Fatalf("after install the disk does not match the layout:\n%s", d)
			}
			if err := l.KeepInPlace(disk.LabelData, parts); err != nil {
				t.Errorf("data not keepable on an unchanged layout: %v", err)
			}

			rep, err := Wipe(dev, disk.WipeOptions{Discard: true})
			if err != nil {
				t.Fatalf("wipe: %v", err)
			}
			t.Logf("wipe: %+v", rep)
			if rep.Method != "zeroout" && rep.Method != "write" {
				t.Errorf("wipe method %q", rep.Method)
			}
			if rep.Partitions < len(l.Partitions) {
				t.Errorf("wipe cleared %d partitions, want >= %d", rep.Partitions, len(l.Partitions))
			}
			if out := dwWipefs(t, dev); out != "" {
				t.Errorf("wipefs -n after wipe:\n%s", out)
			}
			if kv := dwBlkid(t, dev, 0, 0); kv != nil {
				t.Errorf("blkid -p after wipe: %v", kv)
			}
			for _, p := range l.Partitions {
				if kv := dwBlkid(t, dev, p.Start, p.Size); kv != nil {
					t.Errorf("blkid -p inside old %s after wipe: %v", p.Name, kv)
				}
				if _, err := os.Stat(disk.PartitionPath(dev, p.Number)); err == nil {
					t.Errorf("%s still present after wipe", disk.PartitionPath(dev, p.Number))
				}
			}
			if _, err := ReadGPT(dev, 0); err == nil {
				t.Error("a GPT is still readable after wipe")
			}

			// Re-install over the wiped disk, with other sizes.
			l2, err := disk.PlanLayout(size, ss, map[string]int64{"swap": 0, "logging": 1024})
			if err != nil {
				t.Fatal(err)
			}
			install(t, dev, l2)
		})
	}
}

// install writes l to dev, formats every partition and checks the result.
func install(t *testing.T, dev string, l disk.Layout) {
	t.Helper()
	if err := WriteTable(dev, l); err != nil {
		t.Fatalf("write table: %v", err)
	}
	out := dwRun(t, "sgdisk", "-v", dev)
	if !strings.Contains(out, "No problems found") {
		t.Fatalf("sgdisk -v:\n%s", out)
	}
	for _, p := range l.Partitions {
		part := disk.PartitionPath(dev, p.Number)
		if _, err := os.Stat(part); err != nil {
			t.Fatalf("kernel does not show %s after WriteTable: %v", part, err)
		}
		label := p.Name
		if p.FS == disk.FSVfat {
			label = "NODE-ESP"
		}
		if err := MakeFS(part, p.FS, label, disk.MkfsOptions{}); err != nil {
			t.Fatalf("mkfs %s: %v", p.Name, err)
		}
		kv := dwBlkid(t, part, 0, 0)
		if kv["PART_ENTRY_NAME"] != p.Name || kv["PART_ENTRY_TYPE"] != p.TypeGUID || kv["PART_ENTRY_NUMBER"] != strconv.Itoa(p.Number) {
			t.Errorf("blkid -p %s: partition entry %v, want %s type %s", part, kv, p.Name, p.TypeGUID)
		}
		switch p.FS {
		case disk.FSRaw:
			if kv["TYPE"] != "" {
				t.Errorf("raw slot %s has TYPE %q", p.Name, kv["TYPE"])
			}
		case disk.FSVfat:
			if kv["TYPE"] != "vfat" || kv["VERSION"] != "FAT32" || kv["LABEL"] != "NODE-ESP" {
				t.Errorf("blkid -p %s: %v", part, kv)
			}
			dwRun(t, "fsck.vfat", "-n", part)
			if kernelHas("vfat") {
				dwWithMount(t, part, "vfat", func(dir string) {
					if err := os.WriteFile(filepath.Join(dir, "probe"), []byte("x"), 0o644); err != nil {
						t.Error(err)
					}
				})
			}
		case disk.FSExt4:
			if kv["TYPE"] != "ext4" || kv["LABEL"] != p.Name {
				t.Errorf("blkid -p %s: %v", part, kv)
			}
			dwRun(t, "e2fsck", "-fn", part)
		case disk.FSSwap:
			if kv["TYPE"] != "swap" || kv["LABEL"] != p.Name {
				t.Errorf("blkid -p %s: %v", part, kv)
			}
			if out := dwRun(t, "swaplabel", part); !strings.Contains(out, "LABEL: "+p.Name) {
				t.Errorf("swaplabel %s: %s", part, out)
			}
		}
	}
	if kernelHas("ext4") {
		cfg, _ := l.Find(disk.LabelConfig)
		dwWithMount(t, disk.PartitionPath(dev, cfg.Number), "ext4", func(dir string) {
			if err := os.WriteFile(filepath.Join(dir, "probe"), []byte("x"), 0o644); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestWriteTableRefusalLeavesDiskUnchanged checks that bad input writes
// nothing: a layout planned for another size or sector size, and a disk in
// use, leave every byte as it was.
func TestWriteTableRefusalLeavesDiskUnchanged(t *testing.T) {
	dwNeedTool(t, "mke2fs")
	const size = 256 << 20
	dev := dwLoop(t, size, 4096)
	dwRun(t, "mke2fs", "-q", "-t", "ext4", "-L", "foreign", dev)
	before := dwHash(t, dev)

	wrongSector, err := disk.PlanLayout(size, 512, map[string]int64{"boot": 260, "root": 256, "config": 16, "logging": 0, "swap": 0, "data": 0})
	if err == nil {
		t.Fatal("a 256 MiB disk should not fit the layout")
	}
	wrongSector = disk.Layout{SectorSize: 512, DiskSize: size, Partitions: []disk.PartSpec{{Number: 1, Name: "x", TypeGUID: disk.TypeLinuxData, Start: disk.MiB, Size: disk.MiB, FS: disk.FSRaw}}}
	if err := WriteTable(dev, wrongSector); err == nil || !strings.Contains(err.Error(), "4096-byte logical sectors") {
		t.Errorf("wrong sector size: %v", err)
	}
	wrongSize := disk.Layout{SectorSize: 4096, DiskSize: 2 * size, Partitions: wrongSector.Partitions}
	if err := WriteTable(dev, wrongSize); err == nil || !strings.Contains(err.Error(), "plan again") {
		t.Errorf("wrong size: %v", err)
	}
	if _, err := Wipe(dev, disk.WipeOptions{SectorSize: 512}); err == nil || !strings.Contains(err.Error(), "check which disk was meant") {
		t.Errorf("wipe with the wrong sector size: %v", err)
	}
	if err := MakeFS(dev, disk.FSExt4, "a-label-far-too-long", disk.MkfsOptions{}); err == nil {
		t.Error("mkfs with a 20-byte ext4 label: no error")
	}
	if err := MakeFS(dev, "ntfs", "x", disk.MkfsOptions{}); err == nil {
		t.Error("mkfs ntfs: no error")
	}
	// In use: a mounted filesystem makes the exclusive open fail.
	if kernelHas("ext4") {
		dir := t.TempDir()
		if err := unix.Mount(dev, dir, "ext4", unix.MS_RDONLY, ""); err != nil {
			t.Fatalf("mount: %v", err)
		}
		_, werr := Wipe(dev, disk.WipeOptions{})
		terr := WriteTable(dev, disk.Layout{SectorSize: 4096, DiskSize: size, Partitions: wrongSector.Partitions})
		if err := unix.Unmount(dir, 0); err != nil {
			t.Fatalf("umount: %v", err)
		}
		for _, err := range []error{werr, terr} {
			if err == nil || !strings.Contains(err.Error(), "unmount or stop it first") {
				t.Errorf("mounted disk: %v", err)
			}
		}
	}
	if after := dwHash(t, dev); after != before {
		t.Errorf("disk changed by refused attempts: %s -> %s", before, after)
	}
}
