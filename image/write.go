package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Writer tuning. The writer holds hashWorkers()+writeDepth+2 buffers of one
// chunk (WriteBlockSize unless the manifest says otherwise, at most
// MaxChunkSize), each rounded up to 2 MiB: 24 MiB on a 2-core machine with
// 4 MiB chunks.
const (
	WriteBlockSize = 4 << 20
	directAlign    = 4096 // O_DIRECT alignment that suits 512 and 4096-byte sectors
	writeDepth     = 2    // O_DIRECT writes in flight at once (measured: 2 beats 1 and 4)
)

// Progress is one progress report of a streaming write.
type Progress struct {
	Name    string        // bundle file being written
	Done    int64         // bytes written so far
	Total   int64         // bytes to write
	Rate    float64       // bytes per second since the start
	ETA     time.Duration // estimated time left (0 when done or unknown)
	Elapsed time.Duration
	Final   bool // the last report: written and synced
}

// String renders p as one console line, e.g.
// "rootfs.squashfs 512.0/1024.0 MiB 50% 1210.3 MB/s ETA 0s".
func (p Progress) String() string {
	pct := 100.0
	if p.Total > 0 {
		pct = float64(p.Done) * 100 / float64(p.Total)
	}
	s := fmt.Sprintf("%s %.1f/%.1f MiB %3.0f%% %.1f MB/s", p.Name,
		float64(p.Done)/(1<<20), float64(p.Total)/(1<<20), pct, p.Rate/1e6)
	if p.Final {
		return s + " done in " + p.Elapsed.Round(time.Millisecond).String()
	}
	return s + " ETA " + p.ETA.Round(time.Second).String()
}

// ProgressInterval is the least time between two progress reports; a final
// report always follows the last write.
var ProgressInterval = time.Second

// WriteFile streams the bundle file name into the existing file or block
// device dstPath at byte offset, through SHA-256, in WriteBlockSize writes
// with O_DIRECT when the target allows it (it falls back to buffered writes
// when it does not, e.g. tmpfs or an unaligned offset). It never holds more
// than hashWorkers()+writeDepth+2 blocks in memory, syncs the target before returning and
// reports progress at most once per ProgressInterval plus a final report.
//
// dstPath must exist (WriteFile never creates files, so a mistyped device
// path fails instead of landing in /dev). For a block device the image must
// fit between offset and the end of the device; this is checked before the
// first write.
//
// If the size or digest differs from the manifest, WriteFile returns an
// error wrapping ErrSizeMismatch or ErrDigestMismatch and zeroes the first
// 4 KiB it wrote, so the half-written squashfs cannot be mounted by mistake.
// The caller must then leave the slot unreferenced: no loader entry, no
// ledger change, so nothing ever boots it.
func (b *Bundle) WriteFile(ctx context.Context, name, dstPath string, offset int64, progress func(Progress)) error {
	f, err := b.file(name)
	if err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("write %s to %s: negative offset %d", name, dstPath, offset)
	}
	dst, direct, err := openTarget(dstPath, offset)
	if err != nil {
		return newError("open target", dstPath, err, "name an existing partition or device node")
	}
	defer dst.Close()
	if err := checkFits(dst, dstPath, offset, f.Size); err != nil {
		return err
	}
	f, _ = b.chunksForWrite(ctx, f)
	rc, err := b.openFile(ctx, f)
	if err != nil {
		return err
	}
	defer rc.Close()

	w := &streamWriter{dst: dst, direct: direct, offset: offset, progress: progress, name: name, total: f.Size}
	n, err := b.stream(ctx, w, rc, f)
	if err != nil && (n > 0 || errors.Is(err, ErrSizeMismatch)) {
		w.spoil()
	}
	return err
}

// stream runs w over rc and turns a size or digest mismatch into the error
// WriteFile and CopyFile return; n is what rc yielded.
func (b *Bundle) stream(ctx context.Context, w *streamWriter, rc io.Reader, f File) (n int64, err error) {
	n, mismatch, err := w.run(ctx, rc, f)
	switch {
	case err != nil:
		return n, err
	case n != f.Size:
		return n, b.sizeError(f, n)
	case mismatch != "":
		return n, newError("verify", b.Source.String()+"/"+f.Name, fmt.Errorf("%w: %s", ErrDigestMismatch, mismatch),
			"the file is corrupt or was tampered with: copy or download the bundle again")
	}
	return n, nil
}

