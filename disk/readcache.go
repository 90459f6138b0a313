package disk

import (
	"errors"
	"io"
)

// readCacheBlock is the unit ReadCache reads and keeps: the probes of one
// partition (superblocks in its first 64 KiB, the GPT, the LVM label, the md
// superblocks near an end) mostly fall into the same few such blocks.
const readCacheBlock = 64 << 10

// readCacheMaxBlocks is the largest read ReadCache keeps; a longer one goes
// to the device directly.
const readCacheMaxBlocks = 16

// ReadCache serves reads of a device of Size bytes from aligned 64 KiB blocks,
// each read from the device once. Probing a disk looks at hundreds of small
// places that fall into a few dozen blocks (356 reads in 31 blocks for a node
// disk with seven partitions), and under emulation every system call counts.
// It is for one read-only pass: it never sees writes, so a caller that
// changes the device afterwards makes a new one. It is not safe for
// concurrent use.
type ReadCache struct {
	r      io.ReaderAt
	size   int64
	blocks map[int64][]byte // block index → its bytes (shorter at the end of the device)
}

// NewReadCache returns a ReadCache over r, a device of size bytes.
func NewReadCache(r io.ReaderAt, size int64) *ReadCache {
	return &ReadCache{r: r, size: size, blocks: map[int64][]byte{}}
}

// ReadAt reads len(p) bytes at off, as io.ReaderAt does: a read past the end
// of the device returns what there is and io.EOF.
func (c *ReadCache) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("disk: read cache: negative offset")
	}
	first, last := off/readCacheBlock, (off+int64(len(p))-1)/readCacheBlock
	if len(p) == 0 || last-first >= readCacheMaxBlocks {
		return c.r.ReadAt(p, off)
	}
	n := 0
	for i := first; i <= last && n < len(p); i++ {
		b, err := c.block(i)
		if err != nil {
			return n, err
		}
		start := off + int64(n) - i*readCacheBlock
		if start >= int64(len(b)) {
			break // past the end of the device
		}
		n += copy(p[n:], b[start:])
		if len(b) < readCacheBlock {
			break // the device's last block
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// block returns block i, reading it on first use.
func (c *ReadCache) block(i int64) ([]byte, error) {
	if b, ok := c.blocks[i]; ok {
		return b, nil
	}
	start := i * readCacheBlock
	n := min(int64(readCacheBlock), c.size-start)
	if n <= 0 {
		return nil, nil
	}
	b := make([]byte, n)
	got, err := c.r.ReadAt(b, start)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	b = b[:got]
	c.blocks[i] = b
	return b, nil
}
