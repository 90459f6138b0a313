package media

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nodeinit/nodeinit/disk/diskio"
)

// There is no separate USB layout: the hybrid ISO is the USB image. Its isohybrid MBR
// boots BIOS machines from a stick, its EFI partition UEFI ones, and the installer finds
// the bundle on the stick by the same label as on a CD. A separate FAT or GPT layout would
// buy a writable stick, which an installer does not need, at the price of a second image
// to build, test and document. `nodeinit mkmedia usb` therefore builds the same image and
// writes it to a file or, with guards, to a USB block device (WriteUSB).

// USBOptions say where WriteUSB writes.
type USBOptions struct {
	// Force allows a block device that the kernel reports neither as removable nor on USB
	// (an SD card reader or a disk in a USB dock may report neither).
	Force bool
	// Root is where sysfs and /proc are found ("/" when Dir is empty); tests point it at
	// a fake tree.
	Root diskio.Root
}

// CheckUSBTarget refuses a target device that must not be overwritten: a partition, a
// disk that is mounted, holds active swap or is used by md, LVM or dm (as diskio.Discover
// sees it, on the disk or any partition), and (without Force) a disk that is neither
// removable nor on USB. A regular file or a path that does not exist yet is always accepted.
func CheckUSBTarget(target string, o USBOptions) error {
	st, err := os.Stat(target)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("usb target %s: %w", target, err)
	}
	if st.Mode().IsRegular() {
		return nil
	}
	if st.Mode()&os.ModeDevice == 0 || st.Mode()&os.ModeCharDevice != 0 {
		return fmt.Errorf("usb target %s: not a block device or a file (hint: name the stick's whole disk, e.g. /dev/sdX)", target)
	}
	resolved, err := filepath.EvalSymlinks(target)
	if err != nil {
		resolved = target
	}
	name := filepath.Base(resolved)
	root := o.Root
	if root.Dir == "" {
		root.Dir = "/"
	}
	root.SkipProbe = true // identity and state are enough; the content does not matter
	disks, err := diskio.Discover(root)
	if err != nil {
		return fmt.Errorf("usb target %s: %w", target, err)
	}
	for _, d := range disks {
		for _, p := range d.Partitions {
			if p.Name == name {
				return fmt.Errorf("usb target %s is a partition (hint: write the image to the whole disk, e.g. %s)", target, d.Path)
			}
		}
		if d.Name != name {
			continue
		}
		switch {
		case len(d.Mounts) > 0:
			return fmt.Errorf("usb target %s has a mounted filesystem (on %s) (hint: unmount it first, or check that this is the stick you meant)",
				target, strings.Join(d.Mounts, ", "))
		case len(d.Holders) > 0 || d.Swap:
			return fmt.Errorf("usb target %s is in use (holders %v, swap %v) (hint: stop the md/LVM/swap on it first, or check that this is the stick you meant)",
				target, d.Holders, d.Swap)
		case !o.Force && !d.Removable && d.Transport != "usb":
			return fmt.Errorf("usb target %s is neither removable nor on USB (%s) (hint: check `lsblk -o NAME,TRAN,RM,SIZE,MODEL`; add --force only if this really is the stick)",
				target, d.Transport)
		}
		return nil
	}
	return fmt.Errorf("usb target %s: the kernel lists no block device %s (hint: name the stick's whole disk, e.g. /dev/sdX)", target, name)
}

// WriteUSB builds the hybrid image and writes it to target, a file or a USB stick's whole
// disk, after CheckUSBTarget. A device is written from a temporary image built next to
// work (or in the system temp directory) and synced.
func WriteUSB(ctx context.Context, target string, iso ISOOptions, o USBOptions) (*ISOResult, error) {
	if err := CheckUSBTarget(target, o); err != nil {
		return nil, err
	}
	st, err := os.Stat(target)
	if err != nil || st.Mode().IsRegular() {
		return BuildISO(ctx, target, iso)
	}
	tmpDir := iso.WorkDir
	if tmpDir == "" {
		tmpDir = os.TempDir()
	}
	tmp, err := os.CreateTemp(tmpDir, "nodeinit-usb-*.img")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	iso.WorkDir = tmpDir
	res, err := BuildISO(ctx, tmp.Name(), iso)
	if err != nil {
		return nil, err
	}
	if err := copyToDevice(tmp.Name(), target); err != nil {
		return nil, fmt.Errorf("write %s: %w", target, err)
	}
	res.Path = target
	return res, nil
}

func copyToDevice(src, dev string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, make([]byte, 4<<20)); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