// checkFits refuses a write that would run past the end of a block device.
func checkFits(dst *os.File, path string, offset, size int64) error {
	st, err := dst.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode()&os.ModeDevice == 0 {
		return nil // a regular file grows
	}
	end, err := dst.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("size of %s: %w", path, err)
	}
	if offset+size > end {
		return newError("write", path, fmt.Errorf("image needs %d bytes at offset %d, the device has %d", size, offset, end),
			"make the root slot partitions larger (storage_vol=) or use a smaller image")
	}
	return nil
}

// streamWriter runs the read → verify → write pipeline.
type streamWriter struct {
	dst      *os.File
	direct   bool
	offset   int64
	name     string
	total    int64
	progress func(Progress)
	wrote    bool
}

// chunk is one block on its way through the pipeline. It is released when
// both the hasher and the writer are done with it.
type chunk struct {
	buf     []byte // aligned data, n valid bytes once loaded is closed
	n       int
	idx     int   // chunk number
	off     int64 // offset within the file
	err     error // read error, set before loaded is closed
	loaded  chan struct{}
	pending atomic.Int32
	release func()
}

func (c *chunk) done() {
	if c.pending.Add(-1) == 0 {
		c.release()
	}
}

// hashWorkers is how many goroutines verify chunk digests at once.
func hashWorkers() int { return max(1, min(runtime.GOMAXPROCS(0), 8)) }

// sizedReaderAt is a source that can be read at any offset: a file in a
// directory, the initramfs or a mounted medium (not an HTTP stream).
type sizedReaderAt interface {
	io.ReaderAt
	Stat() (os.FileInfo, error)
}

