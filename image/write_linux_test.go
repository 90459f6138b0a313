package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// directTarget opens a new file in a temp directory the way WriteFile opens
// a target, and skips the test where that filesystem refuses O_DIRECT (the
// overlapping writes only happen with O_DIRECT).
func directTarget(t *testing.T) (*os.File, string) {
	t.Helper()
	p := regularTarget(t, 0)
	f, direct, err := openTarget(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if !direct {
		t.Skipf("%s refuses O_DIRECT", filepath.Dir(p))
	}
	return f, p
}

// TestRunDirectOverlapped writes the rootfs with O_DIRECT, where all but the
// first chunk go out writeDepth at a time, and checks the target holds
// exactly the source bytes.
func TestRunDirectOverlapped(t *testing.T) {
	dir, entry := signedRootfs(t)
	src := openRootfs(t, dir)
	dst, path := directTarget(t)
	w := &streamWriter{dst: dst, direct: true, name: RootfsName, total: entry.Size}
	n, mismatch, err := w.run(context.Background(), src, entry)
	if err != nil || mismatch != "" || n != entry.Size {
		t.Fatalf("run = %d, %q, %v; want %d bytes, no mismatch", n, mismatch, err, entry.Size)
	}
	want, _ := os.ReadFile(filepath.Join(dir, RootfsName))
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
		t.Fatalf("target differs from the source (%d vs %d bytes)", len(got), len(want))
	}
}

// TestRunWriteErrorInFlight makes the third chunk's write fail (the file
// size limit stops it with EFBIG) while it is one of the overlapped writes:
// run returns that error with the target's name, and nothing lands past it.
func TestRunWriteErrorInFlight(t *testing.T) {
	dir, entry := signedRootfs(t)
	src := openRootfs(t, dir)
	dst, path := directTarget(t)

	// The Go runtime ignores SIGXFSZ, so the write past the limit fails with
	// EFBIG. The limit is per process: restore it before anything else writes.
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limit := unix.Rlimit{Cur: uint64(2 * entry.ChunkSize), Max: old.Max}
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &limit); err != nil {
		t.Fatal(err)
	}
	w := &streamWriter{dst: dst, direct: true, name: RootfsName, total: entry.Size}
	_, _, err := w.run(context.Background(), src, entry)
	if rerr := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); rerr != nil {
		t.Fatal(rerr)
	}
	if !errors.Is(err, unix.EFBIG) || !bytes.Contains([]byte(err.Error()), []byte(path)) {
		t.Fatalf("run = %v, want EFBIG naming %s", err, path)
	}
	if st, _ := os.Stat(path); st.Size() > 2*entry.ChunkSize {
		t.Fatalf("target has %d bytes, want at most %d", st.Size(), 2*entry.ChunkSize)
	}
}
