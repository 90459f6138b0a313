// Package mkext4 makes an empty ext4 filesystem, as `mke2fs -t ext4 -b 4096 -E
// lazy_itable_init=1,lazy_journal_init=1,nodiscard` does, in-process and through
// any io.WriterAt, so an install needs no mke2fs (and no C library) in the
// initramfs and its writes go through nodeinit's device edge like every other.
//
// The filesystem has Debian's ext4 features (has_journal, ext_attr, dir_index,
// filetype, extent, 64bit, flex_bg, sparse_super, large_file, huge_file,
// dir_nlink, extra_isize and metadata_csum with crc32c) except resize_inode,
// the reserve of descriptor blocks for growing while mounted: a mounted grow
// that needs more descriptor blocks than the filesystem has is refused, and
// resize2fs grows it unmounted instead (a test grows 1 GiB to 200 GiB).
// It holds the root directory and lost+found, and a journal of mke2fs' default
// size, capped at 128 MiB.
//
// Like mke2fs' lazy mode it writes only what it must: the superblocks and
// descriptor tables, the block bitmaps, group 0's inode bitmap and first inode
// table block, the two directories and the journal's superblock. The other inode
// tables are marked not zeroed, and the kernel zeroes them in the background
// after the first mount; the journal's blocks are left as they are, which its
// superblock's start of 0 makes safe. Formatting 1 TiB writes 42 MiB, most of
// it the block bitmaps.
//
// go-diskfs has an ext4 writer, but v1.9.4 builds every group's inode table
// eagerly (minutes and gigabytes of writes for 1 TiB), and e2fsck -fn does not
// call its output clean in every case; see disk/mkfs.go.
package mkext4

