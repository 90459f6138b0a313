package diskio

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/google/uuid"
	"github.com/nodeinit/nodeinit/disk"
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
	}
	if err == nil {
		err = d.f.Sync()
	}
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && fs == disk.FSExt4 {
		// mke2fs opens the device itself (O_EXCL), so ours is closed first.
		err = makeExt4(devPath, label, id)
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

// makeExt4 runs mke2fs. Inode tables and the journal are initialised lazily
// (the kernel zeroes inode tables in the background after the first mount),
// nothing is discarded (Wipe does that once for the whole disk), and the block
// size is 4 KiB whatever the sector size.
func makeExt4(devPath, label string, id uuid.UUID) error {
	mke2fs, err := FindTool("mke2fs")
	if err != nil {
		return err
	}
	args := []string{"-t", "ext4", "-F", "-q", "-b", "4096", "-L", label, "-U", id.String(),
		"-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", devPath}
	var out bytes.Buffer
	cmd := exec.Command(mke2fs, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", mke2fs, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// FindTool looks for an external program on PATH and then in the sbin
// directories, which an initramfs PATH may lack.
func FindTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found: the initramfs must carry it (e2fsprogs)", name)
}
