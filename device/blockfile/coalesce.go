package blockfile

import (
	"sync"

	"github.com/nodeinit/nodeinit/device"
)

// DefaultCoalesce is the most bytes Coalesce holds before it writes them out.
const DefaultCoalesce = 4 << 20

// Coalesce returns b with contiguous writes merged. A WriteAt that starts where
// the pending one ends is appended to it, up to limit bytes. The pending bytes are
// written to b as one WriteAt before anything else reaches b: a read, a write
// elsewhere, Flush, ZeroRange, Discard or Close. So b sees the same bytes in the
// same order, only in fewer and larger writes.
//
// It exists for go-diskfs, which writes a FAT file one cluster at a time: on a
// 512-byte-sector ESP under 260 MB, a 30 MB kernel was 61474 writes of 512 bytes,
// and freeing its chain was one 4-byte write per cluster per FAT copy. Under TCG
// that made the ESP copy the slowest stage of an install.
//
// A merged write's error comes back from the call that writes it out, which for
// go-diskfs' callers is the Flush that ends every change.
func Coalesce(b device.Block, limit int) device.Block {
	return &coalescing{Block: b, limit: limit}
}

type coalescing struct {
	device.Block
	limit int

	mu      sync.Mutex
	off     int64  // where pending starts
	pending []byte // bytes not yet written to Block
}

// WriteAt appends p to the pending write when it continues it, and otherwise
// writes the pending bytes out first.
func (c *coalescing) WriteAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pending) > 0 && (off != c.off+int64(len(c.pending)) || len(c.pending)+len(p) > c.limit) {
		if err := c.drainLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) >= c.limit {
		return c.Block.WriteAt(p, off)
	}
	if len(c.pending) == 0 {
		c.off = off
	}
	c.pending = append(c.pending, p...)
	return len(p), nil
}

func (c *coalescing) drainLocked() error {
	if len(c.pending) == 0 {
		return nil
	}
	_, err := c.Block.WriteAt(c.pending, c.off)
	c.pending = c.pending[:0]
	return err
}

func (c *coalescing) drain() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drainLocked()
}

// ReadAt writes the pending bytes out, then reads.
func (c *coalescing) ReadAt(p []byte, off int64) (int, error) {
	if err := c.drain(); err != nil {
		return 0, err
	}
	return c.Block.ReadAt(p, off)
}

// Flush writes the pending bytes out, then flushes.
func (c *coalescing) Flush() error {
	if err := c.drain(); err != nil {
		return err
	}
	return c.Block.Flush()
}

// ZeroRange writes the pending bytes out, then zeroes.
func (c *coalescing) ZeroRange(off, n int64) error {
	if err := c.drain(); err != nil {
		return err
	}
	return c.Block.ZeroRange(off, n)
}

// Discard writes the pending bytes out, then discards.
func (c *coalescing) Discard(off, n int64, secure bool) error {
	if err := c.drain(); err != nil {
		return err
	}
	return c.Block.Discard(off, n, secure)
}

// Close writes the pending bytes out, then closes.
func (c *coalescing) Close() error {
	err := c.drain()
	if cerr := c.Block.Close(); err == nil {
		err = cerr
	}
	return err
}
