package stages

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/disk"
)

// writeBIOSBoot writes GRUB's core.img into the disk's BIOS boot partition and
// boot.img's code into its MBR (boot.WriteBIOSBoot), from the images the
// initramfs carries (Facts.BIOSLoader), through the device edge: one open of
// the whole disk, flushed before it is closed.
func (j *Job) writeBIOSBoot(d *disk.Disk, r *Reporter) error {
	dir := j.Facts.BIOSLoader
	if dir == "" {
		return fmt.Errorf("bios boot: this initramfs carries no GRUB images (%s)", boot.GrubImageDir)
	}
	bootImg, err := os.ReadFile(filepath.Join(dir, boot.GrubBootImage))
	if err != nil {
		return fmt.Errorf("bios boot: %w", err)
	}
	coreImg, err := os.ReadFile(filepath.Join(dir, boot.GrubCoreImage))
	if err != nil {
		return fmt.Errorf("bios boot: %w", err)
	}
	ps, ok := j.Plan.Layout.Find(disk.LabelBIOSBoot)
	if !ok {
		return fmt.Errorf("bios boot: the layout of %s has no %s partition", d.Path, disk.LabelBIOSBoot)
	}
	if d.LogicalSectorSize != 512 {
		return fmt.Errorf("bios boot: %s has %d-byte sectors; BIOS boots 512-byte ones", d.Path, d.LogicalSectorSize)
	}
	_, dev, err := j.diskOf(d.Name)
	if err != nil {
		return err
	}
	if err := j.withBlock(dev, d.LogicalSectorSize, func(b device.Block) error {
		return boot.WriteBIOSBoot(b, bootImg, coreImg, ps.Start/512, ps.Size/512)
	}); err != nil {
		return err
	}
	r.Info("GRUB for BIOS: core.img (%d KiB) in %s at sector %d, boot.img in the MBR of %s", (len(coreImg)+1023)>>10, disk.LabelBIOSBoot, ps.Start/512, dev)
	return nil
}
