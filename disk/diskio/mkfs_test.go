package diskio

import (
	"strconv"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
)

// TestMakeFSImage formats image files (no root needed) and asks the fsck
// tools for the verdict.
func TestMakeFSImage(t *testing.T) {
	dwNeedTool(t, "fsck.vfat", "e2fsck", "mke2fs", "blkid")
	for _, c := range []struct {
		fs, label, fsck string
		size            int64
		sector          int
	}{
		{disk.FSVfat, "NODE-ESP", "fsck.vfat", 512 * disk.MiB, 512},
		{disk.FSVfat, "NODE-ESP", "fsck.vfat", 512 * disk.MiB, 4096},
		{disk.FSExt4, "node-data", "e2fsck", 256 * disk.MiB, 512},
		{disk.FSSwap, "node-swap", "", 64 * disk.MiB, 512},
	} {
		img := dwSparse(t, c.size)
		if err := MakeFS(img, c.fs, c.label, disk.MkfsOptions{SectorSize: c.sector, UUID: "0b1d5a2e-4c6f-4a8e-9d3b-2f7c1e5a9b00"}); err != nil {
			t.Fatalf("%s: %v", c.fs, err)
		}
		kv := dwBlkid(t, img, 0, 0)
		wantType := map[string]string{disk.FSVfat: "vfat", disk.FSExt4: "ext4", disk.FSSwap: "swap"}[c.fs]
		if kv["TYPE"] != wantType || kv["LABEL"] != c.label {
			t.Errorf("%s/%d: blkid -p %v", c.fs, c.sector, kv)
		}
		if c.fs != disk.FSVfat && kv["UUID"] != "0b1d5a2e-4c6f-4a8e-9d3b-2f7c1e5a9b00" {
			t.Errorf("%s: UUID %q", c.fs, kv["UUID"])
		}
		if c.fs == disk.FSVfat && kv["LOGICAL_SECTOR_SIZE"] != "" && kv["LOGICAL_SECTOR_SIZE"] != strconv.Itoa(c.sector) {
			t.Errorf("vfat sector size %s, want %d", kv["LOGICAL_SECTOR_SIZE"], c.sector)
		}
		switch c.fsck {
		case "fsck.vfat":
			dwRun(t, "fsck.vfat", "-n", img)
		case "e2fsck":
			dwRun(t, "e2fsck", "-fn", img)
		}
	}
}
