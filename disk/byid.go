package disk

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// The names udev's 60-persistent-storage.rules would create under
// /dev/disk/by-id and /dev/disk/by-path, computed from sysfs so operators can
// paste them into storage_init. The rules followed:
//
//	nvme    nvme-<model>_<serial>, nvme-<wwid>          pci-<pci>-nvme-<nsid>
//	ata     ata-<model>_<serial>, wwn-<wwn>             pci-<pci>-ata-<port>
//	scsi    scsi-3<naa> or scsi-S<vendor>_<model>_<serial>, wwn-<wwn>
//	                                                    pci-<pci>-scsi-<h>:<c>:<t>:<l>
//	usb     usb-<vendor>_<model>_<serial>-0:<lun>       pci-<pci>-usb-0:<port>-scsi-0:0:0:<lun>
//	virtio  virtio-<serial>                             pci-<pci> (alias virtio-pci-<pci>)
//	mmc     mmc-<name>_<serial>
//
// Whitespace runs become one "_" and characters udev does not allow in
// names become "_", as udev's replace_whitespace and replace_chars do.

var pciAddr = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
var scsiAddr = regexp.MustCompile(`^(\d+):(\d+):(\d+):(\d+)$`)
var usbIface = regexp.MustCompile(`^\d+-[\d.]+:\d+\.\d+$`)

// udevName is udev's whitespace and character replacement.
func udevName(s string) string {
	s = strings.Join(strings.Fields(s), "_")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune("#+-.:=@_", r):
			return r
		}
		return '_'
	}, s)
}

func joinID(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = udevName(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "_")
}

// byIDNames returns the by-id names, most specific first.
func byIDNames(s sysDev, d *Disk) []string {
	var ids []string
	add := func(id string) {
		if id != "" {
			ids = append(ids, id)
		}
	}
	wwnLink := func() {
		if strings.HasPrefix(d.WWN, "0x") {
			add("wwn-" + d.WWN)
		}
	}
	switch d.Transport {
	case "nvme":
		if d.Serial != "" {
			add("nvme-" + joinID(d.Model, d.Serial))
		}
		if d.WWN != "" {
			add("nvme-" + d.WWN)
		}
	case "ata":
		if d.Serial != "" {
			add("ata-" + joinID(d.Model, d.Serial))
		}
		wwnLink()
	case "scsi":
		switch {
		case strings.HasPrefix(d.WWN, "0x"):
			add("scsi-3" + d.WWN[2:])
		case d.Serial != "":
			add("scsi-S" + joinID(d.Vendor, d.Model, d.Serial))
		}
		wwnLink()
	case "usb":
		if d.Serial != "" {
			lun := "0"
			if m := scsiAddr.FindStringSubmatch(filepath.Base(realDeviceDir(s))); m != nil {
				lun = m[4]
			}
			add("usb-" + joinID(d.Vendor, d.Model, d.Serial) + "-0:" + lun)
		}
	case "virtio":
		if d.Serial != "" {
			add("virtio-" + udevName(d.Serial))
		}
	case "mmc":
		if d.Serial != "" {
			add("mmc-" + joinID(d.Model, d.Serial))
		}
	}
	return ids
}

// realDeviceDir is the resolved "device" directory of a disk.
func realDeviceDir(s sysDev) string {
	dir, err := filepath.EvalSymlinks(filepath.Join(s.dir, "device"))
	if err != nil {
		return ""
	}
	return dir
}

// byPathName returns the by-path name, or "" for devices without a stable path.
func byPathName(s sysDev, d *Disk) string {
	segs := strings.Split(s.rel, "/")
	pci := ""
	pciAt := -1
	for i, seg := range segs {
		if pciAddr.MatchString(seg) {
			pci, pciAt = seg, i // the nearest PCI device above the disk
		}
	}
	if pci == "" {
		return ""
	}
	below := segs[pciAt+1:]
	base := "pci-" + pci
	switch d.Transport {
	case "nvme":
		nsid := s.attr("nsid")
		if nsid == "" {
			nsid = "1"
		}
		return base + "-nvme-" + nsid
	case "ata":
		if m := ataPort.FindStringSubmatch(s.rel); m != nil {
			return base + "-ata-" + m[1]
		}
	case "virtio":
		return base
	case "usb":
		var iface, lun string
		for _, seg := range below {
			if usbIface.MatchString(seg) {
				iface = seg[strings.IndexByte(seg, '-')+1:]
			}
			if m := scsiAddr.FindStringSubmatch(seg); m != nil {
				lun = m[4]
			}
		}
		if iface != "" && lun != "" {
			return base + "-usb-0:" + iface + "-scsi-0:0:0:" + lun
		}
	case "scsi":
		for _, seg := range below {
			if m := scsiAddr.FindStringSubmatch(seg); m != nil {
				return base + "-scsi-" + scsiHostOffset(s, segs, m[1]) + ":" + m[2] + ":" + m[3] + ":" + m[4]
			}
		}
	case "mmc":
		return base
	}
	return ""
}

// scsiHostOffset gives the SCSI host number relative to the first host on the
// same parent, as udev's path_id does, so the name survives module load order.
func scsiHostOffset(s sysDev, segs []string, host string) string {
	for i, seg := range segs {
		if seg != "host"+host {
			continue
		}
		parent := filepath.Join(append([]string{s.sysRoot}, segs[:i]...)...)
		lowest := -1
		for _, n := range listDir(parent) {
			if h, ok := hostNumber(n); ok && (lowest < 0 || h < lowest) {
				lowest = h
			}
		}
		if me, ok := hostNumber(seg); ok && lowest >= 0 {
			return strconv.Itoa(me - lowest)
		}
	}
	return host
}

func hostNumber(name string) (int, bool) {
	if !strings.HasPrefix(name, "host") {
		return 0, false
	}
	n, err := strconv.Atoi(name[4:])
	return n, err == nil
}

// byPathAliases are the by-path names udev also creates for compatibility
// (systemd ≥ 251: ata-<port>.0; older: virtio-pci-<pci>).
func byPathAliases(d Disk) []string {
	if d.ByPath == "" {
		return nil
	}
	names := []string{d.ByPath}
	switch d.Transport {
	case "ata":
		names = append(names, d.ByPath+".0")
	case "virtio":
		names = append(names, "virtio-"+d.ByPath)
	}
	return names
}
