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
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/internal/testloop"
	"golang.org/x/sys/unix"
)

// TestCheckUSBTarget judges devices of disk's fake sysfs trees: a USB stick beside an NVMe
// disk, and disks that are mounted, under md and swapping. The targets are block device
// nodes made in a temp dir (never opened) with the names of the fake disks.
func TestCheckUSBTarget(t *testing.T) {
	// A file, or a path that does not exist yet, is always fine.
	if err := CheckUSBTarget(filepath.Join(t.TempDir(), "stick.img"), USBOptions{}); err != nil {
		t.Fatal(err)
	}
	// /dev/null is a character device: refused.
	if err := CheckUSBTarget("/dev/null", USBOptions{}); err == nil || !strings.Contains(err.Error(), "not a block device") {
		t.Fatalf("char device: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to make block device nodes")
	}
	nodes := t.TempDir()
	for _, tc := range []struct {
		tree, name string
		force      bool
		want       string
	}{
		{"usb-nvme", "sdb", false, ""},
		{"usb-nvme", "nvme0n1", false, "neither removable nor on USB (nvme)"},
		{"usb-nvme", "nvme0n1", true, ""},
		{"in-use", "sda", true, "mounted filesystem (on /srv/my data)"},
		{"in-use", "sda1", true, "is a partition (hint: write the image to the whole disk, e.g. /dev/sda)"},
		{"in-use", "sdb", true, "in use (holders [md127]"},
		{"in-use", "sdc", true, "swap true"},
		{"in-use", "sdz", true, "the kernel lists no block device sdz"},
	} {
		node := filepath.Join(nodes, tc.name)
		if _, err := os.Stat(node); err != nil {
			if err := unix.Mknod(node, unix.S_IFBLK|0o600, int(unix.Mkdev(7, 255))); err != nil {
				t.Fatal(err)
			}
		}
		root := diskio.Root{Dir: filepath.Join("..", "disk", "diskio", "testdata", "sysfs", tc.tree)}
		err := CheckUSBTarget(node, USBOptions{Force: tc.force, Root: root})
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s/%s force=%v: %v", tc.tree, tc.name, tc.force, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "hint")):
			t.Errorf("%s/%s force=%v: %v, want %q with a hint", tc.tree, tc.name, tc.force, err, tc.want)
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
	loop := testloop.Attach(t, backing).Dev

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