// run streams r (which should yield f.Size bytes) into the target and
// returns the number of bytes read (more than f.Size means the source is
// too long) and, when the content differs from the manifest, a description
// of the mismatch.
//
// The pipeline keeps the disk busy while every core hashes. Blocks are
// handed to the writes in file order as soon as they are read, up to
// writeDepth O_DIRECT writes in flight, while hash workers check them: against the manifest's per-chunk digests in parallel when f has
// them, else through one sequential SHA-256 of the whole stream. When f has
// chunk digests and r is a regular file, each hash worker also reads its
// own chunk (pread into an aligned buffer), so the copy out of the page
// cache is spread over the cores too instead of serialising on one reader.
// Measured with go run ./bench/image (see bench/README.md).
//
// The source is always copied into private buffers before it is hashed:
// hashing a shared mmap of the source and writing from it would let a
// medium that changes under us (a page evicted and read again from a
// malicious USB stick) put unverified bytes on the disk.
func (w *streamWriter) run(ctx context.Context, r io.Reader, f File) (int64, string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunkSize := WriteBlockSize
	if f.ChunkSize > 0 {
		chunkSize = int(f.ChunkSize)
	}
	workers := 1
	var ra io.ReaderAt
	if len(f.Chunks) > 0 {
		workers = hashWorkers()
		if sr, ok := r.(sizedReaderAt); ok {
			if st, err := sr.Stat(); err == nil && st.Mode().IsRegular() {
				ra = sr
			}
		}
	}
	bufs, free, err := chunkBuffers(workers+writeDepth+2, chunkSize)
	if err != nil {
		return 0, "", err
	}
	defer free() // every return below comes after the producer and the hashers have ended
	pool := make(chan []byte, len(bufs))
	for _, b := range bufs {
		pool <- b
	}
	hashCh := make(chan *chunk, cap(pool))
	writeCh := make(chan *chunk, cap(pool))

	// Producer: takes buffers in file order and hands each chunk to a hasher
	// and to the writer. From a stream it reads the chunk itself; from a
	// file the hasher reads it (see run's doc).
	var readN int64 // bytes the stream yielded (with ra: set after the writer is done)
	var readErr error
	go func() {
		defer close(writeCh)
		defer close(hashCh)
		for idx := 0; ; idx++ {
			var buf []byte
			select {
			case buf = <-pool:
			case <-ctx.Done():
				readErr = ctx.Err()
				return
			}
			off := int64(idx) * int64(chunkSize)
			c := &chunk{buf: buf, idx: idx, off: off, loaded: make(chan struct{}), release: func() { pool <- buf }}
			c.pending.Store(2)
			if ra != nil {
				if off >= f.Size {
					pool <- buf
					return
				}
				c.n = int(min(int64(chunkSize), f.Size-off))
				hashCh <- c
				writeCh <- c
				continue
			}
			m, err := io.ReadFull(r, buf)
			if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
				readErr = fmt.Errorf("read %s: %w", w.name, err)
				pool <- buf
				return
			}
			if m == 0 {
				pool <- buf
				return
			}
			if readN+int64(m) > f.Size {
				readN += int64(m) // longer than the manifest says: stop before writing past it
				pool <- buf
				return
			}
			readN += int64(m)
			c.n = m
			close(c.loaded)
			hashCh <- c
			writeCh <- c
			if m < chunkSize {
				return
			}
		}
	}()

	// Hashers.
	var hwg sync.WaitGroup
	var mu sync.Mutex
	badChunk, wholeSum := -1, ""
	if len(f.Chunks) > 0 {
		for i := 0; i < workers; i++ {
			hwg.Add(1)
			go func() {
				defer hwg.Done()
				for c := range hashCh {
					if ra != nil {
						if m, err := ra.ReadAt(c.buf[:c.n], c.off); err != nil {
							c.n, c.err = m, err // io.EOF: the file is shorter than the manifest says
						}
						close(c.loaded)
					}
					if c.idx >= len(f.Chunks) || chunkDigest(f.ChunkHash, c.buf[:c.n]) != f.Chunks[c.idx] {
						mu.Lock()
						if badChunk < 0 || c.idx < badChunk {
							badChunk = c.idx
						}
						mu.Unlock()
					}
					c.done()
				}
			}()
		}
	} else {
		hwg.Add(1)
		go func() {
			defer hwg.Done()
			h := sha256.New()
			for c := range hashCh {
				h.Write(c.buf[:c.n])
				c.done()
			}
			wholeSum = hex.EncodeToString(h.Sum(nil))
		}()
	}

	// Writer: this goroutine, in file order.
	start := time.Now()
	last := start
	// Aligned O_DIRECT writes overlap, up to writeDepth at a time, so the
	// device has the next write queued when one completes (dd keeps one).
	// The first write and an unaligned tail go alone: either may switch
	// O_DIRECT off for the file.
	var written atomic.Int64
	var loadErr error
	var wmu sync.Mutex
	var werr error // the first write error; guarded by wmu
	failed := func() bool { wmu.Lock(); defer wmu.Unlock(); return werr != nil }
	fail := func(err error) {
		wmu.Lock()
		if werr == nil {
			werr = err
		}
		wmu.Unlock()
		cancel() // stop the reader; keep draining so it can exit
	}
	write := func(c *chunk) { // writes c, then releases its buffer
		if err := w.writeChunk(c); err != nil {
			fail(err)
		} else {
			written.Add(int64(c.n))
		}
		c.done()
	}
	var wwg sync.WaitGroup
	depth := make(chan struct{}, writeDepth)
	shortAt := int64(-1) // with ra: where the file ended early
	for c := range writeCh {
		<-c.loaded
		if c.err != nil && loadErr == nil && shortAt < 0 {
			if c.err == io.EOF {
				shortAt = c.off + int64(c.n)
			} else {
				loadErr = fmt.Errorf("read %s: %w", w.name, c.err)
			}
			cancel() // stop reading ahead
		}
		if failed() || loadErr != nil || shortAt >= 0 {
			c.done()
			continue
		}
		if w.direct && w.wrote && c.n%directAlign == 0 {
			depth <- struct{}{}
			wwg.Add(1)
			go func() {
				defer wwg.Done()
				write(c)
				<-depth
			}()
		} else {
			wwg.Wait()
			write(c)
		}
		if now := time.Now(); w.progress != nil && now.Sub(last) >= ProgressInterval {
			last = now
			w.progress(w.report(written.Load(), now.Sub(start), false))
		}
	}
	wwg.Wait()
	hwg.Wait()
	switch {
	case werr != nil:
		return written.Load(), "", werr
	case loadErr != nil:
		return written.Load(), "", loadErr
	case shortAt >= 0:
		return shortAt, "", nil // the caller reports the size mismatch
	case readErr != nil:
		return readN, "", readErr
	}
	if ra != nil {
		readN = f.Size
		// One byte past the end tells a longer file from an exact one.
		var probe [1]byte
		if m, _ := ra.ReadAt(probe[:], f.Size); m > 0 {
			readN = f.Size + 1
		}
	}
	if readN != f.Size {
		return readN, "", nil
	}
	if err := w.dst.Sync(); err != nil {
		return written.Load(), "", fmt.Errorf("sync %s: %w", w.dst.Name(), err)
	}
	switch {
	case badChunk >= 0:
		from := int64(badChunk) * int64(chunkSize)
		return readN, fmt.Sprintf("chunk %d (bytes %d-%d) differs from the manifest", badChunk, from, min(from+int64(chunkSize), f.Size)-1), nil
	case len(f.Chunks) == 0 && wholeSum != f.SHA256:
		return readN, fmt.Sprintf("got %s, manifest says %s", wholeSum, f.SHA256), nil
	}
	if w.progress != nil {
		w.progress(w.report(written.Load(), time.Since(start), true))
	}
	return readN, "", nil
}

