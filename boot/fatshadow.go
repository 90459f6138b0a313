package boot

import (
	"bytes"
	"fmt"

	"github.com/nodeinit/nodeinit/device"
)

// go-diskfs writes both whole FAT copies for every allocation, every removal and
// every new directory: 1 MiB on a 512 MiB ESP (two copies of 511 KiB), where the
// change is a few entries. An install made about twenty such writes, a plain boot
// that records itself in the ledger two, and on a USB stick or an SD card each
// one wears the same flash. fatShadow keeps what the disk holds in the FAT
// region and writes only the sectors that differ, so the disk ends up with the
// same bytes. It also answers reads of the region, so the rereads after a removal
// (fatfix.go) cost no I/O.

// maxFATShadow is the largest FAT region (both copies) kept in memory; a larger
// one, from an unusually big or small-clustered ESP, is written the go-diskfs way.
const maxFATShadow = 32 << 20

// fatShadow is a device.Block whose FAT region, [start, start+len(disk)), is
// mirrored in disk: reads there come from memory, and a write there reaches the
// device only for the sectors whose bytes change.
type fatShadow struct {
	device.Block
	start  int64
	sector int64
	disk   []byte // the region as the device holds it
}

// shadowFAT reads the FAT copies that g describes from b and returns b with
// them mirrored, or b itself when the region is larger than maxFATShadow.
func shadowFAT(b device.Block, g fatGeometry) (device.Block, error) {
	size := g.fats * g.sectorsPerFAT * g.bytesPerSector
	if size <= 0 || size > maxFATShadow {
		return b, nil
	}
	s := &fatShadow{Block: b, start: g.fatOffset(0, 0), sector: g.bytesPerSector, disk: make([]byte, size)}
	if _, err := b.ReadAt(s.disk, s.start); err != nil {
		return nil, fmt.Errorf("read the FATs of %s: %w", b.Path(), err)
	}
	return s, nil
}

// overlap returns the part of [off, off+n) inside the region, relative to
// off, and whether there is one.
func (s *fatShadow) overlap(off int64, n int) (lo, hi int64, ok bool) {
	lo, hi = max(off, s.start), min(off+int64(n), s.start+int64(len(s.disk)))
	return lo - off, hi - off, lo < hi
}

// ReadAt reads p at off, the FAT region's bytes from memory.
func (s *fatShadow) ReadAt(p []byte, off int64) (int, error) {
	lo, hi, ok := s.overlap(off, len(p))
	if !ok {
		return s.Block.ReadAt(p, off)
	}
	if lo > 0 {
		if n, err := s.Block.ReadAt(p[:lo], off); err != nil {
			return n, err
		}
	}
	copy(p[lo:hi], s.disk[off+lo-s.start:])
	if hi < int64(len(p)) {
		if n, err := s.Block.ReadAt(p[hi:], off+hi); err != nil {
			return int(hi) + n, err
		}
	}
	return len(p), nil
}

// WriteAt writes p at off. Inside the FAT region it writes each run of sectors
// whose bytes differ from the disk's, and nothing where they are the same.
func (s *fatShadow) WriteAt(p []byte, off int64) (int, error) {
	lo, hi, ok := s.overlap(off, len(p))
	if !ok {
		return s.Block.WriteAt(p, off)
	}
	if lo > 0 {
		if n, err := s.Block.WriteAt(p[:lo], off); err != nil {
			return n, err
		}
	}
	if err := s.writeChanged(p[lo:hi], off+lo); err != nil {
		return int(lo), err
	}
	if hi < int64(len(p)) {
		if n, err := s.Block.WriteAt(p[hi:], off+hi); err != nil {
			return int(hi) + n, err
		}
	}
	return len(p), nil
}

// writeChanged writes the sectors of p (at off, inside the region) that differ
// from the disk, one write per run of such sectors, and records them.
func (s *fatShadow) writeChanged(p []byte, off int64) error {
	run := int64(-1) // where the current run of changed sectors starts in p
	flush := func(end int64) error {
		if run < 0 {
			return nil
		}
		if _, err := s.Block.WriteAt(p[run:end], off+run); err != nil {
			// What the device holds there is now unknown: from here on every
			// read and write of the region goes to the device.
			s.disk = nil
			return err
		}
		copy(s.disk[off+run-s.start:], p[run:end])
		run = -1
		return nil
	}
	for i := int64(0); i < int64(len(p)); {
		// The piece of p up to the next sector boundary of the device.
		end := min(int64(len(p)), (off+i)/s.sector*s.sector+s.sector-off)
		if bytes.Equal(p[i:end], s.disk[off+i-s.start:off+end-s.start]) {
			if err := flush(i); err != nil {
				return err
			}
		} else if run < 0 {
			run = i
		}
		i = end
	}
	return flush(int64(len(p)))
}
