package image

import (
	"crypto/sha256"
	"fmt"
	"math/bits"
	"sync"
	"time"

	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"
)

// Which chunk digest the writer checks, and with which code, is measured on
// the machine that writes, once per process, the way the kernel times its
// raid6 and xor routines at boot. No one algorithm is fastest everywhere:
// BLAKE3 with AVX-512 hashes 7 GB/s per core here against SHA-256's 2 GB/s
// with SHA-NI, but on a CPU with AVX2 and SHA-NI and no AVX-512 SHA-256 was
// the faster (0.50 s against 0.63 s per GiB on 2 cores), and under QEMU's
// software emulation the order depends on the host. So a bundle carries its
// rootfs chunk digests under both (the manifest's, and a chunk list file,
// ChunkListName) and the writer checks whichever is faster here.
//
// BLAKE3 itself has two implementations. lukechampine.com/blake3 picks its
// SIMD path (AVX-512, AVX2 or generic) by CPUID when the program starts, and
// that choice cannot be changed. Under TCG, where every emulated vector
// instruction costs far more than the scalar code it replaces, the SIMD path
// can lose to plain scalar code. blake3Scalar is the library's own compression
// function (guts.CompressChunk, guts.ParentNode, guts.CompressNode), which has
// no SIMD, driven over BLAKE3's chunk tree as the library's Hasher does; it is
// the one place that works around the fixed dispatch.

// chunkTimes is what the one measurement of this process saw: the time for
// hashWorkers() goroutines at once to hash chunkSampleSize bytes each, the
// better of two rounds, per implementation.
var chunkTimes struct {
	once                       sync.Once
	sha256, blake3SIMD, scalar time.Duration
	blake3                     func([]byte) [32]byte // the faster BLAKE3
}

// chunkSampleSize is how much each hash worker hashes per timing: large
// enough that the library's SIMD tree path runs as it does on a 4 MiB chunk,
// small enough that the measurement costs about 0.1 s even under TCG.
const chunkSampleSize = 512 << 10

// measureChunkHashes times SHA-256 and both BLAKE3 implementations on
// hashWorkers() goroutines at once, as the writer runs them.
func measureChunkHashes() {
	sample := make([]byte, chunkSampleSize)
	for i := range sample {
		sample[i] = byte(i*7 + i>>10)
	}
	timeIt := func(sum func([]byte) [32]byte) time.Duration {
		best := time.Duration(1<<63 - 1)
		for range 2 {
			start := time.Now()
			var wg sync.WaitGroup
			for range hashWorkers() {
				wg.Add(1)
				go func() { defer wg.Done(); sum(sample) }()
			}
			wg.Wait()
			best = min(best, time.Since(start))
		}
		return best
	}
	c := &chunkTimes
	c.blake3SIMD, c.scalar, c.sha256 = timeIt(blake3.Sum256), timeIt(blake3Scalar), timeIt(sha256.Sum256)
	c.blake3 = blake3.Sum256
	if c.scalar < c.blake3SIMD {
		c.blake3 = blake3Scalar
	}
}

// blake3Sum256 returns the BLAKE3-256 digest of p by the faster
// implementation on this machine.
func blake3Sum256(p []byte) [32]byte {
	chunkTimes.once.Do(measureChunkHashes)
	return chunkTimes.blake3(p)
}

// fasterChunkHash returns ChunkSHA256 or ChunkBLAKE3, whichever this machine
// hashes faster (BLAKE3 by its faster implementation).
func fasterChunkHash() string {
	chunkTimes.once.Do(measureChunkHashes)
	c := &chunkTimes
	if c.sha256 < min(c.blake3SIMD, c.scalar) {
		return ChunkSHA256
	}
	return ChunkBLAKE3
}

// ChunkHashTimes says what the measurement saw, e.g. "sha256 1.52ms, blake3
// simd 240µs, blake3 scalar 1.15ms per 2×512 KiB". It measures if nothing has
// been hashed yet.
func ChunkHashTimes() string {
	chunkTimes.once.Do(measureChunkHashes)
	c := &chunkTimes
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	return fmt.Sprintf("sha256 %s, blake3 simd %s, blake3 scalar %s per %d×%d KiB",
		r(c.sha256), r(c.blake3SIMD), r(c.scalar), hashWorkers(), chunkSampleSize>>10)
}

// blake3Scalar is BLAKE3-256 of p (unkeyed) in the library's scalar code:
// each 1 KiB chunk is compressed in turn and its chaining value merged into a
// stack of subtree roots, one per height, as a binary counter carries; the
// last chunk is kept back to become, or to be folded into, the root.
func blake3Scalar(p []byte) [32]byte {
	var stack [64][8]uint32
	var counter uint64 // chunks merged so far; bit i set means stack[i] holds a subtree
	for len(p) > guts.ChunkSize {
		cv := guts.ChainingValue(guts.CompressChunk(p[:guts.ChunkSize], &guts.IV, counter, 0))
		p = p[guts.ChunkSize:]
		i := 0
		for ; counter&(1<<i) != 0; i++ {
			cv = guts.ChainingValue(guts.ParentNode(stack[i], cv, &guts.IV, 0))
		}
		stack[i] = cv
		counter++
	}
	n := guts.CompressChunk(p, &guts.IV, counter, 0)
	for i := bits.TrailingZeros64(counter); i < bits.Len64(counter); i++ {
		if counter&(1<<i) != 0 {
			n = guts.ParentNode(stack[i], guts.ChainingValue(n), &guts.IV, 0)
		}
	}
	n.Flags |= guts.FlagRoot
	out := guts.WordsToBytes(guts.CompressNode(n))
	var sum [32]byte
	copy(sum[:], out[:32])
	return sum
}
