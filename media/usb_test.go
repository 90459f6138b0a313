package media

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// fakeSys makes a sysfs with one block device and returns the sysfs root.
func fakeSys(t *testing.T, name string, attrs map[string]string) string {
	t.Helper()
	sys := t.TempDir()
	dir := filepath.Join(sys, "class", "block", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for k, v := range attrs {
		if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return sys
}

func TestCheckUSBTarget(t *testing.T) {
	// A file, or a path that does not exist yet, is always fine.
	if err := CheckUSBTarget(filepath.Join(t.TempDir(), "stick.img"), USBOptions{}); err != nil {
		t.Fatal(err)
	}
	// /dev/null is a character device: refused.
	if err := CheckUSBTarget("/dev/null", USBOptions{}); err == nil || !strings.Contains(err.Error(), "not a block device") {
		t.Fatalf("char device: %v", err)
	}
	// The block devices below are faked in sysfs; /dev/loop0 exists as a node on Linux.
	dev := "/dev/loop0"
	if st, err := os.Stat(dev); err != nil || st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		t.Skip("needs the block device node /dev/loop0")
	}
	mounts := filepath.Join(t.TempDir(), "mounts")
	os.WriteFile(mounts, []byte("/dev/sda1 / ext4 rw 0 0\n"), 0o644)
	for _, tc := range []struct {
		attrs  map[string]string
		mounts string
		force  bool
		want   string
	}{
		{map[string]string{"removable": "0\n"}, "", false, "neither removable nor on USB"},
		{map[string]string{"removable": "0\n"}, "", true, ""},
		{map[string]string{"removable": "1\n"}, "", false, ""},
		{map[string]string{"removable": "1\n", "partition": "1\n"}, "", false, "is a partition"},
		{map[string]string{"removable": "1\n"}, "/dev/loop0p1 /mnt vfat rw 0 0\n", true, "mounted filesystem (/dev/loop0p1 on /mnt)"},
	} {
		os.WriteFile(mounts, []byte("/dev/sda1 / ext4 rw 0 0\n"+tc.mounts), 0o644)
		err := CheckUSBTarget(dev, USBOptions{Force: tc.force, SysRoot: fakeSys(t, "loop0", tc.attrs), ProcMounts: mounts})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v force=%v: %v", tc.attrs, tc.force, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "hint")):
			t.Errorf("%v force=%v: %v, want %q with a hint", tc.attrs, tc.force, err, tc.want)
		}
	}
}

// TestWriteUSBToLoopDevice writes the image to a real block device (a loop device over a
// sparse file, standing in for a stick) and checks it byte for byte against a file build.
func TestWriteUSBToLoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a loop device")
	}
	sl := hostSyslinux(t)
	needTool(t, "losetup", "blkid")
	backing := filepath.Join(t.TempDir(), "stick.img")
	if err := os.WriteFile(backing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(backing, 256<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "-f", "--show", backing).Output()
	if err != nil {
		t.Fatalf("losetup: %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })

	iso := ISOOptions{Bundle: isoFakeBundle(t), Syslinux: sl, Menu: MenuOptions{Unattended: "nvme"}}
	if _, err := WriteUSB(context.Background(), loop, iso, USBOptions{}); err == nil || !strings.Contains(err.Error(), "neither removable nor on USB") {
		t.Fatalf("a loop device (not removable) was accepted without --force: %v", err)
	}
	res, err := WriteUSB(context.Background(), loop, iso, USBOptions{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	// The stick holds the image: the MBR with its EFI partition, the El Torito entries
	// (xorriso reads them from the device) and the bundle's files (go-diskfs reads them).
	f, err := os.Open(loop)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mbr := make([]byte, 512)
	if _, err := io.ReadFull(f, mbr); err != nil {
		t.Fatal(err)
	}
	if mbr[450] != 0xef || mbr[510] != 0x55 || binary.LittleEndian.Uint32(mbr[454:]) != res.EFIImageLBA*4 {
		t.Errorf("MBR on the stick: partition % x", mbr[446:462])
	}
	et, err := exec.Command("xorriso", "-indev", "stdio:"+loop, "-report_el_torito", "plain").CombinedOutput()
	if err != nil || !regexpMatch(`El Torito boot img :\s+2\s+UEFI`, et) {
		t.Errorf("xorriso on the stick: %v\n%s", err, et)
	}
	isofs, err := iso9660.Read(file.New(f, true), res.Size, 0, 2048)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := isofs.ReadFile("manifest.json"); err != nil || !bytes.Contains(m, []byte("demo-node")) {
		t.Errorf("manifest.json on the stick: %v %q", err, m)
	}
	blk, err := exec.Command("blkid", "-p", "-o", "export", loop).CombinedOutput()
	if err != nil || !strings.Contains(string(blk), "LABEL=NODEINIT\n") {
		t.Fatalf("blkid on the stick: %v\n%s", err, blk)
	}
}
