package mkext4

import (
	"encoding/binary"
	"hash/crc32"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checksum is ext4's crc32c: the raw register, with no inversion before or
// after (the kernel's ext4_chksum and e2fsprogs' ext2fs_crc32c_le).
func checksum(seed uint32, p []byte) uint32 {
	return ^crc32.Update(^seed, castagnoli, p)
}

// Feature bits.
const (
	compatHasJournal = 0x4
	compatExtAttr    = 0x8
	compatDirIndex   = 0x20

	incompatFiletype = 0x2
	incompatExtents  = 0x40
	incompat64bit    = 0x80
	incompatFlexBG   = 0x200

	roCompatSparseSuper  = 0x1
	roCompatLargeFile    = 0x2
	roCompatHugeFile     = 0x8
	roCompatDirNlink     = 0x20
	roCompatExtraIsize   = 0x40
	roCompatMetadataCsum = 0x400
)

// superblock is the 1024-byte superblock, with groupNr as the copy's group.
func (f *formatter) superblock(groupNr uint16) []byte {
	g, o := f.g, f.o
	sb := make([]byte, 1024)
	le := binary.LittleEndian
	now := uint32(o.Now.Unix())
	inodes := g.ipg * g.groups
	le.PutUint32(sb[0x00:], inodes)
	le.PutUint32(sb[0x04:], uint32(g.blocks))
	le.PutUint32(sb[0x08:], uint32(g.reserved()))
	le.PutUint32(sb[0x0C:], uint32(g.free))
	le.PutUint32(sb[0x10:], inodes-firstInode)
	le.PutUint32(sb[0x14:], 0) // first data block: 0 with 4 KiB blocks
	le.PutUint32(sb[0x18:], 2) // log2(block size) - 10
	le.PutUint32(sb[0x1C:], 2) // log2(cluster size) - 10
	le.PutUint32(sb[0x20:], blocksPerGroup)
	le.PutUint32(sb[0x24:], blocksPerGroup)
	le.PutUint32(sb[0x28:], g.ipg)
	le.PutUint32(sb[0x30:], now)    // write time
	le.PutUint16(sb[0x36:], 0xffff) // max mount count -1: no forced checks
	le.PutUint16(sb[0x38:], 0xEF53)
	le.PutUint16(sb[0x3A:], 1) // clean
	le.PutUint16(sb[0x3C:], 1) // errors: continue
	le.PutUint32(sb[0x40:], now)
	le.PutUint32(sb[0x4C:], 1) // dynamic revision
	le.PutUint32(sb[0x54:], firstInode)
	le.PutUint16(sb[0x58:], inodeSize)
	le.PutUint16(sb[0x5A:], groupNr)
	le.PutUint32(sb[0x5C:], compatHasJournal|compatExtAttr|compatDirIndex)
	le.PutUint32(sb[0x60:], incompatFiletype|incompatExtents|incompat64bit|incompatFlexBG)
	le.PutUint32(sb[0x64:], roCompatSparseSuper|roCompatLargeFile|roCompatHugeFile|roCompatDirNlink|roCompatExtraIsize|roCompatMetadataCsum)
	copy(sb[0x68:0x78], o.UUID[:])
	copy(sb[0x78:0x88], o.Label)
	le.PutUint32(sb[0xE0:], journalInode)
	copy(sb[0xEC:0xFC], o.HashSeed[:])
	sb[0xFC] = 1 // half_md4 directory hash
	sb[0xFD] = 1 // the journal inode's blocks are backed up in s_jnl_blocks
	le.PutUint16(sb[0xFE:], descSize)
	le.PutUint32(sb[0x100:], 0x4|0x8) // default mount options: user_xattr, acl
	le.PutUint32(sb[0x108:], now)     // mkfs time
	jnl := f.journalInode()
	copy(sb[0x10C:0x10C+60], jnl[0x28:0x28+60])                // i_block
	le.PutUint32(sb[0x10C+15*4:], le.Uint32(jnl[0x6C:]))       // i_size_high
	le.PutUint32(sb[0x10C+16*4:], le.Uint32(jnl[0x04:]))       // i_size
	le.PutUint32(sb[0x150:], uint32(g.blocks>>32))             // blocks count, high
	le.PutUint32(sb[0x154:], uint32(g.reserved()>>32))         // reserved, high
	le.PutUint32(sb[0x158:], uint32(g.free>>32))               // free, high
	le.PutUint16(sb[0x15C:], 32)                               // min extra isize
	le.PutUint16(sb[0x15E:], 32)                               // want extra isize
	le.PutUint32(sb[0x160:], 0x1)                              // signed directory hash (x86 char)
	sb[0x174] = 4                                              // log2(groups per flex)
	sb[0x175] = 1                                              // checksum type: crc32c
	le.PutUint32(sb[0x3FC:], checksum(^uint32(0), sb[:0x3FC])) // last: the superblock's own
	return sb
}

// Inode fields.
const (
	modeDir      = 0x4000
	modeReg      = 0x8000
	flagExtents  = 0x80000
	extentMagic  = 0xF30A
	extraIsize   = 32
	fileTypeDir  = 2
	dirTailBytes = 12
)

// inode is one 256-byte inode of mode and links whose data is the run e (one
// extent), without its checksum.
func (f *formatter) inode(mode uint16, links uint16, e extent) []byte {
	in := make([]byte, inodeSize)
	le := binary.LittleEndian
	now := uint32(f.o.Now.Unix())
	size := e.n * BlockSize
	le.PutUint16(in[0x00:], mode)
	le.PutUint32(in[0x04:], uint32(size))
	le.PutUint32(in[0x08:], now) // atime
	le.PutUint32(in[0x0C:], now) // ctime
	le.PutUint32(in[0x10:], now) // mtime
	le.PutUint16(in[0x1A:], links)
	le.PutUint32(in[0x1C:], uint32(e.n*BlockSize/512)) // 512-byte sectors
	le.PutUint32(in[0x20:], flagExtents)
	// The extent tree, in i_block: a header and one leaf extent.
	le.PutUint16(in[0x28:], extentMagic)
	le.PutUint16(in[0x2A:], 1) // entries
	le.PutUint16(in[0x2C:], 4) // max entries in the inode
	le.PutUint16(in[0x2E:], 0) // depth
	le.PutUint32(in[0x34:], 0) // first logical block
	le.PutUint16(in[0x38:], uint16(e.n))
	le.PutUint16(in[0x3A:], uint16(e.start>>32))
	le.PutUint32(in[0x3C:], uint32(e.start))
	le.PutUint32(in[0x6C:], uint32(size>>32))
	le.PutUint16(in[0x80:], extraIsize)
	le.PutUint32(in[0x90:], now) // crtime
	return in
}

func (f *formatter) journalInode() []byte {
	return f.inode(modeReg|0o600, 1, f.g.journal)
}

// inodeSeed is the checksum seed of inode ino (generation 0).
func (f *formatter) inodeSeed(ino uint32) uint32 {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], ino)
	s := checksum(f.seed, b[:])
	binary.LittleEndian.PutUint32(b[:], 0)
	return checksum(s, b[:])
}

