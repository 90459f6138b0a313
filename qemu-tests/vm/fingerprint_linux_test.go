package vm

import (
	"os"
	"path/filepath"
	"testing"
)

// TestFingerprintSeesEveryWrite: equal content gives equal fingerprints, and a
// changed byte, zeroes written into a hole, and a changed size each change it.
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
	for name, writes := range map[string]map[int64][]byte{
		"byte.img": {4096: []byte("partition tablE"), 3 * gib: []byte("superblock")},
		"zero.img": {4096: []byte("partition table"), 3 * gib: []byte("superblock"), 2 * gib: make([]byte, 4096)},
	} {
		if got := mk(name, 4*gib, writes); got == base {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	if got := mk("size.img", 4*gib+4096, data); got == base {
		t.Error("a larger disk with the same data: fingerprint unchanged")
	}
}
