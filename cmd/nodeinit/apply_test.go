package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/operr"
)

// TestApplyDiskNames resolves --disks entries by kernel name and by serial on a fake
// sysfs tree (an NVMe disk and a USB stick), and refuses an entry no disk has, listing
// the disks there are.
func TestApplyDiskNames(t *testing.T) {
	root := diskio.Root{Dir: filepath.Join("..", "..", "disk", "diskio", "testdata", "sysfs", "usb-nvme")}
	got, err := diskNames(root, "4C530001220528, nvme0n1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"sdb", "nvme0n1"}; !slices.Equal(got, want) {
		t.Errorf("--disks by serial and name: got %v, want %v", got, want)
	}
	if got, err := diskNames(root, ""); err != nil || got != nil {
		t.Errorf("no --disks: got %v, %v; want every disk (nil)", got, err)
	}
	_, err = diskNames(root, "NOSUCHSERIAL")
	if err == nil || !strings.Contains(err.Error(), `"NOSUCHSERIAL"`) {
		t.Fatalf("an unknown serial: got %v, want an error naming it", err)
	}
	if fix := operr.Describe(err).Fix; !strings.Contains(fix, "nvme0n1 (serial S5GXNF0R123456)") || !strings.Contains(fix, "sdb (serial 4C530001220528)") {
		t.Errorf("the fix does not list the disks there are: %q", fix)
	}
}
