package image

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// streamOnly hides ReadAt, so run takes the single-reader path an HTTP
// source takes.
type streamOnly struct{ io.Reader }

// failingFile is a regular file whose reads at or after failAt fail with EIO.
type failingFile struct {
	*os.File
	failAt int64
}

func (f failingFile) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.failAt {
		return 0, &os.PathError{Op: "read", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.ReadAt(p, off)
}

// TestRunBothReadPaths writes the same rootfs through the parallel pread
// path (a file) and the single-reader path (a stream) and checks that each
// target holds exactly the source bytes.
func TestRunBothReadPaths(t *testing.T) {
	dir, entry := signedRootfs(t)
	want, err := os.ReadFile(filepath.Join(dir, RootfsName))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		source func(*os.File) io.Reader
	}{
		{"pread", func(f *os.File) io.Reader { return f }},
		{"stream", func(f *os.File) io.Reader { return streamOnly{f} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := regularTarget(t, 0)
			src := openRootfs(t, dir)
			w := &streamWriter{dst: mustOpenFile(t, dst), name: RootfsName, total: entry.Size}
			n, mismatch, err := w.run(context.Background(), tc.source(src), entry)
			if err != nil || mismatch != "" || n != entry.Size {
				t.Fatalf("run = %d, %q, %v; want %d bytes, no mismatch", n, mismatch, err, entry.Size)
			}
			if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
				t.Fatalf("target differs from the source (%d vs %d bytes)", len(got), len(want))
			}
		})
	}
}

// TestRunReadErrorStops makes the second chunk unreadable: run reports the
// I/O error with the file's name and writes nothing at or after that chunk.
func TestRunReadErrorStops(t *testing.T) {
	dir, entry := signedRootfs(t)
	src := openRootfs(t, dir)
	dst := regularTarget(t, 0)
	w := &streamWriter{dst: mustOpenFile(t, dst), name: RootfsName, total: entry.Size}
	_, _, err := w.run(context.Background(), failingFile{src, entry.ChunkSize}, entry)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("run = %v, want an error wrapping EIO", err)
	}
	if st, _ := os.Stat(dst); st.Size() > entry.ChunkSize {
		t.Fatalf("target has %d bytes, want nothing past the first chunk (%d)", st.Size(), entry.ChunkSize)
	}
}

// TestRunCorruptChunkNamed flips a byte in the last chunk of the source: run
// writes, then names that chunk as the one that differs, with BLAKE3 chunk
// digests (what Build writes) and with SHA-256 ones (older manifests).
func TestRunCorruptChunkNamed(t *testing.T) {
	dir, entry := signedRootfs(t)
	if entry.ChunkHash != ChunkBLAKE3 {
		t.Fatalf("Build wrote chunk_hash %q, want %q", entry.ChunkHash, ChunkBLAKE3)
	}
	path := filepath.Join(dir, RootfsName)
	data, _ := os.ReadFile(path)
	legacy := entry
	legacy.ChunkHash, legacy.Chunks = "", nil
	for off := int64(0); off < entry.Size; off += entry.ChunkSize {
		legacy.Chunks = append(legacy.Chunks, chunkDigest(ChunkSHA256, data[off:min(off+entry.ChunkSize, entry.Size)]))
	}
	data[len(data)-1] ^= 0xff
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]File{"blake3": entry, "sha256-legacy": legacy} {
		t.Run(name, func(t *testing.T) {
			src := openRootfs(t, dir)
			w := &streamWriter{dst: mustOpenFile(t, regularTarget(t, 0)), name: RootfsName, total: f.Size}
			_, mismatch, err := w.run(context.Background(), src, f)
			want := "chunk 2 "
			if err != nil || !bytes.HasPrefix([]byte(mismatch), []byte(want)) {
				t.Fatalf("run = %q, %v; want a mismatch starting %q", mismatch, err, want)
			}
		})
	}
}

// TestChunkDigestKnownAnswers pins both chunk digests to published values
// (the empty input, and "abc" from FIPS 180-2 and the BLAKE3 reference).
func TestChunkDigestKnownAnswers(t *testing.T) {
	for _, tc := range []struct{ alg, in, want string }{
		{ChunkSHA256, "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
		{"", "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{ChunkBLAKE3, "", "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
		{ChunkBLAKE3, "abc", "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"},
	} {
		if got := chunkDigest(tc.alg, []byte(tc.in)); got != tc.want {
			t.Errorf("chunkDigest(%q, %q) = %s, want %s", tc.alg, tc.in, got, tc.want)
		}
		h := newChunkHash(tc.alg)
		h.Write([]byte(tc.in))
		if got := hex.EncodeToString(h.Sum(nil)); got != tc.want {
			t.Errorf("newChunkHash(%q) over %q = %s, want %s", tc.alg, tc.in, got, tc.want)
		}
	}
}

// TestChunkBuffers checks what O_DIRECT and the pipeline need of the
// buffers: the asked size, 4 KiB alignment, and no two sharing memory.
func TestChunkBuffers(t *testing.T) {
	const n, size = 3, 4<<20 + 4096
	bufs, free, err := chunkBuffers(n, size)
	if err != nil {
		t.Fatal(err)
	}
	defer free()
	if len(bufs) != n {
		t.Fatalf("%d buffers, want %d", len(bufs), n)
	}
	for i, b := range bufs {
		if len(b) != size || cap(b) != size {
			t.Errorf("buffer %d: len %d cap %d, want %d", i, len(b), cap(b), size)
		}
		if uintptrOf(b)%directAlign != 0 {
			t.Errorf("buffer %d at %#x is not %d-byte aligned", i, uintptrOf(b), directAlign)
		}
		for j := range b {
			b[j] = byte(i + 1)
		}
	}
	for i, b := range bufs {
		if b[0] != byte(i+1) || b[size-1] != byte(i+1) {
			t.Errorf("buffer %d was overwritten by another", i)
		}
	}
}
