package boot

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/device/blockfile"
)

// go-diskfs v1.9.4's FAT writer has two defects that matter for an ESP that is
// rewritten on every upgrade. This file works around both, and nothing else does:
//
//   - Remove drops the directory entry but leaves the file's clusters allocated,
//     so every replaced kernel and initrd would leak tens of MiB until the ESP is
//     full. freeClusters releases the removed file's chain in both FAT copies, and
//     the filesystem is read again so go-diskfs' cached table cannot write the
//     stale allocation back.
//   - Mkdir of a directory in the root writes the root's cluster number into the
//     new directory's ".." entry, where FAT says 0; fsck.fat reports every such
//     directory. fixDotDot sets it to 0.
//
// And one defect of its reader: Read refuses a filesystem whose two FAT copies
// differ ("fat tables did not match"), which is what a power cut between the
// writes of the two copies leaves; Linux and the firmware read the first copy
// and go on. firstFAT makes go-diskfs read the first copy in place of the
// second (the crash-point harness found this: 26 of 150 states of a bless).
//
// Both write plain FAT structures at offsets computed from the boot sector.

// fatGeometry is what the boot sector says about where things are.
type fatGeometry struct {
	bytesPerSector    int64
	sectorsPerCluster int64
	reservedSectors   int64
	fats              int64
	sectorsPerFAT     int64
	rootCluster       uint32
}

func (f *FAT) geometry() (fatGeometry, error) {
	bs := make([]byte, 512)
	if _, err := f.dev.ReadAt(bs, 0); err != nil {
		return fatGeometry{}, fmt.Errorf("read FAT boot sector: %w", err)
	}
	g := fatGeometry{
		bytesPerSector:    int64(binary.LittleEndian.Uint16(bs[11:])),
		sectorsPerCluster: int64(bs[13]),
		reservedSectors:   int64(binary.LittleEndian.Uint16(bs[14:])),
		fats:              int64(bs[16]),
		sectorsPerFAT:     int64(binary.LittleEndian.Uint32(bs[36:])),
		rootCluster:       binary.LittleEndian.Uint32(bs[44:]),
	}
	if g.bytesPerSector < 512 || g.sectorsPerCluster == 0 || g.fats == 0 || g.sectorsPerFAT == 0 {
		return g, fmt.Errorf("FAT boot sector of %s: not FAT32", f.dev.Path())
	}
	return g, nil
}

func (g fatGeometry) fatOffset(copy int64, cluster uint32) int64 {
	return (g.reservedSectors+copy*g.sectorsPerFAT)*g.bytesPerSector + int64(cluster)*4
}

func (g fatGeometry) clusterOffset(cluster uint32) int64 {
	data := (g.reservedSectors + g.fats*g.sectorsPerFAT) * g.bytesPerSector
	return data + int64(cluster-2)*g.sectorsPerCluster*g.bytesPerSector
}

func (g fatGeometry) clusterSize() int64 { return g.sectorsPerCluster * g.bytesPerSector }

// chainOf returns the cluster chain of the file name, or nil for an empty file.
func (f *FAT) chainOf(name string) ([]uint32, error) {
	fh, err := f.fs.OpenFile(abs(name), os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer fh.Close()
	ff, ok := fh.(*fat12.File)
	if !ok {
		return nil, fmt.Errorf("open %s: go-diskfs returned %T, not a FAT file", name, fh)
	}
	if st, err := ff.Stat(); err == nil && st.Size() == 0 {
		return nil, nil
	}
	return ff.GetClusterChain()
}

// freeClusters marks chain free in every FAT copy, flushes, and reads the
// filesystem again.
func (f *FAT) freeClusters(chain []uint32) error {
	if len(chain) == 0 {
		return nil
	}
	g, err := f.geometry()
	if err != nil {
		return err
	}
	zero := make([]byte, 4)
	for c := range g.fats {
		for _, n := range chain {
			if n < 2 {
				continue
			}
			if _, err := f.dev.WriteAt(zero, g.fatOffset(c, n)); err != nil {
				return fmt.Errorf("free cluster %d on %s: %w", n, f.dev.Path(), err)
			}
		}
	}
	if err := f.dev.Flush(); err != nil {
		return fmt.Errorf("flush %s: %w", f.dev.Path(), err)
	}
	return f.reread()
}

func (f *FAT) reread() error {
	fs, err := fat32.Read(blockfile.Storage(f.dev), f.dev.Size(), 0, int64(f.dev.LogicalSectorSize()))
	if err != nil {
		return fmt.Errorf("read FAT32 on %s again: %w", f.dev.Path(), err)
	}
	f.fs = fs
	return nil
}

// fixDotDot sets the ".." entry of every directory in the root to cluster 0.
func (f *FAT) fixDotDot() error {
	g, err := f.geometry()
	if err != nil {
		return err
	}
	root := make([]byte, g.clusterSize())
	// The root of an ESP fits in its first cluster (a handful of entries);
	// go-diskfs allocates it that way, and a longer root is left as it is.
	if _, err := f.dev.ReadAt(root, g.clusterOffset(g.rootCluster)); err != nil {
		return fmt.Errorf("read FAT root directory: %w", err)
	}
	fixed := false
	for off := 0; off+32 <= len(root); off += 32 {
		e := root[off : off+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xe5 || e[11] == 0x0f || e[11]&0x10 == 0 || e[0] == '.' {
			continue
		}
		first := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
		if first < 2 {
			continue
		}
		dotdot := make([]byte, 32)
		at := g.clusterOffset(first) + 32
		if _, err := f.dev.ReadAt(dotdot, at); err != nil {
			return fmt.Errorf("read directory cluster %d: %w", first, err)
		}
		if string(dotdot[:2]) != ".." || (binary.LittleEndian.Uint16(dotdot[20:]) == 0 && binary.LittleEndian.Uint16(dotdot[26:]) == 0) {
			continue
		}
		binary.LittleEndian.PutUint16(dotdot[20:], 0)
		binary.LittleEndian.PutUint16(dotdot[26:], 0)
		if _, err := f.dev.WriteAt(dotdot, at); err != nil {
			return fmt.Errorf("fix '..' of directory cluster %d: %w", first, err)
		}
		fixed = true
	}
	if !fixed {
		return nil
	}
	if err := f.dev.Flush(); err != nil {
		return err
	}
	return f.reread()
}

// firstFAT returns the ESP as go-diskfs should see it: reads of the second FAT
// copy are served from the first. Writes go to the disk unchanged; go-diskfs
// writes both copies from one table, so the next write makes them equal again.
func (f *FAT) firstFAT(g fatGeometry) device.Block {
	if g.fats < 2 {
		return f.dev
	}
	size := g.sectorsPerFAT * g.bytesPerSector
	return &firstFATBlock{Block: f.dev, second: g.fatOffset(1, 0), size: size}
}

// firstFATBlock is a device.Block whose second FAT copy reads as the first.
type firstFATBlock struct {
	device.Block
	second, size int64 // where the second copy starts, and the size of one copy
}

// ReadAt reads p at off, taking the bytes of the second FAT from the first.
func (b *firstFATBlock) ReadAt(p []byte, off int64) (int, error) {
	n, err := b.Block.ReadAt(p, off)
	if err != nil && n < len(p) {
		return n, err
	}
	lo, hi := max(off, b.second), min(off+int64(len(p)), b.second+b.size)
	if lo < hi {
		if _, err := b.Block.ReadAt(p[lo-off:hi-off], lo-b.size); err != nil {
			return n, err
		}
	}
	return n, err
}
