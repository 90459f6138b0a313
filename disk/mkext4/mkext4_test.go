package mkext4

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func needTools(t *testing.T, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			t.Skipf("%s is not installed (e2fsprogs)", n)
		}
	}
}

var testUUID = [16]byte{0x6e, 0x6f, 0x64, 0x65, 0x69, 0x6e, 0x69, 0x74, 0x2d, 0x65, 0x78, 0x74, 0x34, 0x2d, 0x74, 0x31}

// sparse returns a sparse file of size bytes in the test's directory.
func sparse(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fs.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	return p
}

func format(t *testing.T, path string, size int64, o Options) Layout {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	l, err := Format(f, size, o)
	if err != nil {
		t.Fatalf("format %d bytes: %v", size, err)
	}
	return l
}

// dumpe2fs returns dumpe2fs -h's fields.
func dumpe2fs(t *testing.T, path string) map[string]string {
	t.Helper()
	out, err := exec.Command("dumpe2fs", "-h", path).Output()
	if err != nil {
		t.Fatalf("dumpe2fs -h %s: %v\n%s", path, err, out)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return kv
}

func e2fsckClean(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("e2fsck", "-fn", path).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
}

// TestFormatIsCleanAndLikeMke2fs formats sizes from the smallest to 1 TiB,
// across the cases of the layout (one group, a short last group that is
// kept, a last group that starts its own flex group, the journal outside
// group 0) and asks e2fsck -fn for the verdict. Up to 16 GiB, where mke2fs'
// journal is not larger than the cap, every count dumpe2fs shows is the
// one mke2fs gives the same size with the options nodeinit used to run it
// with; above, all but the journal size.
func TestFormatIsCleanAndLikeMke2fs(t *testing.T) {
	needTools(t, "e2fsck", "dumpe2fs", "mke2fs")
	const mib = 1 << 20
	for _, size := range []int64{
		MinSize,                   // one group, the smallest journal
		64 * mib,                  // node-config's default
		300 * mib,                 // three groups of mke2fs' "small" type
		1 << 30,                   // eight groups
		16*128*mib + 40*BlockSize, // 17 groups: the last is short and leads a flex group
		2<<30 + 12345678,          // a size that is not whole blocks
		8638 * mib,                // the demo's node-data
		17 << 30,                  // the journal in group 2
		1 << 40,                   // 8192 groups
	} {
		img := sparse(t, size)
		l := format(t, img, size, Options{Label: "node-data", UUID: testUUID, Now: time.Unix(1700000000, 0)})
		e2fsckClean(t, img)
		got := dumpe2fs(t, img)
		ref := sparse(t, size)
		if out, err := exec.Command("mke2fs", "-t", "ext4", "-F", "-q", "-b", "4096", "-L", "node-data", "-U", "6e6f6465-696e-6974-2d65-7874342d7431",
			"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", ref).CombinedOutput(); err != nil {
			t.Fatalf("mke2fs: %v\n%s", err, out)
		}
		want := dumpe2fs(t, ref)
		fields := []string{"Filesystem volume name", "Filesystem UUID", "Filesystem state", "Errors behavior", "Block count",
			"Inode count", "Inodes per group", "Blocks per group", "Reserved block count", "Inode size", "Required extra isize",
			"Desired extra isize", "Flex block group size", "Default mount options", "Filesystem flags", "Default directory hash",
			"Checksum type", "Journal inode", "Journal backup", "Group descriptor size", "Journal sequence", "Journal start", "First inode"}
		if want["Total journal blocks"] == strconv.Itoa(int(l.JournalBlocks)) {
			fields = append(fields, "Total journal blocks")
		} else if size < 16<<30 {
			t.Errorf("%d bytes: journal of %d blocks, mke2fs makes %s", size, l.JournalBlocks, want["Total journal blocks"])
		}
		for _, k := range fields {
			if got[k] != want[k] {
				t.Errorf("%d bytes: %s is %q, mke2fs gives %q", size, k, got[k], want[k])
			}
		}
		// Every feature of mke2fs' ext4 but resize_inode (see the package doc).
		wantFeatures := strings.ReplaceAll(want["Filesystem features"], "resize_inode ", "")
		if got["Filesystem features"] != wantFeatures {
			t.Errorf("%d bytes: features %q, want %q", size, got["Filesystem features"], wantFeatures)
		}
		if l.BytesWritten > 64<<20 {
			t.Errorf("%d bytes: wrote %d bytes; the lazy format should write tens of MiB at most", size, l.BytesWritten)
		}
		os.Remove(img)
		os.Remove(ref)
	}
}

// TestChecksumIsE2fsprogs checks the crc32c convention against a superblock
// mke2fs wrote: its stored checksum is checksum(~0, the first 1020 bytes).
func TestChecksumIsE2fsprogs(t *testing.T) {
	needTools(t, "mke2fs")
	img := sparse(t, 64<<20)
	if out, err := exec.Command("mke2fs", "-t", "ext4", "-F", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	sb := raw[1024:2048]
	if got, want := checksum(^uint32(0), sb[:0x3FC]), binary.LittleEndian.Uint32(sb[0x3FC:]); got != want {
		t.Fatalf("checksum of mke2fs' superblock %#x, stored %#x", got, want)
	}
}

// TestFormatRefusesWhatItCannotMake: too small, a long label; nothing is
// written for either.
func TestFormatRefusesWhatItCannotMake(t *testing.T) {
	for _, c := range []struct {
		size  int64
		label string
		want  string
	}{
		{MinSize - BlockSize, "x", "below the 8 MiB"},
		{64 << 20, "a-label-of-17-chr", "longer than 16 bytes"},
	} {
		var w recorder
		if _, err := Format(&w, c.size, Options{Label: c.label}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d bytes, label %q: %v, want %q", c.size, c.label, err, c.want)
		}
		if w.n != 0 {
			t.Errorf("%d bytes, label %q: %d writes before the refusal", c.size, c.label, w.n)
		}
	}
}

// TestFormatWritesWholeAlignedBlocksAndSuperblockLast: every write is whole
// 4 KiB blocks at aligned offsets (a 4Kn disk takes them), nothing is written
// twice, and the primary superblock's block is the last write, so an
// interrupted format leaves no filesystem that looks whole.
func TestFormatWritesWholeAlignedBlocksAndSuperblockLast(t *testing.T) {
	var w recorder
	if _, err := Format(&w, 5<<30, Options{Label: "x", UUID: testUUID}); err != nil {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, op := range w.ops {
		if op.off%BlockSize != 0 || op.n%BlockSize != 0 {
			t.Errorf("write of %d bytes at %d is not whole aligned blocks", op.n, op.off)
		}
		for b := op.off; b < op.off+int64(op.n); b += BlockSize {
			if seen[b] {
				t.Errorf("block %d written twice", b/BlockSize)
			}
			seen[b] = true
		}
	}
	if last := w.ops[len(w.ops)-1]; last.off != 0 {
		t.Errorf("the last write is at %d, want the primary superblock's block 0", last.off)
	}
	if !bytes.Equal(w.first1K, make([]byte, 1024)) {
		t.Error("the first 1 KiB (a boot sector's room) is not left zero")
	}
}

// recorder is an io.WriterAt that keeps the offsets and sizes written.
type recorder struct {
	n       int
	ops     []struct{ off, n int64 }
	first1K []byte
}

func (r *recorder) WriteAt(p []byte, off int64) (int, error) {
	r.n++
	r.ops = append(r.ops, struct{ off, n int64 }{off, int64(len(p))})
	if off == 0 {
		r.first1K = append([]byte(nil), p[:1024]...)
	}
	return len(p), nil
}

// TestGrowsUnmounted: resize2fs grows a filesystem Format made from 1 GiB to
// 200 GiB, which takes 25 descriptor blocks instead of 1 (with no
// resize_inode reserve it moves metadata to make room), and e2fsck -fn calls
// the result clean.
func TestGrowsUnmounted(t *testing.T) {
	needTools(t, "resize2fs", "e2fsck", "dumpe2fs")
	img := sparse(t, 1<<30)
	format(t, img, 1<<30, Options{Label: "node-data", UUID: testUUID})
	if err := os.Truncate(img, 200<<30); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("resize2fs", img).CombinedOutput(); err != nil {
		t.Fatalf("resize2fs: %v\n%s", err, out)
	}
	e2fsckClean(t, img)
	if got := dumpe2fs(t, img)["Block count"]; got != strconv.Itoa(200<<30/BlockSize) {
		t.Errorf("block count after the grow %s, want %d", got, 200<<30/BlockSize)
	}
}
