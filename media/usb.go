package media

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
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
	// SysRoot is where sysfs is mounted ("/sys" when empty), and ProcMounts the mount
	// table ("/proc/self/mounts" when empty); tests point them at fakes.
	SysRoot, ProcMounts string
}

// CheckUSBTarget refuses a target device that must not be overwritten: a partition, a
// device with a mounted filesystem, and (without Force) a disk that is neither removable
// nor on USB. A regular file or a path that does not exist yet is always accepted.
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
	sys := o.SysRoot
	if sys == "" {
		sys = "/sys"
	}
	resolved, err := filepath.EvalSymlinks(target)
	if err != nil {
		resolved = target
	}
	name := filepath.Base(resolved)
	dir := filepath.Join(sys, "class", "block", name)
	if _, err := os.Stat(filepath.Join(dir, "partition")); err == nil {
		return fmt.Errorf("usb target %s is a partition (hint: write the image to the whole disk, e.g. /dev/%s)", target, strings.TrimRight(name, "0123456789"))
	}
	mounts := o.ProcMounts
	if mounts == "" {
		mounts = "/proc/self/mounts"
	}
	if data, err := os.ReadFile(mounts); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			dev, at, _ := strings.Cut(line, " ")
			if dev == "/dev/"+name || (strings.HasPrefix(dev, "/dev/"+name) && isPartitionSuffix(strings.TrimPrefix(dev, "/dev/"+name))) {
				at, _, _ = strings.Cut(at, " ")
				return fmt.Errorf("usb target %s has a mounted filesystem (%s on %s) (hint: unmount it first, or check that this is the stick you meant)", target, dev, at)
			}
		}
	}
	if o.Force {
		return nil
	}
	removable, _ := os.ReadFile(filepath.Join(dir, "removable"))
	devPath, _ := filepath.EvalSymlinks(filepath.Join(dir, "device"))
	if strings.TrimSpace(string(removable)) != "1" && !strings.Contains(devPath, "/usb") {
		return fmt.Errorf("usb target %s is neither removable nor on USB (hint: check `lsblk -o NAME,TRAN,RM,SIZE,MODEL`; add --force only if this really is the stick)", target)
	}
	return nil
}

// isPartitionSuffix reports whether s is what a partition adds to its disk's name
// ("1", "p1").
func isPartitionSuffix(s string) bool {
	s = strings.TrimPrefix(s, "p")
	return s != "" && strings.Trim(s, "0123456789") == ""
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