import (
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// Geometry and on-disk constants.
const (
	BlockSize      = 4096
	blocksPerGroup = BlockSize * 8
	inodeSize      = 256
	inodesPerBlock = BlockSize / inodeSize
	descSize       = 64
	flexGroups     = 16 // log_groups_per_flex 4, mke2fs' default
	firstInode     = 11 // the first inode that is not reserved: lost+found
	rootInode      = 2
	journalInode   = 8

	// MinSize is the smallest filesystem made: mke2fs makes none with a journal
	// below 2048 blocks.
	MinSize = 2048 * BlockSize
	// maxJournalBlocks caps the journal at one extent and one block group.
	maxJournalBlocks = blocksPerGroup
	lostFoundBlocks  = 4 // 16 KiB, so e2fsck can reconnect files without allocating
)

// Options are what the caller chooses; the rest is fixed.
type Options struct {
	Label string   // up to 16 bytes
	UUID  [16]byte // the filesystem UUID
	// HashSeed seeds the directory hash; zero makes a random one.
	HashSeed [16]byte
	// Now stamps the superblock and the directories; zero means time.Now.
	Now time.Time
}

// Layout is what Format made.
type Layout struct {
	Blocks, Inodes   uint64 // totals
	Groups           int
	InodesPerGroup   uint32
	JournalBlocks    uint32
	FreeBlocks       uint64
	BytesWritten     int64
	ReservedBlocks   uint64 // kept for root: 5%, as mke2fs' -m default
	InodeTableBlocks uint32 // per group
	DescriptorBlocks uint32 // per copy
}

// Format writes an empty ext4 filesystem over the first size bytes of w. A size
// that is not a multiple of the block size is rounded down. It writes blocks of
// BlockSize at aligned offsets only, so a 4Kn device takes them as they are.
func Format(w io.WriterAt, size int64, o Options) (Layout, error) {
	if len(o.Label) > 16 {
		return Layout{}, fmt.Errorf("ext4: label %q is longer than 16 bytes", o.Label)
	}
	if size < MinSize {
		return Layout{}, fmt.Errorf("ext4: %d bytes is below the %d MiB an ext4 filesystem with a journal needs", size, MinSize>>20)
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.HashSeed == ([16]byte{}) {
		if _, err := rand.Read(o.HashSeed[:]); err != nil {
			return Layout{}, fmt.Errorf("ext4: hash seed: %w", err)
		}
	}
	g, err := newGeometry(uint64(size / BlockSize))
	if err != nil {
		return Layout{}, err
	}
	f := &formatter{g: g, o: o, w: w, seed: checksum(^uint32(0), o.UUID[:])}
	if err := f.write(); err != nil {
		return Layout{}, err
	}
	return Layout{
		Blocks: g.blocks, Inodes: uint64(g.ipg) * uint64(g.groups), Groups: int(g.groups), InodesPerGroup: g.ipg,
		JournalBlocks: g.journalBlocks, FreeBlocks: g.free, BytesWritten: f.written,
		ReservedBlocks: g.reserved(), InodeTableBlocks: g.itb, DescriptorBlocks: g.gdtBlocks,
	}, nil
}

// extent is a run of blocks.
type extent struct{ start, n uint64 }

func (e extent) end() uint64 { return e.start + e.n }

// geometry is where everything goes.
type geometry struct {
	blocks    uint64
	groups    uint32
	ipg       uint32 // inodes per group
	itb       uint32 // inode table blocks per group
	gdtBlocks uint32
	// root, lostFound and journal are the data blocks of inodes 2, 11 and 8.
	root, lostFound, journal extent
	journalBlocks            uint32
	free                     uint64 // free blocks in all groups, counted once the layout is set
}

// inodeRatio is mke2fs.conf's bytes per inode for a filesystem of this size:
// the floppy, small, default, big and huge types.
func inodeRatio(bytes uint64) uint64 {
	switch {
	case bytes < 3<<20:
		return 8192
	case bytes < 512<<20:
		return 4096
	case bytes < 4<<40:
		return 16384
	case bytes < 16<<40:
		return 32768
	default:
		return 65536
	}
}

// journalSize is e2fsprogs' default journal size in blocks
// (ext2fs_default_journal_size), capped at maxJournalBlocks.
func journalSize(blocks uint64) uint32 {
	switch {
	case blocks < 32768:
		return 1024
	case blocks < 256<<10:
		return 4096
	case blocks < 512<<10:
		return 8192
	case blocks < 4096<<10:
		return 16384
	default:
		return maxJournalBlocks
	}
}

func newGeometry(blocks uint64) (*geometry, error) {
	if blocks > 1<<48 {
		return nil, fmt.Errorf("ext4: %d blocks is beyond the 64-bit block count", blocks)
	}
	g := &geometry{blocks: blocks}
	// The inode count comes from the size asked for, also when a short
	// last group is then dropped, as in mke2fs.
	inodes := blocks * BlockSize / inodeRatio(blocks*BlockSize)
	for {
		g.groups = uint32((g.blocks + blocksPerGroup - 1) / blocksPerGroup)
		ipg := (inodes + uint64(g.groups) - 1) / uint64(g.groups)
		ipg = (ipg + inodesPerBlock - 1) / inodesPerBlock * inodesPerBlock
		ipg = max(ipg, inodesPerBlock)
		ipg = min(ipg, blocksPerGroup)
		if ipg*uint64(g.groups) > 1<<32-1 {
			ipg = (1<<32 - 1) / uint64(g.groups) / inodesPerBlock * inodesPerBlock
		}
		g.ipg = uint32(ipg)
		g.itb = g.ipg / inodesPerBlock
		g.gdtBlocks = uint32((uint64(g.groups)*descSize + BlockSize - 1) / BlockSize)
		// A last group too small for its own metadata and some data is
		// dropped, as mke2fs drops it.
		last := g.groups - 1
		if last > 0 && g.groupBlocks(last) < g.overhead(last)+64 {
			g.blocks = uint64(last) * blocksPerGroup
			continue
		}
		break
	}
	if g.blocks < MinSize/BlockSize {
		return nil, fmt.Errorf("ext4: too small for an ext4 filesystem with a journal")
	}
	for f := uint32(0); f < g.groups; f += flexGroups {
		if end := g.flexEnd(f); end > g.groupStart(f)+g.groupBlocks(f) {
			return nil, fmt.Errorf("ext4: the metadata of groups %d-%d (to block %d) does not fit in group %d", f, min(f+flexGroups, g.groups)-1, end, f)
		}
	}
	g.journalBlocks = journalSize(g.blocks)
	free := g.flexEnd(0)
	g.root = extent{free, 1}
	g.lostFound = extent{free + 1, lostFoundBlocks}
	g.journal = extent{free + 1 + lostFoundBlocks, uint64(g.journalBlocks)}
	if g.journal.end() > g.groupBlocks(0) {
		// A filesystem of 16 GiB or more: group 2 has no superblock copy and
		// no metadata, so its whole 128 MiB is free.
		if g.groups < 4 || g.journalBlocks > blocksPerGroup {
			return nil, fmt.Errorf("ext4: no room for a journal of %d blocks", g.journalBlocks)
		}
		g.journal = extent{g.groupStart(2), uint64(g.journalBlocks)}
	}
	for n := uint32(0); n < g.groups; n++ {
		g.free += g.groupFree(n)
	}
	return g, nil
}

func (g *geometry) groupStart(n uint32) uint64 { return uint64(n) * blocksPerGroup }

func (g *geometry) groupBlocks(n uint32) uint64 {
	return min(blocksPerGroup, g.blocks-g.groupStart(n))
}

// hasSuper tells whether group n holds a superblock copy (sparse_super: 0, 1
// and the powers of 3, 5 and 7).
func hasSuper(n uint32) bool {
	if n <= 1 {
		return true
	}
	for _, b := range []uint32{3, 5, 7} {
		p := b
		for p < n {
			p *= b
		}
		if p == n {
			return true
		}
	}
	return false
}

// superBlocks is the superblock and descriptor table copy at the start of
// group n, if it has one.
func (g *geometry) superBlocks(n uint32) uint64 {
	if hasSuper(n) {
		return 1 + uint64(g.gdtBlocks)
	}
	return 0
}

// flexSize is the number of groups in the flex group that starts at leader.
func (g *geometry) flexSize(leader uint32) uint32 { return min(flexGroups, g.groups-leader) }

// Flex group metadata sits at the start of its first group, after any
// superblock copy: the block bitmaps, then the inode bitmaps, then the inode
// tables of its groups.
func (g *geometry) flexBase(leader uint32) uint64 {
	return g.groupStart(leader) + g.superBlocks(leader)
}

func (g *geometry) flexEnd(leader uint32) uint64 {
	n := uint64(g.flexSize(leader))
	return g.flexBase(leader) + 2*n + n*uint64(g.itb)
}

func leaderOf(n uint32) uint32 { return n / flexGroups * flexGroups }

func (g *geometry) blockBitmap(n uint32) uint64 {
	return g.flexBase(leaderOf(n)) + uint64(n-leaderOf(n))
}

func (g *geometry) inodeBitmap(n uint32) uint64 {
	l := leaderOf(n)
	return g.flexBase(l) + uint64(g.flexSize(l)) + uint64(n-l)
}

func (g *geometry) inodeTable(n uint32) uint64 {
	l := leaderOf(n)
	return g.flexBase(l) + 2*uint64(g.flexSize(l)) + uint64(n-l)*uint64(g.itb)
}

// overhead is the metadata blocks inside group n's own range.
func (g *geometry) overhead(n uint32) uint64 {
	o := g.superBlocks(n)
	if n%flexGroups == 0 {
		o += g.flexEnd(n) - g.flexBase(n)
	}
	return o
}

// used is every allocated run inside group n, sorted.
func (g *geometry) used(n uint32) []extent {
	start := g.groupStart(n)
	var u []extent
	if s := g.superBlocks(n); s > 0 {
		u = append(u, extent{start, s})
	}
	if n%flexGroups == 0 {
		u = append(u, extent{g.flexBase(n), g.flexEnd(n) - g.flexBase(n)})
	}
	for _, e := range []extent{g.root, g.lostFound, g.journal} {
		if e.start >= start && e.start < start+g.groupBlocks(n) {
			u = append(u, e)
		}
	}
	slices.SortFunc(u, func(a, b extent) int { return cmp.Compare(a.start, b.start) })
	return u
}

func (g *geometry) groupFree(n uint32) uint64 {
	free := g.groupBlocks(n)
	for _, e := range g.used(n) {
		free -= e.n
	}
	return free
}

func (g *geometry) reserved() uint64 { return g.blocks * 5 / 100 }

// formatter writes one filesystem.
type formatter struct {
	g       *geometry
	o       Options
	w       io.WriterAt
	seed    uint32 // crc32c of the UUID: every metadata checksum starts from it
	written int64
}

func (f *formatter) writeBlocks(block uint64, p []byte) error {
	if len(p)%BlockSize != 0 {
		return errors.New("ext4: internal error: a write that is not whole blocks")
	}
	if _, err := f.w.WriteAt(p, int64(block)*BlockSize); err != nil {
		return fmt.Errorf("ext4: write block %d: %w", block, err)
	}
	f.written += int64(len(p))
	return nil
}

// write puts everything down: the data blocks first and the superblocks last,
// so a filesystem interrupted half-way has no valid primary superblock.
func (f *formatter) write() error {
	g := f.g
	if err := f.writeDirectories(); err != nil {
		return err
	}
	if err := f.writeBlocks(g.journal.start, f.journalSuperblock()); err != nil {
		return err
	}
	if err := f.writeBlocks(g.inodeTable(0), f.firstInodes()); err != nil {
		return err
	}
	if err := f.writeBlocks(g.inodeBitmap(0), f.inodeBitmap0()); err != nil {
		return err
	}
	bbCsum := make([]uint32, g.groups)
	for l := uint32(0); l < g.groups; l += flexGroups {
		n := g.flexSize(l)
		buf := make([]byte, int(n)*BlockSize)
		for i := uint32(0); i < n; i++ {
			bm := buf[int(i)*BlockSize : int(i+1)*BlockSize]
			f.blockBitmap(l+i, bm)
			bbCsum[l+i] = checksum(f.seed, bm)
		}
		if err := f.writeBlocks(g.blockBitmap(l), buf); err != nil {
			return err
		}
	}
	gdt := f.descriptors(bbCsum)
	for n := g.groups; n > 0; n-- { // the backups first, the primary last
		grp := n - 1
		if !hasSuper(grp) {
			continue
		}
		buf := make([]byte, BlockSize, BlockSize*(1+int(g.gdtBlocks)))
		sb := f.superblock(uint16(min(grp, 0xffff)))
		if grp == 0 {
			copy(buf[1024:], sb) // the first 1 KiB stays free for a boot sector
		} else {
			copy(buf, sb)
		}
		buf = append(buf, gdt...)
		if err := f.writeBlocks(g.groupStart(grp), buf); err != nil {
			return err
		}
	}
	return nil
}

// blockBitmap fills bm with group n's allocation: its metadata and data runs,
// and the padding past the end of a short last group.
func (f *formatter) blockBitmap(n uint32, bm []byte) {
	clear(bm)
	start := f.g.groupStart(n)
	for _, e := range f.g.used(n) {
		setBits(bm, e.start-start, e.n)
	}
	if size := f.g.groupBlocks(n); size < blocksPerGroup {
		setBits(bm, size, blocksPerGroup-size)
	}
}

func setBits(bm []byte, from, n uint64) {
	for b := from; b < from+n; b++ {
		bm[b/8] |= 1 << (b % 8)
	}
}

// inodeBitmap0 is group 0's inode bitmap: the reserved inodes and
// lost+found, then the padding past inodes per group.
func (f *formatter) inodeBitmap0() []byte {
	bm := make([]byte, BlockSize)
	setBits(bm, 0, firstInode)
	setBits(bm, uint64(f.g.ipg), BlockSize*8-uint64(f.g.ipg))
	return bm
}

// Group descriptor flags.
const (
	bgInodeUninit = 0x1
)

func (f *formatter) descriptors(bbCsum []uint32) []byte {
	g := f.g
	gdt := make([]byte, int(g.gdtBlocks)*BlockSize)
	ib0 := checksum(f.seed, f.inodeBitmap0()[:g.ipg/8])
	for n := uint32(0); n < g.groups; n++ {
		d := gdt[n*descSize : (n+1)*descSize]
		put64split(d, 0x00, 0x20, g.blockBitmap(n))
		put64split(d, 0x04, 0x24, g.inodeBitmap(n))
		put64split(d, 0x08, 0x28, g.inodeTable(n))
		put32split(d, 0x0C, 0x2C, uint32(g.groupFree(n)))
		freeInodes, dirs, unused, flags, ibCsum := g.ipg, uint32(0), g.ipg, uint16(bgInodeUninit), uint32(0)
		if n == 0 {
			freeInodes, dirs, unused, flags, ibCsum = g.ipg-firstInode, 2, g.ipg-firstInode, 0, ib0
		}
		put32split(d, 0x0E, 0x2E, freeInodes)
		put32split(d, 0x10, 0x30, dirs)
		binary.LittleEndian.PutUint16(d[0x12:], flags)
		put32split(d, 0x18, 0x38, bbCsum[n])
		put32split(d, 0x1A, 0x3A, ibCsum)
		put32split(d, 0x1C, 0x32, unused)
		var le [4]byte
		binary.LittleEndian.PutUint32(le[:], n)
		c := checksum(checksum(f.seed, le[:]), d) // the checksum field is still zero
		binary.LittleEndian.PutUint16(d[0x1E:], uint16(c))
	}
	return gdt
}

// put64split stores v's low 32 bits at lo and its high 32 bits at hi.
func put64split(b []byte, lo, hi int, v uint64) {
	binary.LittleEndian.PutUint32(b[lo:], uint32(v))
	binary.LittleEndian.PutUint32(b[hi:], uint32(v>>32))
}

// put32split stores v's low 16 bits at lo and its high 16 bits at hi.
func put32split(b []byte, lo, hi int, v uint32) {
	binary.LittleEndian.PutUint16(b[lo:], uint16(v))
	binary.LittleEndian.PutUint16(b[hi:], uint16(v>>16))
}
