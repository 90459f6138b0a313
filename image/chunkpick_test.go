package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestChunkHashChoiceIsMeasured checks that both hashes were timed and that
// the choice follows the timings with its margin, from either side.
func TestChunkHashChoiceIsMeasured(t *testing.T) {
	msg := ChunkHashTimes()
	c := &chunkTimes
	if c.sha256 <= 0 || c.blake3 <= 0 {
		t.Fatalf("not both measured: %s", msg)
	}
	t.Log(msg)
	saved := [2]time.Duration{c.sha256, c.blake3}
	t.Cleanup(func() { c.sha256, c.blake3 = saved[0], saved[1] })
	for _, tc := range []struct {
		sha, b3     time.Duration
		own, choice string
	}{
		{100, 50, ChunkBLAKE3, ChunkBLAKE3},
		{100, 50, ChunkSHA256, ChunkBLAKE3},
		{50, 100, ChunkBLAKE3, ChunkSHA256},
		{90, 100, ChunkBLAKE3, ChunkBLAKE3}, // within the margin: keep the manifest's
		{100, 90, ChunkSHA256, ChunkSHA256},
		{84, 100, ChunkBLAKE3, ChunkSHA256},
	} {
		c.sha256, c.blake3 = tc.sha, tc.b3
		if got := fasterChunkHash(tc.own); got != tc.choice {
			t.Errorf("sha256 %d, blake3 %d, manifest %s: chose %s, want %s", tc.sha, tc.b3, tc.own, got, tc.choice)
		}
	}
}

// forceChunkHash makes the machine look clearly faster at alg for the test.
func forceChunkHash(t *testing.T, alg string) {
	t.Helper()
	chunkTimes.once.Do(measureChunkHashes)
	c := &chunkTimes
	saved := [2]time.Duration{c.sha256, c.blake3}
	t.Cleanup(func() { c.sha256, c.blake3 = saved[0], saved[1] })
	fast, slow := time.Millisecond, time.Second
	if alg == ChunkSHA256 {
		c.sha256, c.blake3 = fast, slow
	} else {
		c.sha256, c.blake3 = slow, fast
	}
}

// TestBuildWritesTheSHA256ChunkList: a default bundle's manifest has BLAKE3
// chunk digests and lists the SHA-256 chunk list, which holds the SHA-256 of
// each chunk of the rootfs; a --chunk-hash sha256 bundle has no list.
func TestBuildWritesTheSHA256ChunkList(t *testing.T) {
	dir, m := testBundle(t, "")
	checkChunkList(t, dir, m)
	root, _ := m.File(RootfsName)
	data, _ := os.ReadFile(filepath.Join(dir, ChunkListName(RootfsName, ChunkSHA256)))
	if _, err := parseChunkList(data, len(root.Chunks)+1); err == nil {
		t.Error("parseChunkList with one digest too few: no error")
	}
	_, old := testBundleWith(t, "", func(o *BuildOptions) { o.ChunkHash = ChunkSHA256 })
	if _, ok := old.File(ChunkListName(RootfsName, ChunkSHA256)); ok {
		t.Error("a --chunk-hash sha256 bundle lists a SHA-256 chunk list")
	}
}

// checkChunkList checks that the bundle in dir has BLAKE3 chunk digests in
// its manifest m and a SHA-256 chunk list that m lists with its size and
// SHA-256 and that holds the SHA-256 of each chunk of the rootfs.
func checkChunkList(t *testing.T, dir string, m *Manifest) {
	t.Helper()
	root, _ := m.File(RootfsName)
	listName := ChunkListName(RootfsName, ChunkSHA256)
	entry, ok := m.File(listName)
	if root.ChunkHash != ChunkBLAKE3 || !ok {
		t.Fatalf("manifest: rootfs chunk_hash %q, %s listed %v; want blake3 and the list", root.ChunkHash, listName, ok)
	}
	data, err := os.ReadFile(filepath.Join(dir, listName))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); int64(len(data)) != entry.Size || hex.EncodeToString(sum[:]) != entry.SHA256 {
		t.Errorf("%s: %d bytes, manifest says %d (or its SHA-256 differs)", listName, len(data), entry.Size)
	}
	list, err := parseChunkList(data, len(root.Chunks))
	if err != nil {
		t.Fatal(err)
	}
	rootfs, _ := os.ReadFile(filepath.Join(dir, RootfsName))
	for i := range list {
		chunk := rootfs[i*int(root.ChunkSize) : min(len(rootfs), (i+1)*int(root.ChunkSize))]
		if sum := sha256.Sum256(chunk); list[i] != hex.EncodeToString(sum[:]) {
			t.Errorf("chunk %d: list has %s, the rootfs's SHA-256 is %x", i, list[i], sum)
		}
	}
}

// TestWriteChecksTheFasterDigests writes a bundle's rootfs with SHA-256 made
// the faster hash: the write checks the chunk list, so a rootfs byte flipped
// after the build is caught by it; a list changed after signing is not used
// (the manifest's BLAKE3 digests are, and the write succeeds); and with BLAKE3
// the faster, the manifest's own digests are checked.
func TestWriteChecksTheFasterDigests(t *testing.T) {
	priv, keys := testKeys(t)
	ctx := context.Background()
	listName := ChunkListName(RootfsName, ChunkSHA256)

	forceChunkHash(t, ChunkSHA256)
	dir, _ := testBundle(t, priv)
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	if note, err := b.ChunkCheck(ctx, RootfsName); err != nil || !strings.HasPrefix(note, "sha256 chunk digests from "+listName) {
		t.Errorf("ChunkCheck = %q, %v; want the SHA-256 list", note, err)
	}
	dst := regularTarget(t, 0)
	if err := b.WriteFile(ctx, RootfsName, dst, 0, nil); err != nil {
		t.Fatalf("WriteFile checking the SHA-256 list: %v", err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, RootfsName))
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
		t.Fatal("slot differs from the rootfs")
	}

	flipByte(t, filepath.Join(dir, RootfsName), WriteBlockSize+5)
	if err := b.WriteFile(ctx, RootfsName, regularTarget(t, 0), 0, nil); !errors.Is(err, ErrDigestMismatch) || !strings.Contains(err.Error(), "chunk 1") {
		t.Errorf("WriteFile of a flipped rootfs = %v, want ErrDigestMismatch at chunk 1", err)
	}

	dir2, _ := testBundle(t, priv)
	flipByte(t, filepath.Join(dir2, listName), 3)
	b2 := mustOpen(t, openDir(t, dir2), mustKeyring(t, keys), VerifyOptions{})
	if note, _ := b2.ChunkCheck(ctx, RootfsName); !strings.Contains(note, "blake3 chunk digests from the manifest; "+listName+" not used") {
		t.Errorf("ChunkCheck with a changed list = %q, want the manifest's digests", note)
	}
	if err := b2.WriteFile(ctx, RootfsName, regularTarget(t, 0), 0, nil); err != nil {
		t.Errorf("WriteFile with a changed list: %v, want it checked by the manifest's digests", err)
	}

	forceChunkHash(t, ChunkBLAKE3)
	b3 := mustOpen(t, openDir(t, dir2), mustKeyring(t, keys), VerifyOptions{}) // a bundle keeps its first choice
	if note, _ := b3.ChunkCheck(ctx, RootfsName); !strings.HasPrefix(note, "blake3 chunk digests from the manifest (") {
		t.Errorf("ChunkCheck with BLAKE3 faster = %q", note)
	}
}
