package image

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodeinit/nodeinit/operr"
)

// labelSource is a directory on a medium, found by filesystem label or named
// by its device, and mounted read-only; Close unmounts it.
type labelSource struct {
	*dirSource
	mounter Mounter
	mountAt string
	device  string
}

func (l *labelSource) Close() error {
	if err := l.mounter.Unmount(l.mountAt); err != nil {
		return fmt.Errorf("unmount %s (%s): %w", l.mountAt, l.device, err)
	}
	os.Remove(l.mountAt)
	return nil
}

// openLabelSource handles "NAME" or "NAME/sub/dir".
func openLabelSource(spec string, opts SourceOptions) (Source, error) {
	label, sub, _ := strings.Cut(spec, "/")
	if label == "" {
		return nil, newError("open image source", "label:"+spec, fmt.Errorf("empty label"),
			"write it as label:NAME or label:NAME/path/in/medium")
	}
	dev, fstype, err := FindByLabel(label, opts.SysRoot, opts.DevRoot)
	if err != nil {
		return nil, err
	}
	return mountSource(dev, fstype, label, sub, "label:"+spec, opts)
}

// openDeviceSource handles a path that is, or lies below, a block device node:
// "/dev/sdb1" or "/dev/sdb1/sub/dir". The operator named the device, so it may
// be any block device, physical or not (a dm or loop device too); it is mounted
// read-only like a medium found by label. ok is false when no part of spec is a
// block device, and spec is then a plain directory path.
func openDeviceSource(spec string, opts SourceOptions) (src Source, ok bool, err error) {
	dev := filepath.Clean(spec)
	for !isBlockDevice(dev) {
		if parent := filepath.Dir(dev); parent != dev {
			dev = parent
			continue
		}
		return nil, false, nil
	}
	sub, _ := filepath.Rel(dev, filepath.Clean(spec))
	_, fstype, err := readLabel(dev)
	if err != nil {
		return nil, true, newError("open image source", dev, err, "check that the device exists and is readable")
	}
	if fstype == "" {
		return nil, true, newError("open image source", dev, errors.New("no iso9660, vfat or ext filesystem on the device"),
			"name the partition that holds the bundle (e.g. /dev/sdb1), or a directory")
	}
	src, err = mountSource(dev, fstype, "dev-"+filepath.Base(dev), sub, spec, opts)
	return src, true, err
}

// isBlockDevice reports whether p is (a symlink to) a block device node.
func isBlockDevice(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0
}

// mountSource mounts dev read-only at MountDir/mountName and opens the bundle
// directory sub inside it; name is the source as the operator wrote it.
func mountSource(dev, fstype, mountName, sub, name string, opts SourceOptions) (Source, error) {
	target := filepath.Join(opts.MountDir, mountName)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return nil, fmt.Errorf("mount %s: %w", dev, err)
	}
	if err := opts.Mounter.MountReadOnly(dev, target, fstype); err != nil {
		return nil, newError("mount", dev, fmt.Errorf("%s read-only at %s: %w", fstype, target, err),
			"make sure the kernel has the "+fstype+" driver (module) loaded")
	}
	ds, err := newDirSource(filepath.Join(target, sub), name)
	if err != nil {
		opts.Mounter.Unmount(target)
		return nil, err
	}
	return &labelSource{dirSource: ds, mounter: opts.Mounter, mountAt: target, device: dev}, nil
}

// FindByLabel looks through the block devices listed in sysRoot/class/block
// for an iso9660, vfat or ext2/3/4 filesystem labelled label and returns its
// device node under devRoot and the filesystem type. An exact match wins over
// a case-insensitive one; more than one device with the label is an error
// that lists them.
//
// Only physical media count (see virtualReason): a disk behind a bus device,
// or a partition of one. On a running host a guest's logical volume, a loop
// device or an nbd export can carry any label, including the install
// medium's, and must never become the image an upgrade installs. When no
// physical medium has the label but a virtual device does, the error names
// the device it skipped and why, and says how to name a source directly.
func FindByLabel(label, sysRoot, devRoot string) (device, fstype string, err error) {
	entries, err := os.ReadDir(filepath.Join(sysRoot, "class", "block"))
	if err != nil {
		return "", "", fmt.Errorf("find label %s: list block devices: %w", label, err)
	}
	type hit struct{ dev, fs string }
	var exact, folded []hit
	var virtual []string // kernel names of devices that are not physical media
	for _, e := range entries {
		if virtualReason(sysRoot, e.Name()) != "" {
			virtual = append(virtual, e.Name())
			continue
		}
		dev := filepath.Join(devRoot, e.Name())
		got, fs, err := readLabel(dev)
		if err != nil || got == "" {
			continue // unreadable (empty drive, no permission) or no label
		}
		switch {
		case got == label:
			exact = append(exact, hit{dev, fs})
		case strings.EqualFold(got, label):
			folded = append(folded, hit{dev, fs})
		}
	}
	hits := exact
	if len(hits) == 0 {
		hits = folded
	}
	switch len(hits) {
	case 1:
		return hits[0].dev, hits[0].fs, nil
	case 0:
		if skipped := skippedWithLabel(label, sysRoot, devRoot, virtual); len(skipped) > 0 {
			var why []string
			for _, s := range skipped {
				why = append(why, s.dev+" ("+s.why+")")
			}
			return "", "", &operr.Error{
				What: "find medium label:" + label,
				Why:  "no physical medium carries this label; skipped " + strings.Join(why, ", "),
				Fix: "label: only finds physical media (a disk on a bus, or a partition of one): attach the medium, " +
					"or name the source directly, nodeinit.image=" + skipped[0].dev + " if that device is the medium you mean, " +
					"or nodeinit.image=/path/to/bundle for a directory (nodeinit upgrade --image takes the same)",
			}
		}
		return "", "", newError("find medium", "label:"+label, errors.New("no iso9660, vfat or ext filesystem has this label"),
			"check the label with `blkid` and that the medium is attached (its driver loaded)")
	default:
		var names []string
		for _, h := range hits {
			names = append(names, h.dev)
		}
		sort.Strings(names)
		return "", "", newError("find medium", "label:"+label,
			fmt.Errorf("%d devices carry this label: %s", len(hits), strings.Join(names, ", ")),
			"give the medium a unique label, or name the device path instead")
	}
}

