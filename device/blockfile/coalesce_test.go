package blockfile

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/nodeinit/nodeinit/device"
)

// logBlock is a device.Block over a temporary file that logs each operation.
type logBlock struct {
	*os.File
	size int64
	ops  []string
}

func (b *logBlock) WriteAt(p []byte, off int64) (int, error) {
	b.ops = append(b.ops, fmt.Sprintf("write %d+%d", off, len(p)))
	return b.File.WriteAt(p, off)
}

func (b *logBlock) ReadAt(p []byte, off int64) (int, error) {
	b.ops = append(b.ops, fmt.Sprintf("read %d+%d", off, len(p)))
	return b.File.ReadAt(p, off)
}
func (b *logBlock) Size() int64             { return b.size }
func (b *logBlock) LogicalSectorSize() int  { return 512 }
func (b *logBlock) PhysicalSectorSize() int { return 512 }
func (b *logBlock) IsBlockDevice() bool     { return false }
func (b *logBlock) Discard(off, n int64, _ bool) error {
	b.ops = append(b.ops, fmt.Sprintf("discard %d+%d", off, n))
	return device.ErrUnsupported
}
func (b *logBlock) ZeroRange(off, n int64) error {
	b.ops = append(b.ops, fmt.Sprintf("zero %d+%d", off, n))
	_, err := b.File.WriteAt(make([]byte, n), off)
	return err
}
func (b *logBlock) Flush() error { b.ops = append(b.ops, "flush"); return nil }
func (b *logBlock) Path() string { return b.Name() }

func newLogBlock(t *testing.T, size int64) *logBlock {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return &logBlock{File: f, size: size}
}

// TestCoalesceMergesOnlyContiguousWrites: contiguous writes reach the device as
// one, and every other operation writes the pending bytes out before it runs.
func TestCoalesceMergesOnlyContiguousWrites(t *testing.T) {
	b := newLogBlock(t, 1<<20)
	c := Coalesce(b, 2048)
	sector := bytes.Repeat([]byte{0xab}, 512)
	must := func(_ int, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.WriteAt(sector, 0))
	must(c.WriteAt(sector, 512))
	must(c.WriteAt(sector, 1024))
	if len(b.ops) != 0 {
		t.Fatalf("contiguous writes reached the device before anything asked: %v", b.ops)
	}
	must(c.WriteAt(sector[:4], 8192)) // elsewhere: the three go out as one first
	must(c.ReadAt(make([]byte, 4), 8192))
	must(c.WriteAt(sector, 4096))
	must(c.WriteAt(sector, 4608))
	must(c.WriteAt(sector, 5120))
	must(c.WriteAt(sector, 5632)) // 2048 bytes pending: the limit
	must(c.WriteAt(sector, 6144)) // over the limit: the 2048 go out first
	if err := c.ZeroRange(0, 512); err != nil {
		t.Fatal(err)
	}
	must(c.WriteAt(sector, 512))
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"write 0+1536", "write 8192+4", "read 8192+4",
		"write 4096+2048", "write 6144+512", "zero 0+512",
		"write 512+512", "flush",
	}
	if fmt.Sprint(b.ops) != fmt.Sprint(want) {
		t.Errorf("device saw\n %v\nwant\n %v", b.ops, want)
	}
}

// TestCoalesceSameBytesAsDirect: random writes, reads and flushes through
// Coalesce leave the same bytes as the same calls made directly, and every read
// sees what was written before it.
func TestCoalesceSameBytesAsDirect(t *testing.T) {
	const size = 256 << 10
	direct, merged := newLogBlock(t, size), newLogBlock(t, size)
	c := Coalesce(merged, 8192)
	r := rand.New(rand.NewPCG(1, 2))
	next := int64(0)
	for i := range 5000 {
		off := next
		if r.IntN(4) == 0 {
			off = r.Int64N(size - 4096)
		}
		p := make([]byte, 1+r.IntN(4096))
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		if _, err := direct.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		if _, err := c.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
		next = off + int64(len(p))
		if next+4096 > size {
			next = 0
		}
		if i%97 == 0 {
			at := r.Int64N(size - 512)
			a, m := make([]byte, 512), make([]byte, 512)
			direct.ReadAt(a, at)
			if _, err := c.ReadAt(m, at); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, m) {
				t.Fatalf("read at %d after %d writes differs", at, i)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(direct.Name())
	m, _ := os.ReadFile(merged.Name())
	if !bytes.Equal(a, m) {
		t.Fatal("the coalesced file differs from the direct one")
	}
	writes := 0
	for _, op := range merged.ops {
		if op[:5] == "write" {
			writes++
		}
	}
	if writes >= 5000 {
		t.Errorf("%d device writes for 5000 calls: nothing was merged", writes)
	}
	t.Logf("5000 writes reached the device as %d", writes)
}

// failingBlock refuses every write, as a disk that went away does.
type failingBlock struct{ *logBlock }

var errGone = errors.New("input/output error")

func (b *failingBlock) WriteAt(p []byte, off int64) (int, error) {
	b.ops = append(b.ops, fmt.Sprintf("write %d+%d", off, len(p)))
	return 0, errGone
}

// TestCoalesceReportsAMergedWriteThatFailed: a write held back is reported by the
// call that writes it out (here the Flush that ends every FAT change), the flush
// itself is not attempted, and the failed bytes are not written again later.
func TestCoalesceReportsAMergedWriteThatFailed(t *testing.T) {
	b := &failingBlock{newLogBlock(t, 1<<20)}
	c := Coalesce(b, 4096)
	if _, err := c.WriteAt(make([]byte, 512), 0); err != nil {
		t.Fatalf("a held-back write failed at once: %v", err)
	}
	if err := c.Flush(); !errors.Is(err, errGone) {
		t.Fatalf("Flush = %v, want the write's error", err)
	}
	if err := c.Flush(); err != nil {
		t.Fatalf("second Flush = %v: the failed bytes were kept", err)
	}
	want := []string{"write 0+512", "flush"}
	if fmt.Sprint(b.ops) != fmt.Sprint(want) {
		t.Errorf("device saw %v, want %v", b.ops, want)
	}
}
