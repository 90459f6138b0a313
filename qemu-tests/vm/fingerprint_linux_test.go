package vm

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFingerprintSeesEveryWrite: equal bytes give equal fingerprints, zeroes
// written into a hole included, and a changed byte or size changes it.
func TestFingerprintSeesEveryWrite(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, size int64, writes map[int64][]byte) string {
		p := filepath.Join(dir, name)
		if err := CreateDisk(p, size); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for off, b := range writes {
			if _, err := f.WriteAt(b, off); err != nil {
				t.Fatal(err)
			}
		}
		fp, err := Fingerprint(p)
		if err != nil {
			t.Fatal(err)
		}
		return fp
	}
	const gib = 1 << 30
	data := map[int64][]byte{4096: []byte("partition table"), 3 * gib: []byte("superblock")}
	base := mk("a.img", 4*gib, data)
	if got := mk("b.img", 4*gib, data); got != base {
		t.Errorf("same content, fingerprints %s and %s", got, base)
	}
	if got := mk("zero.img", 4*gib, map[int64][]byte{4096: []byte("partition table"), 3 * gib: []byte("superblock"), 2 * gib: make([]byte, 1<<20)}); got != base {
		t.Errorf("zeroes written into a hole: fingerprint changed, but the bytes are the same")
	}
	for name, writes := range map[string]map[int64][]byte{
		"byte.img":  {4096: []byte("partition tablE"), 3 * gib: []byte("superblock")},
		"moved.img": {8192: []byte("partition table"), 3 * gib: []byte("superblock")},
		"tail.img":  {4096: []byte("partition table"), 3 * gib: []byte("superblock"), 4*gib - 1: []byte("x")},
	} {
		if got := mk(name, 4*gib, writes); got == base {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	// An allocated, never written range (what mkfs's zeroing leaves) reads as zeroes.
	p := filepath.Join(dir, "fallocated.img")
	if err := CreateDisk(p, 4*gib); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, gib, 64<<20); err != nil {
		t.Logf("fallocate: %v (this filesystem cannot; the case is skipped)", err)
	}
	for off, b := range data {
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	if got, err := Fingerprint(p); err != nil || got != base {
		t.Errorf("an allocated range of zeroes: fingerprint %s (%v), want %s", got, err, base)
	}
	if got := mk("size.img", 4*gib+4096, data); got == base {
		t.Error("a larger disk with the same data: fingerprint unchanged")
	}
}
