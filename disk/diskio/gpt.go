package diskio

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/disk"
)

// ErrRereadDeferred is wrapped by WriteTable when the table is on the disk but
// the kernel could not be made to show the new partitions (BLKRRPART and BLKPG
// both refused, usually because a partition is still in use). The disk is
// consistent; the kernel's view is stale until the holder lets go or the
// machine reboots. It is device.ErrRereadDeferred, so that callers of the
// device edge and of this package test for one error.
var ErrRereadDeferred = device.ErrRereadDeferred

// gptTable turns a layout into a go-diskfs table. go-diskfs defaults to
// 512-byte sectors unless told, so the sizes are always set explicitly.
func gptTable(l disk.Layout, physicalSectorSize int) (*gpt.Table, error) {
	ss := int64(l.SectorSize)
	if ss != 512 && ss != 4096 {
		return nil, fmt.Errorf("layout has logical sector size %d, want 512 or 4096", ss)
	}
	if physicalSectorSize < l.SectorSize {
		physicalSectorSize = l.SectorSize
	}
	t := &gpt.Table{
		LogicalSectorSize:  l.SectorSize,
		PhysicalSectorSize: physicalSectorSize,
		ProtectiveMBR:      true,
	}
	lastUsable := l.DiskSize/ss - 1 - 1 - (128*128)/ss // backup header, backup entries
	for _, p := range l.Partitions {
		if (p.Start%disk.MiB != 0 || p.Size%disk.MiB != 0 || p.Size <= 0) && !(p.IsBIOSBoot() && p.End() <= disk.MiB) {
			return nil, fmt.Errorf("partition %s (%d bytes at %d) is not 1 MiB aligned", p.Name, p.Size, p.Start)
		}
		start := uint64(p.Start / ss)
		end := uint64((p.Start+p.Size)/ss - 1)
		if int64(end) > lastUsable {
			return nil, fmt.Errorf("partition %s ends at sector %d, past the last usable sector %d of a %d-byte disk", p.Name, end, lastUsable, l.DiskSize)
		}
		t.Partitions = append(t.Partitions, &gpt.Partition{
			Index: p.Number,
			Start: start,
			End:   end,
			Size:  uint64(p.Size),
			Type:  gpt.Type(strings.ToUpper(p.TypeGUID)),
			Name:  p.Name,
		})
	}
	return t, nil
}

// fixProtectiveMBR corrects the protective MBR go-diskfs writes: it stores the
// disk's last LBA truncated to 32 bits, so a disk of more than 2 TiB at
// 512-byte sectors gets a wrong, small size. UEFI 2.x says to store
// 0xFFFFFFFF then. mbr is the first 512 bytes of the disk; it reports whether
// it changed anything.
func fixProtectiveMBR(mbr []byte, diskSectors uint64) bool {
	const entry = 446
	if len(mbr) < 512 || mbr[entry+4] != 0xee || diskSectors-1 <= 0xffffffff {
		return false
	}
	if binary.LittleEndian.Uint32(mbr[entry+12:]) == 0xffffffff {
		return false
	}
	binary.LittleEndian.PutUint32(mbr[entry+12:], 0xffffffff)
	return true
}

// readPartitions reads the GPT from f (a disk or an image file) with the given
// sector sizes and returns its partitions, numbered as in the table, with
// path set to PartitionPath(devPath, n). A disk without a GPT gives an error.
func readPartitions(f *os.File, devPath string, logical, physical int) ([]disk.Partition, error) {
	t, err := gpt.Read(f, logical, physical)
	if err != nil {
		return nil, fmt.Errorf("read GPT of %s: %w", devPath, err)
	}
	var parts []disk.Partition
	for _, p := range t.Partitions {
		if p == nil || p.Type == gpt.Unused {
			continue
		}
		parts = append(parts, disk.Partition{
			Number:    p.Index,
			Name:      strings.TrimPrefix(disk.PartitionPath(devPath, p.Index), "/dev/"),
			Path:      disk.PartitionPath(devPath, p.Index),
			StartByte: int64(p.Start) * int64(logical),
			SizeBytes: int64(p.End-p.Start+1) * int64(logical),
			PartLabel: p.Name,
			TypeGUID:  strings.ToLower(string(p.Type)),
			PartUUID:  strings.ToLower(p.GUID),
		})
	}
	return parts, nil
}
