package boot

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/nodeinit/nodeinit/device"
)

// countingBlock counts what reaches the device: bytes written inside [lo, hi),
// and reads there.
type countingBlock struct {
	device.Block
	lo, hi              int64
	regionWritten       int64
	regionReads, writes int
	failWrites          bool
}

func (c *countingBlock) WriteAt(p []byte, off int64) (int, error) {
	if c.failWrites {
		return 0, errors.New("injected write error")
	}
	c.writes++
	if lo, hi := max(off, c.lo), min(off+int64(len(p)), c.hi); lo < hi {
		c.regionWritten += hi - lo
	}
	return c.Block.WriteAt(p, off)
}

func (c *countingBlock) ReadAt(p []byte, off int64) (int, error) {
	if max(off, c.lo) < min(off+int64(len(p)), c.hi) {
		c.regionReads++
	}
	return c.Block.ReadAt(p, off)
}

// fatRegionOf is where both FAT copies of the image behind b lie.
func fatRegionOf(t *testing.T, b device.Block) fatGeometry {
	t.Helper()
	g, err := (&FAT{dev: b}).geometry()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestFATWritesOnlyTheChangedSectors: installing a slot's kernel, initrd and
// manifest on a fresh 512 MiB ESP writes a few sectors of each FAT copy, not the
// copies whole as go-diskfs does for every allocation, and no FAT read reaches
// the device after the open. fsck.vfat then finds the filesystem clean, and a
// fresh open reads back what was written.
func TestFATWritesOnlyTheChangedSectors(t *testing.T) {
	img, b := newFATImage(t, 512<<20)
	g := fatRegionOf(t, b)
	fatBytes := g.fats * g.sectorsPerFAT * g.bytesPerSector
	c := &countingBlock{Block: b, lo: g.fatOffset(0, 0), hi: g.fatOffset(0, 0) + fatBytes}
	esp, err := OpenFAT(c)
	if err != nil {
		t.Fatal(err)
	}
	c.regionReads = 0
	dir := t.TempDir()
	kernel := bytes.Repeat([]byte("kernel--"), 3<<17) // 3 MiB: 768 clusters
	initrd := bytes.Repeat([]byte("initrd--"), 1<<17)
	for name, data := range map[string][]byte{"k": kernel, "i": initrd, "m": []byte(`{"version":"1.0"}`)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := InstallSlot(esp, "a", filepath.Join(dir, "k"), filepath.Join(dir, "i"), filepath.Join(dir, "m")); err != nil {
		t.Fatal(err)
	}
	// 1 MiB of FAT entries for 1 MiB + 3 MiB of clusters is 4 KiB per copy
	// (8 sectors); the directories and the manifest add a sector or two each,
	// and every file goes through a temporary that is renamed. go-diskfs alone
	// writes both copies whole each time: over 1 MiB per file.
	if limit := int64(64 * g.bytesPerSector); c.regionWritten > limit {
		t.Errorf("%d bytes of FAT written for three files, want at most %d (one whole copy is %d)",
			c.regionWritten, limit, fatBytes/g.fats)
	}
	t.Logf("FAT bytes written for the slot's three files: %d (both copies whole: %d)", c.regionWritten, fatBytes)
	if c.regionWritten == 0 {
		t.Error("no FAT sector written: the files were not allocated")
	}
	if c.regionReads != 0 {
		t.Errorf("%d reads of the FAT region reached the device after the open", c.regionReads)
	}
	if out, err := exec.Command("fsck.vfat", "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.vfat -n: %v\n%s", err, out)
	}
	again, err := OpenFAT(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := again.ReadFile(SlotDir("a") + "/" + KernelName)
	if err != nil || !bytes.Equal(got, kernel) {
		t.Fatalf("kernel read back: %d bytes, %v; want the %d written", len(got), err, len(kernel))
	}
}

// TestFATShadowAfterAWriteError: once a write to the FAT region fails, what the
// device holds there is unknown, so the next write of the same bytes reaches the
// device instead of being skipped as unchanged.
func TestFATShadowAfterAWriteError(t *testing.T) {
	_, b := newFATImage(t, 64<<20)
	g := fatRegionOf(t, b)
	c := &countingBlock{Block: b}
	sb, err := shadowFAT(c, g)
	if err != nil {
		t.Fatal(err)
	}
	sector := make([]byte, g.bytesPerSector)
	at := g.fatOffset(0, 0) + g.bytesPerSector // the second sector of the first FAT: free entries
	if _, err := sb.ReadAt(sector, at); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.WriteAt(sector, at); err != nil || c.writes != 0 {
		t.Fatalf("rewriting unchanged bytes: %v, %d writes reached the device, want none", err, c.writes)
	}
	changed := bytes.Repeat([]byte{0xff}, len(sector))
	c.failWrites = true
	if _, err := sb.WriteAt(changed, at); err == nil {
		t.Fatal("the injected write error was not returned")
	}
	c.failWrites = false
	if _, err := sb.WriteAt(sector, at); err != nil || c.writes != 1 {
		t.Fatalf("after a failed write: %v, %d writes reached the device, want 1", err, c.writes)
	}
}
