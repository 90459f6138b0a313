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
)

// labelSource is a directory on a medium found by filesystem label and
// mounted read-only; Close unmounts it.
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
	target := filepath.Join(opts.MountDir, label)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return nil, fmt.Errorf("mount %s: %w", dev, err)
	}
	if err := opts.Mounter.MountReadOnly(dev, target, fstype); err != nil {
		return nil, newError("mount", dev, fmt.Errorf("%s read-only at %s: %w", fstype, target, err),
			"make sure the kernel has the "+fstype+" driver (module) loaded")
	}
	ds, err := newDirSource(filepath.Join(target, sub), "label:"+spec)
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
func FindByLabel(label, sysRoot, devRoot string) (device, fstype string, err error) {
	entries, err := os.ReadDir(filepath.Join(sysRoot, "class", "block"))
	if err != nil {
		return "", "", fmt.Errorf("find label %s: list block devices: %w", label, err)
	}
	type hit struct{ dev, fs string }
	var exact, folded []hit
	for _, e := range entries {
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
