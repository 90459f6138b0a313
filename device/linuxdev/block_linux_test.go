package linuxdev

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/internal/testloop"
)

func imageFile(t *testing.T, size int64, fill byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, bytes.Repeat([]byte{fill}, int(size)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImageFileBlock(t *testing.T) {
	p := imageFile(t, 1<<20, 0xAA)
	var m Machine
	b, err := m.OpenBlock(p, 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.IsBlockDevice() || b.Size() != 1<<20 || b.LogicalSectorSize() != 4096 || b.PhysicalSectorSize() != 4096 {
		t.Errorf("image: block=%v size=%d sectors=%d/%d", b.IsBlockDevice(), b.Size(), b.LogicalSectorSize(), b.PhysicalSectorSize())
	}
	if err := b.Discard(0, 4096, false); !errors.Is(err, device.ErrUnsupported) {
		t.Errorf("discard on an image = %v, want ErrUnsupported", err)
	}
	if err := b.ZeroRange(4096, 8192); err != nil {
		t.Fatal(err)
	}
	if err := b.ZeroRange(100, 4096); err == nil {
		t.Error("misaligned zero range accepted")
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	if !bytes.Equal(got[4096:12288], make([]byte, 8192)) || got[4095] != 0xAA || got[12288] != 0xAA {
		t.Error("ZeroRange did not zero exactly [4096, 12288)")
	}
	if len(got) != 1<<20 {
		t.Errorf("ZeroRange changed the image size to %d", len(got))
	}
	ro, err := m.OpenBlockReadOnly(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if ro.LogicalSectorSize() != 512 {
		t.Errorf("default image sector size = %d, want 512", ro.LogicalSectorSize())
	}
	if _, err := ro.WriteAt([]byte{1}, 0); err == nil {
		t.Error("a read-only open accepted a write")
	}
}

// TestLoopDevice checks the ioctls on a loop device made for the test:
// sizes, exclusivity, BLKPG partitions and their nodes, discard and zeroing.
func TestLoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a loop device")
	}
	img := imageFile(t, 32<<20, 0x55)
	loop := testloop.Attach(t, img, "-P").Dev

	var m Machine
	b, err := m.OpenBlock(loop, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !b.IsBlockDevice() || b.Size() != 32<<20 || b.LogicalSectorSize() != 512 {
		t.Errorf("%s: block=%v size=%d sector=%d", loop, b.IsBlockDevice(), b.Size(), b.LogicalSectorSize())
	}
	if second, err := m.OpenBlock(loop, 0); err == nil {
		second.Close()
		t.Error("a second exclusive open succeeded")
	}
	if err := b.ZeroRange(1<<20, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := b.Discard(4<<20, 1<<20, false); err != nil && !errors.Is(err, device.ErrUnsupported) {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	got, _ := os.ReadFile(img)
	if !bytes.Equal(got[1<<20:2<<20], make([]byte, 1<<20)) || got[2<<20] != 0x55 {
		t.Error("BLKZEROOUT did not zero exactly [1 MiB, 2 MiB)")
	}

	parts := []device.Partition{{Number: 1, StartByte: 1 << 20, SizeBytes: 8 << 20}, {Number: 2, StartByte: 9 << 20, SizeBytes: 8 << 20}}
	if err := m.SetPartitions(loop, parts); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitPartitions(loop, parts); err != nil {
		t.Fatal(err)
	}
	p2, err := m.OpenBlockReadOnly(loop+"p2", 0)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Size() != 8<<20 {
		t.Errorf("partition 2 is %d bytes, want 8 MiB", p2.Size())
	}
	p2.Close()
	// Grow 2, drop 1: only the kernel's view changes.
	parts = []device.Partition{{Number: 2, StartByte: 9 << 20, SizeBytes: 16 << 20}}
	if err := m.SetPartitions(loop, parts); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/block", filepath.Base(loop)+"p1")); err == nil {
		t.Error("partition 1 is still in sysfs")
	}
	if err := m.SetPartitions(loop, nil); err != nil {
		t.Fatal(err)
	}
}