// skippedDev is a virtual device that carries the label FindByLabel looked for.
type skippedDev struct{ dev, why string }

// skippedWithLabel reads the labels of the virtual devices FindByLabel
// skipped and returns those that carry label, with why each is not physical
// media, for the error. It runs only when no physical medium matched, so a
// boot that finds its medium never reads a virtual device.
func skippedWithLabel(label, sysRoot, devRoot string, names []string) []skippedDev {
	var out []skippedDev
	for _, name := range names {
		dev := filepath.Join(devRoot, name)
		if got, _, err := readLabel(dev); err == nil && got != "" && strings.EqualFold(got, label) {
			out = append(out, skippedDev{dev, virtualReason(sysRoot, name)})
		}
	}
	return out
}

// virtualPrefixes are the kernel names of block devices that are never
// physical media, whatever sysfs says about them.
var virtualPrefixes = []struct{ prefix, what string }{
	{"dm-", "a device-mapper device: LVM, multipath or dm-crypt"},
	{"loop", "a loop device"},
	{"nbd", "a network block device"},
	{"md", "an md RAID array"},
	{"zram", "a compressed RAM disk"},
	{"ram", "a RAM disk"},
}

// virtualReason says why the block device name (a kernel name in
// sysRoot/class/block) is not physical media, or "" when it is: a disk whose
// sysRoot/block/NAME has a device link (the bus device behind it: SCSI, ATA,
// NVMe, virtio, USB, MMC), or a partition of such a disk.
func virtualReason(sysRoot, name string) string {
	disk := name
	if _, err := os.Stat(filepath.Join(sysRoot, "class", "block", name, "partition")); err == nil {
		// A partition's sysfs directory lies inside its disk's.
		real, err := filepath.EvalSymlinks(filepath.Join(sysRoot, "class", "block", name))
		if err != nil {
			return "its sysfs entry cannot be resolved"
		}
		disk = filepath.Base(filepath.Dir(real))
	}
	for _, v := range virtualPrefixes {
		if strings.HasPrefix(disk, v.prefix) {
			if disk != name {
				return "a partition of " + disk + ", " + v.what
			}
			return v.what
		}
	}
	if _, err := os.Lstat(filepath.Join(sysRoot, "block", disk, "device")); err != nil {
		return "no bus device behind it (sysfs block/" + disk + " has no device link)"
	}
	return ""
}

// readLabel reads the filesystem label of the device or image at path.
func readLabel(path string) (label, fstype string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	buf := make([]byte, 0x8000+2048)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", "", err
	}
	label, fstype = parseLabel(buf[:n])
	return label, fstype, nil
}

// parseLabel recognises iso9660, ext2/3/4 and FAT from the first 34 KiB.
func parseLabel(b []byte) (label, fstype string) {
	// iso9660 primary volume descriptor at 32 KiB: type 1, "CD001", volume id at 40.
	if len(b) >= 0x8000+72 && b[0x8000] == 1 && string(b[0x8001:0x8006]) == "CD001" {
		return strings.TrimRight(string(b[0x8000+40:0x8000+72]), " \x00"), "iso9660"
	}
	// ext2/3/4 superblock at 1024: magic 0xEF53 at 56, volume name at 120.
	if len(b) >= 1024+136 && binary.LittleEndian.Uint16(b[1024+56:]) == 0xEF53 {
		return cString(b[1024+120 : 1024+136]), "ext4"
	}
	// FAT boot sector: 0x55AA at 510; extended boot signature 0x29 holds the label.
	if len(b) >= 512 && b[510] == 0x55 && b[511] == 0xAA {
		switch {
		case b[66] == 0x29 && string(b[82:87]) == "FAT32":
			return fatLabel(b[71:82]), "vfat"
		case b[38] == 0x29 && strings.HasPrefix(string(b[54:62]), "FAT"):
			return fatLabel(b[43:54]), "vfat"
		}
	}
	return "", ""
}

func fatLabel(b []byte) string {
	l := strings.TrimRight(string(b), " \x00")
	if l == "NO NAME" {
		return ""
	}
	return l
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
