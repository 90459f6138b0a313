package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"strings"

	"lukechampine.com/blake3"
)

// Chunk digest algorithms (File.ChunkHash).
//
// The whole-file digest of every file is SHA-256, so a file can be checked
// with sha256sum. Chunk digests exist only to verify while writing. The
// manifest's are BLAKE3 by default, and the bundle also carries the rootfs's
// SHA-256 chunk digests in a chunk list file (ChunkListName), so the writer
// can check whichever is faster on the machine it runs on (see chunkpick.go).
// Manifests without chunk_hash use SHA-256 chunks.
const (
	ChunkSHA256 = "sha256"
	ChunkBLAKE3 = "blake3"
)

// newChunkHash returns a hash for chunk digests of alg ("" means SHA-256).
func newChunkHash(alg string) hash.Hash {
	if alg == ChunkBLAKE3 {
		return blake3.New(32, nil)
	}
	return sha256.New()
}

// chunkDigest returns the lower-case hex digest of p under alg.
func chunkDigest(alg string, p []byte) string {
	if alg == ChunkBLAKE3 {
		sum := blake3.Sum256(p)
		return hex.EncodeToString(sum[:])
	}
	sum := sha256.Sum256(p)
	return hex.EncodeToString(sum[:])
}

// ChunkListName is the bundle file that holds file's chunk digests under alg,
// beside the manifest's own under the file's ChunkHash: one lower-case hex
// digest a line, in chunk order, for the same ChunkSize. The manifest lists it
// like any other file, so its SHA-256 is signed. nodeinit from before chunk
// lists copies and verifies it as a plain file and otherwise ignores it.
func ChunkListName(file, alg string) string { return file + ".chunks-" + alg }

// encodeChunkList is the content of a chunk list file.
func encodeChunkList(digests []string) []byte {
	return []byte(strings.Join(digests, "\n") + "\n")
}

// parseChunkList reads a chunk list file that must hold n digests.
func parseChunkList(data []byte, n int) ([]string, error) {
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != n {
		return nil, fmt.Errorf("%d chunk digests, the file needs %d", len(lines), n)
	}
	for i, l := range lines {
		if !isDigestHex(l) {
			return nil, fmt.Errorf("line %d is not 64 lower-case hex digits", i+1)
		}
	}
	return lines, nil
}

// knownChunkHash reports whether alg names a chunk digest algorithm.
func knownChunkHash(alg string) bool {
	return alg == "" || alg == ChunkSHA256 || alg == ChunkBLAKE3
}

// maxChunkListSize bounds a chunk list file read into memory: 64 Ki digests
// and newlines, a 256 GiB rootfs at the 4 MiB chunks Build writes. A longer
// list is not used; the manifest's digests are.
const maxChunkListSize = 4 << 20

// chunksForWrite returns f with the chunk digests a write of it checks on
// this machine, and a line for the log saying which and why: the manifest's
// own, or those of f's chunk list (ChunkListName) when the bundle has one for
// the algorithm this machine hashes clearly faster (fasterChunkHash). A chunk list
// that cannot be read, or does not match the signed manifest, is not used:
// the manifest's digests are, which prove the same bytes, and the line says
// so.
func (b *Bundle) chunksForWrite(ctx context.Context, f File) (File, string) {
	if c, ok := b.chunks.Load(f.Name); ok {
		return c.(chunkChoice).file, c.(chunkChoice).note
	}
	nf, note := b.chooseChunks(ctx, f)
	b.chunks.Store(f.Name, chunkChoice{nf, note})
	return nf, note
}

// chunkChoice is one file's entry in Bundle.chunks.
type chunkChoice struct {
	file File
	note string
}

// chooseChunks is chunksForWrite without the cache.
func (b *Bundle) chooseChunks(ctx context.Context, f File) (File, string) {
	if len(f.Chunks) == 0 {
		return f, "one SHA-256 over the whole file (the manifest has no chunk digests)"
	}
	own := f.ChunkHash
	if own == "" {
		own = ChunkSHA256
	}
	want := fasterChunkHash(own)
	times := ChunkHashTimes()
	if want == own {
		return f, fmt.Sprintf("%s chunk digests from the manifest (%s)", own, times)
	}
	list := ChunkListName(f.Name, want)
	if _, ok := b.Manifest.File(list); !ok {
		return f, fmt.Sprintf("%s chunk digests from the manifest; %s would be faster here (%s) but the bundle has no %s", own, want, times, list)
	}
	data, err := b.ReadSmall(ctx, list, maxChunkListSize)
	var digests []string
	if err == nil {
		digests, err = parseChunkList(data, len(f.Chunks))
	}
	if err != nil {
		return f, fmt.Sprintf("%s chunk digests from the manifest; %s not used: %v", own, list, err)
	}
	f.ChunkHash, f.Chunks = want, digests
	return f, fmt.Sprintf("%s chunk digests from %s, the faster here (%s)", want, list, times)
}

// ChunkCheck says which chunk digests a write of the bundle file name will
// check on this machine, and why; WriteFile and CopyFile make the same
// choice.
func (b *Bundle) ChunkCheck(ctx context.Context, name string) (string, error) {
	f, err := b.file(name)
	if err != nil {
		return "", err
	}
	_, note := b.chunksForWrite(ctx, f)
	return note, nil
}