func (w *streamWriter) report(done int64, elapsed time.Duration, final bool) Progress {
	p := Progress{Name: w.name, Done: done, Total: w.total, Elapsed: elapsed, Final: final}
	if s := elapsed.Seconds(); s > 0 {
		p.Rate = float64(done) / s
		if !final && p.Rate > 0 && w.total > done {
			p.ETA = time.Duration(float64(w.total-done) / p.Rate * float64(time.Second))
		}
	}
	return p
}

// writeChunk writes one block at its offset; an unaligned tail (the last
// block of a file whose size is not a multiple of 4 KiB) is written after
// switching O_DIRECT off.
func (w *streamWriter) writeChunk(c *chunk) error {
	at := w.offset + c.off
	data := c.buf[:c.n]
	if w.direct {
		aligned := len(data) &^ (directAlign - 1)
		if aligned > 0 {
			if err := w.pwrite(data[:aligned], at); err != nil {
				if !errors.Is(err, errDirectRefused) {
					return err
				}
				w.direct = false
				return w.writeChunk(c)
			}
		}
		if aligned == len(data) {
			return nil
		}
		if err := setDirect(w.dst, false); err != nil {
			return fmt.Errorf("switch off O_DIRECT on %s: %w", w.dst.Name(), err)
		}
		w.direct = false
		data, at = data[aligned:], at+int64(aligned)
	}
	return w.pwrite(data, at)
}

// pwrite writes all of p at off.
func (w *streamWriter) pwrite(p []byte, off int64) error {
	for len(p) > 0 {
		n, err := w.dst.WriteAt(p, off)
		if err != nil {
			if w.direct && isEINVAL(err) && !w.wrote {
				return errDirectRefused
			}
			return fmt.Errorf("write %s at byte %d: %w", w.dst.Name(), off, err)
		}
		if !w.wrote {
			w.wrote = true // only ever on a write that runs alone (see run)
		}
		p, off = p[n:], off+int64(n)
	}
	return nil
}

var errDirectRefused = errors.New("O_DIRECT refused")

// spoil zeroes the first 4 KiB written, so a rejected image has no valid
// superblock. Errors are ignored: the caller already reports the mismatch.
func (w *streamWriter) spoil() {
	if w.direct {
		setDirect(w.dst, false)
	}
	zero := make([]byte, directAlign)
	w.dst.WriteAt(zero, w.offset)
	w.dst.Sync()
}

// alignedBuffer returns size bytes starting at a multiple of align.
func alignedBuffer(size, align int) []byte {
	b := make([]byte, size+align)
	skip := 0
	if r := int(uintptrOf(b) % uintptr(align)); r != 0 {
		skip = align - r
	}
	return b[skip : skip+size : skip+size]
}

// CopyFile copies the bundle file name to dstPath (kernel, initrd, loader,
// and the rootfs for a stateless boot) through the same verifying pipeline
// as WriteFile: chunk digests on every core when the manifest has them, else
// SHA-256. It writes a temp file next to dstPath and renames it into place
// only when size and digests match, with fsyncs, so dstPath is either the
// old file or the complete new one.
func (b *Bundle) CopyFile(ctx context.Context, name, dstPath string) error {
	f, err := b.file(name)
	if err != nil {
		return err
	}
	f, _ = b.chunksForWrite(ctx, f)
	rc, err := b.openFile(ctx, f)
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dstPath), "."+filepath.Base(dstPath)+".tmp*")
	if err != nil {
		return fmt.Errorf("copy %s to %s: %w", name, dstPath, err)
	}
	defer os.Remove(tmp.Name()) // no-op after rename
	w := &streamWriter{dst: tmp, name: name, total: f.Size}
	if _, err := b.stream(ctx, w, rc, f); err != nil {
		tmp.Close()
		return err
	}
	return commitTemp(tmp, dstPath, 0o644)
}
