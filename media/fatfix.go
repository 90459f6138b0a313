package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
)

// fixFAT32 repairs two defects of the FAT32 volumes go-diskfs v1.9.4 writes, found by
// `fsck.vfat -n`: the ".." entry of a directory in the root names the root's cluster
// instead of 0 (the FAT specification's "parent is the root" value), and the FSInfo free
// cluster count is left "unknown". Firmware tolerates both, but an image that fails
// fsck is not one to ship, so they are fixed here, in this one place, after go-diskfs has
// written the files.
func fixFAT32(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	bs := make([]byte, 512)
	if _, err := f.ReadAt(bs, 0); err != nil {
		return fmt.Errorf("read FAT boot sector: %w", err)
	}
	le := binary.LittleEndian
	bps := int64(le.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(le.Uint16(bs[14:]))
	fats := int64(bs[16])
	total := int64(le.Uint32(bs[32:]))
	fatSize := int64(le.Uint32(bs[36:]))
	root := le.Uint32(bs[44:])
	fsinfo := int64(le.Uint16(bs[48:]))
	if bps == 0 || spc == 0 || fatSize == 0 || root < 2 {
		return errors.New("not a FAT32 boot sector")
	}
	dataStart := reserved + fats*fatSize
	clusters := uint32((total - dataStart) / spc)
	fat := make([]byte, fatSize*bps)
	if _, err := f.ReadAt(fat, reserved*bps); err != nil {
		return fmt.Errorf("read FAT: %w", err)
	}
	next := func(c uint32) uint32 { return le.Uint32(fat[4*c:]) & 0x0fffffff }
	clusterOff := func(c uint32) int64 { return (dataStart + int64(c-2)*spc) * bps }
	clusterSize := spc * bps

	// Directories in the root: their ".." must be cluster 0.
	for c := root; c >= 2 && c < 0x0ffffff8 && c < clusters+2; c = next(c) {
		dir := make([]byte, clusterSize)
		if _, err := f.ReadAt(dir, clusterOff(c)); err != nil {
			return err
		}
		for off := 0; off+32 <= len(dir); off += 32 {
			e := dir[off : off+32]
			if e[0] == 0 {
				break
			}
			if e[0] == 0xe5 || e[11] == 0x0f || e[11]&0x10 == 0 || e[0] == '.' {
				continue
			}
			sub := uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:]))
			if sub < 2 || sub >= clusters+2 {
				continue
			}
			dotdot := make([]byte, 32)
			at := clusterOff(sub) + 32
			if _, err := f.ReadAt(dotdot, at); err != nil {
				return err
			}
			if string(dotdot[:11]) != "..         " {
				continue
			}
			le.PutUint16(dotdot[20:], 0)
			le.PutUint16(dotdot[26:], 0)
			if _, err := f.WriteAt(dotdot, at); err != nil {
				return err
			}
		}
	}

	// FSInfo: the free cluster count and the next free cluster hint.
	if fsinfo == 0 || fsinfo == 0xffff {
		return nil
	}
	var free, firstFree uint32 = 0, 0xffffffff
	for c := uint32(2); c < clusters+2; c++ {
		if next(c) == 0 {
			free++
			if firstFree == 0xffffffff {
				firstFree = c
			}
		}
	}
	info := make([]byte, 512)
	if _, err := f.ReadAt(info, fsinfo*bps); err != nil {
		return err
	}
	if le.Uint32(info[0:]) != 0x41615252 || le.Uint32(info[484:]) != 0x61417272 {
		return errors.New("no FSInfo sector")
	}
	le.PutUint32(info[488:], free)
	le.PutUint32(info[492:], firstFree)
	if _, err := f.WriteAt(info, fsinfo*bps); err != nil {
		return err
	}
	return f.Sync()
}
