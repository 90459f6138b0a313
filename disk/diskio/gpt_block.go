package diskio

import (
	"fmt"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/device/blockfile"
	"github.com/nodeinit/nodeinit/disk"
)

// WriteGPT writes the GPT of l, with a protective MBR, to the disk b and
// flushes it. b's logical sector size and size must be those l was planned
// for. Telling the kernel about the new partitions is the caller's next step
// (device.Machine.SetPartitions with l.KernelPartitions()).
func WriteGPT(b device.Block, l disk.Layout) error {
	if b.LogicalSectorSize() != l.SectorSize {
		return fmt.Errorf("write partition table on %s: the disk has %d-byte logical sectors but the layout was planned for %d: plan again for this disk",
			b.Path(), b.LogicalSectorSize(), l.SectorSize)
	}
	if b.Size() != l.DiskSize {
		return fmt.Errorf("write partition table on %s: the disk is %d bytes but the layout was planned for %d: plan again for this disk (was it replaced or resized?)",
			b.Path(), b.Size(), l.DiskSize)
	}
	t, err := gptTable(l, b.PhysicalSectorSize())
	if err != nil {
		return fmt.Errorf("write partition table on %s: %w", b.Path(), err)
	}
	if err := t.Write(blockfile.Writable(b), b.Size()); err != nil {
		return fmt.Errorf("write partition table on %s: %w", b.Path(), err)
	}
	mbr := make([]byte, 512)
	if _, err := b.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("write partition table on %s: read back MBR: %w", b.Path(), err)
	}
	if fixProtectiveMBR(mbr, uint64(b.Size()/int64(b.LogicalSectorSize()))) {
		if _, err := b.WriteAt(mbr, 0); err != nil {
			return fmt.Errorf("write partition table on %s: fix protective MBR: %w", b.Path(), err)
		}
	}
	if err := b.Flush(); err != nil {
		return fmt.Errorf("write partition table on %s: flush: %w", b.Path(), err)
	}
	return nil
}

// ReadGPTOf returns the partitions in the GPT of the disk b, with paths named
// after b's path.
func ReadGPTOf(b device.Block) ([]disk.Partition, error) {
	t, err := gpt.Read(blockfile.Storage(b), b.LogicalSectorSize(), b.PhysicalSectorSize())
	if err != nil {
		return nil, fmt.Errorf("read GPT of %s: %w", b.Path(), err)
	}
	logical := int64(b.LogicalSectorSize())
	var parts []disk.Partition
	for _, p := range t.Partitions {
		if p == nil || p.Type == gpt.Unused {
			continue
		}
		parts = append(parts, disk.Partition{
			Number:    p.Index,
			Name:      strings.TrimPrefix(disk.PartitionPath(b.Path(), p.Index), "/dev/"),
			Path:      disk.PartitionPath(b.Path(), p.Index),
			StartByte: int64(p.Start) * logical,
			SizeBytes: int64(p.End-p.Start+1) * logical,
			PartLabel: p.Name,
			TypeGUID:  strings.ToLower(string(p.Type)),
			PartUUID:  strings.ToLower(p.GUID),
		})
	}
	return parts, nil
}
