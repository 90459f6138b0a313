package disk

import (
	"encoding/binary"
	"fmt"
)

// How nodeinit makes filesystems (MakeFS):
//
//   - vfat (the ESP): go-diskfs' fat32.Create, in-process. It writes FAT32 with
//     the disk's real sector size (512 or 4096; the kernel refuses to mount a
//     FAT whose sector is smaller than the device's), and the result is judged
//     clean by fsck.vfat -n and mounted by the kernel in the root tests.
//   - ext4 (config, logging, data): disk/mkext4, in-process, what mke2fs -t
//     ext4 -b 4096 -E lazy_itable_init=1,lazy_journal_init=1 makes (its test
//     compares them with dumpe2fs, and e2fsck -fn calls every size clean). It
//     replaced mke2fs, which the initramfs had to carry with its C libraries
//     (1.5 MB compressed). go-diskfs v1.9.4's ext4 writer builds every block
//     group's inode table eagerly, so a 1 TiB partition takes minutes and
//     gigabytes of writes, and e2fsck -fn does not call its output clean in
//     every case; mkext4 formats 1 TiB with 42 MiB of writes.
//   - swap: the one-page swap header, written here (swapHeader); blkid and
//     swaplabel read it.

// MkfsOptions tunes MakeFS.
type MkfsOptions struct {
	// SectorSize is the logical sector size to format for; 0 asks the device
	// (512 for an image file).
	SectorSize int
	// UUID is the filesystem UUID (ext4, swap) in the usual 8-4-4-4-12 form;
	// empty makes a random one. vfat has a 32-bit volume ID instead and
	// ignores it.
	UUID string
}

// minSwapPages is the smallest swap area mkswap and the kernel accept.
const minSwapPages = 10

// SwapHeader returns the first page of a swap area of size bytes in the
// kernel's "SWAPSPACE2" (version 1) format: version, last usable page, no bad
// pages, UUID and label, and the magic in the page's last 10 bytes.
func SwapHeader(size int64, pageSize int, label string, uuid [16]byte) ([]byte, error) {
	if pageSize < 4096 || pageSize&(pageSize-1) != 0 {
		return nil, fmt.Errorf("swap: page size %d is not a power of two >= 4096", pageSize)
	}
	pages := size / int64(pageSize)
	if pages < minSwapPages {
		return nil, fmt.Errorf("swap: %d bytes is below the minimum of %d pages of %d bytes", size, minSwapPages, pageSize)
	}
	if pages-1 > 0xffffffff {
		pages = 0xffffffff + 1 // the header holds a 32-bit last page; the kernel uses that much
	}
	if len(label) > 16 {
		return nil, fmt.Errorf("swap: label %q is longer than 16 bytes", label)
	}
	b := make([]byte, pageSize)
	binary.LittleEndian.PutUint32(b[1024:], 1)               // version
	binary.LittleEndian.PutUint32(b[1028:], uint32(pages-1)) // last_page
	binary.LittleEndian.PutUint32(b[1032:], 0)               // nr_badpages
	copy(b[1036:1052], uuid[:])                              // sws_uuid
	copy(b[1052:1068], label)                                // sws_volume
	copy(b[pageSize-10:], "SWAPSPACE2")                      // magic
	return b, nil
}