// sealInode sets in's checksum: lo 16 bits at 0x7C, and hi 16 bits at 0x82
// when the extra fields reach that far.
func (f *formatter) sealInode(ino uint32, in []byte) {
	le := binary.LittleEndian
	le.PutUint16(in[0x7C:], 0)
	hasHi := le.Uint16(in[0x80:]) >= 4
	if hasHi {
		le.PutUint16(in[0x82:], 0)
	}
	c := checksum(f.inodeSeed(ino), in)
	le.PutUint16(in[0x7C:], uint16(c))
	if hasHi {
		le.PutUint16(in[0x82:], uint16(c>>16))
	}
}

// firstInodes is the first block of group 0's inode table: the reserved
// inodes (zero but checksummed, as mke2fs leaves them), the root directory,
// the journal and lost+found.
func (f *formatter) firstInodes() []byte {
	blk := make([]byte, BlockSize)
	g := f.g
	for ino := uint32(1); ino <= firstInode; ino++ {
		in := blk[(ino-1)*inodeSize : ino*inodeSize]
		switch ino {
		case rootInode:
			copy(in, f.inode(modeDir|0o755, 3, g.root))
		case journalInode:
			copy(in, f.journalInode())
		case firstInode:
			copy(in, f.inode(modeDir|0o700, 2, g.lostFound))
		}
		f.sealInode(ino, in)
	}
	return blk
}

// dirent appends a directory entry of recLen bytes.
func dirent(b []byte, ino uint32, name string, recLen int, ft byte) []byte {
	e := make([]byte, recLen)
	binary.LittleEndian.PutUint32(e[0:], ino)
	binary.LittleEndian.PutUint16(e[4:], uint16(recLen))
	e[6] = byte(len(name))
	e[7] = ft
	copy(e[8:], name)
	return append(b, e...)
}

// sealDirBlock appends the checksum tail to a directory block of
// BlockSize-12 bytes of entries.
func (f *formatter) sealDirBlock(ino uint32, b []byte) []byte {
	tail := make([]byte, dirTailBytes)
	binary.LittleEndian.PutUint16(tail[4:], dirTailBytes)
	tail[7] = 0xDE
	binary.LittleEndian.PutUint32(tail[8:], checksum(f.inodeSeed(ino), b))
	return append(b, tail...)
}

// writeDirectories writes the root's block and lost+found's four: they are
// contiguous.
func (f *formatter) writeDirectories() error {
	const room = BlockSize - dirTailBytes
	var root []byte
	root = dirent(root, rootInode, ".", 12, fileTypeDir)
	root = dirent(root, rootInode, "..", 12, fileTypeDir)
	root = dirent(root, firstInode, "lost+found", room-24, fileTypeDir)
	buf := f.sealDirBlock(rootInode, root)
	var lf []byte
	lf = dirent(lf, firstInode, ".", 12, fileTypeDir)
	lf = dirent(lf, rootInode, "..", room-12, fileTypeDir)
	buf = append(buf, f.sealDirBlock(firstInode, lf)...)
	for i := 1; i < lostFoundBlocks; i++ {
		buf = append(buf, f.sealDirBlock(firstInode, dirent(nil, 0, "", room, 0))...)
	}
	return f.writeBlocks(f.g.root.start, buf)
}

// journalSuperblock is the jbd2 (version 2, big-endian) superblock of an
// empty journal: start 0 means nothing to replay, whatever its other blocks
// hold.
func (f *formatter) journalSuperblock() []byte {
	b := make([]byte, BlockSize)
	be := binary.BigEndian
	be.PutUint32(b[0x00:], 0xC03B3998) // magic
	be.PutUint32(b[0x04:], 4)          // superblock v2
	be.PutUint32(b[0x0C:], BlockSize)
	be.PutUint32(b[0x10:], f.g.journalBlocks) // maxlen
	be.PutUint32(b[0x14:], 1)                 // first log block
	be.PutUint32(b[0x18:], 1)                 // sequence
	copy(b[0x30:0x40], f.o.UUID[:])
	be.PutUint32(b[0x40:], 1) // users
	return b
}
