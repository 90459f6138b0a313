package image

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"lukechampine.com/blake3"
)

// Which chunk digest the writer checks is measured on the machine that
// writes, once per process, the way the kernel times its raid6 and xor
// routines at boot. No one algorithm is fastest everywhere: BLAKE3 with
// AVX-512 hashes several times faster than SHA-256 with SHA-NI here, but on a
// CPU with AVX2 and SHA-NI and no AVX-512 SHA-256 was the faster (0.50 s
// against 0.63 s per GiB on 2 cores), and under QEMU's software emulation the
// two run alike. So a bundle carries its rootfs chunk digests under both (the
// manifest's, and a chunk list file, ChunkListName) and the writer checks the
// other set only when it is clearly faster here (switchMargin): a near tie
// keeps the manifest's, which need no second file.

// chunkTimes is what the one measurement of this process saw: the time for
// hashWorkers() goroutines at once to hash chunkSampleSize bytes each, the
// best of chunkRounds rounds, the two hashes taking turns.
var chunkTimes struct {
	once           sync.Once
	sha256, blake3 time.Duration
}

const (
	// chunkSampleSize is how much each hash worker hashes per timing: large
	// enough that the library's SIMD tree path runs as it does on a 4 MiB
	// chunk, small enough that the measurement costs a few milliseconds on
	// hardware and under 0.1 s under TCG.
	chunkSampleSize = 512 << 10
	chunkRounds     = 3
	// switchMargin is how much faster the other algorithm must hash before
	// the writer reads the chunk list instead of using the manifest's digests.
	switchMargin = 0.85
)

// measureChunkHashes times SHA-256 and BLAKE3 on hashWorkers() goroutines at
// once, as the writer runs them.
func measureChunkHashes() {
	sample := make([]byte, chunkSampleSize)
	for i := range sample {
		sample[i] = byte(i*7 + i>>10)
	}
	once := func(sum func([]byte) [32]byte) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for range hashWorkers() {
			wg.Add(1)
			go func() { defer wg.Done(); sum(sample) }()
		}
		wg.Wait()
		return time.Since(start)
	}
	c := &chunkTimes
	c.sha256, c.blake3 = time.Duration(1<<63-1), time.Duration(1<<63-1)
	for range chunkRounds {
		c.blake3 = min(c.blake3, once(blake3.Sum256))
		c.sha256 = min(c.sha256, once(sha256.Sum256))
	}
}

// fasterChunkHash returns which of the two algorithms a file whose manifest
// digests are under own should be checked with here: the other one only when
// it hashes in less than switchMargin of own's time.
func fasterChunkHash(own string) string {
	chunkTimes.once.Do(measureChunkHashes)
	c := &chunkTimes
	t := map[string]time.Duration{ChunkSHA256: c.sha256, ChunkBLAKE3: c.blake3}
	other := ChunkSHA256
	if own == ChunkSHA256 {
		other = ChunkBLAKE3
	}
	if float64(t[other]) < switchMargin*float64(t[own]) {
		return other
	}
	return own
}

// ChunkHashTimes says what the measurement saw, e.g. "sha256 410µs, blake3
// 360µs per 2×512 KiB". It measures if nothing has been hashed yet.
func ChunkHashTimes() string {
	chunkTimes.once.Do(measureChunkHashes)
	c := &chunkTimes
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("sha256 %s, blake3 %s per %d×%d KiB", r(c.sha256), r(c.blake3), hashWorkers(), chunkSampleSize>>10)
}
