package diskio

import (
	"fmt"
	"os"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/google/uuid"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/mkext4"
)

// MakeFS makes a filesystem of kind fs (FSVfat, FSExt4 or FSSwap) labelled
// label on the partition (or image file) at devPath. It first clears the
// signature regions of the whole device, so blkid sees only the new
// filesystem. FSRaw does nothing. See the comment at the top of mkfs.go for
// which tool makes what, and why.
func MakeFS(devPath, fs, label string, opts disk.MkfsOptions) error {
	if fs == disk.FSRaw {
		return nil
	}
	if err := checkLabel(fs, label); err != nil {
		return fmt.Errorf("make %s on %s: %w", fs, devPath, err)
	}
	id := uuid.New()
	if opts.UUID != "" {
		var err error
		if id, err = uuid.Parse(opts.UUID); err != nil {
			return fmt.Errorf("make %s on %s: UUID %q: %w", fs, devPath, opts.UUID, err)
		}
	}
	switch fs {
	case disk.FSVfat, disk.FSExt4, disk.FSSwap:
	default:
		return fmt.Errorf("make filesystem on %s: unknown kind %q (vfat, ext4, swap or raw)", devPath, fs)
	}

	d, err := openDevice(devPath, opts.SectorSize)
	if err != nil {
		return fmt.Errorf("make %s on %s: %w", fs, devPath, err)
	}
	if _, err := d.zero(disk.SignatureRegions(d.size, d.logical)); err != nil {
		d.f.Close()
		return fmt.Errorf("make %s on %s: clear old signatures: %w", fs, devPath, err)
	}
	switch fs {
	case disk.FSVfat:
		err = makeVfat(d, label)
	case disk.FSSwap:
		err = makeSwap(d, label, id)
	case disk.FSExt4:
		_, err = mkext4.Format(d.f, d.size, mkext4.Options{Label: label, UUID: id})
	}
	if err == nil {
		err = d.f.Sync()
	}
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("make %s on %s: %w", fs, devPath, err)
	}
	return nil
}

func checkLabel(fs, label string) error {
	max := map[string]int{disk.FSVfat: 11, disk.FSExt4: 16, disk.FSSwap: 16}[fs]
	if len(label) > max {
		return fmt.Errorf("label %q is longer than the %d bytes %s allows", label, max, fs)
	}
	return nil
}

// makeVfat writes FAT32 with the device's logical sector size.
func makeVfat(d *openDisk, label string) error {
	if _, err := fat32.Create(file.New(d.f, false), d.size, 0, int64(d.logical), strings.ToUpper(label), false); err != nil {
		return fmt.Errorf("fat32: %w", err)
	}
	return nil
}

// makeSwap writes the swap header in the first page.
func makeSwap(d *openDisk, label string, id uuid.UUID) error {
	hdr, err := disk.SwapHeader(d.size, os.Getpagesize(), label, id)
	if err != nil {
		return err
	}
	if _, err := d.f.WriteAt(hdr, 0); err != nil {
		return fmt.Errorf("write swap header: %w", err)
	}
	return nil
}
