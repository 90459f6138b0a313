package disk

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
)

func TestSwapHeader(t *testing.T) {
	id := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	b, err := swapHeader(1<<30, 4096, "node-swap", id)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 4096 || string(b[4096-10:]) != "SWAPSPACE2" {
		t.Fatalf("magic %q", b[4096-10:])
	}
	le := binary.LittleEndian
	if v, last, bad := le.Uint32(b[1024:]), le.Uint32(b[1028:]), le.Uint32(b[1032:]); v != 1 || last != (1<<30)/4096-1 || bad != 0 {
		t.Errorf("version %d last_page %d nr_badpages %d", v, last, bad)
	}
	if !bytes.Equal(b[1036:1052], id[:]) || string(bytes.TrimRight(b[1052:1068], "\x00")) != "node-swap" {
		t.Errorf("uuid/label % x / %q", b[1036:1052], b[1052:1068])
	}
	for _, c := range []struct {
		size  int64
		page  int
		label string
		want  string
	}{
		{9 * 4096, 4096, "x", "minimum of 10 pages"},
		{1 << 30, 4096, "a-label-longer-than-16", "longer than 16"},
		{1 << 30, 1000, "x", "page size"},
	} {
		if _, err := swapHeader(c.size, c.page, c.label, id); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("swapHeader(%d, %d, %q) error %v, want %q", c.size, c.page, c.label, err, c.want)
		}
	}
}

// TestMakeFSImage formats image files (no root needed) and asks the fsck
// tools for the verdict.
func TestMakeFSImage(t *testing.T) {
	dwNeedTool(t, "fsck.vfat", "e2fsck", "mke2fs", "blkid")
	for _, c := range []struct {
		fs, label, fsck string
		size            int64
		sector          int
	}{
		{FSVfat, "NODE-ESP", "fsck.vfat", 512 * MiB, 512},
		{FSVfat, "NODE-ESP", "fsck.vfat", 512 * MiB, 4096},
		{FSExt4, "node-data", "e2fsck", 256 * MiB, 512},
		{FSSwap, "node-swap", "", 64 * MiB, 512},
	} {
		img := dwSparse(t, c.size)
		if err := MakeFS(img, c.fs, c.label, MkfsOptions{SectorSize: c.sector, UUID: "0b1d5a2e-4c6f-4a8e-9d3b-2f7c1e5a9b00"}); err != nil {
			t.Fatalf("%s: %v", c.fs, err)
		}
		kv := dwBlkid(t, img, 0, 0)
		wantType := map[string]string{FSVfat: "vfat", FSExt4: "ext4", FSSwap: "swap"}[c.fs]
		if kv["TYPE"] != wantType || kv["LABEL"] != c.label {
			t.Errorf("%s/%d: blkid -p %v", c.fs, c.sector, kv)
		}
		if c.fs != FSVfat && kv["UUID"] != "0b1d5a2e-4c6f-4a8e-9d3b-2f7c1e5a9b00" {
			t.Errorf("%s: UUID %q", c.fs, kv["UUID"])
		}
		if c.fs == FSVfat && kv["LOGICAL_SECTOR_SIZE"] != "" && kv["LOGICAL_SECTOR_SIZE"] != strconv.Itoa(c.sector) {
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
