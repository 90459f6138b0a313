package diskio

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/internal/lazyre"
)

// The by-id and by-path patterns (compiled on first use: see lazyre).
var pciAddr = lazyre.New(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)
var scsiAddr = lazyre.New(`^(\d+):(\d+):(\d+):(\d+)$`)
var usbIface = lazyre.New(`^\d+-[\d.]+:\d+\.\d+$`)

// byIDNames returns the by-id names, most specific first.
// realDeviceDir is the resolved "device" directory of a disk.
// byPathName returns the by-path name, or "" for devices without a stable path.
// scsiHostOffset gives the SCSI host number relative to the first host on the
// same parent, as udev's path_id does, so the name survives module load order.
func hostNumber(name string) (int, bool) {
	if !strings.HasPrefix(name, "host") {
		return 0, false
	}
	n, err := strconv.Atoi(name[4:])
	return n, err == nil
}

func byIDNames(s sysDev, d *disk.Disk) []string {
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
			add("nvme-" + disk.JoinID(d.Model, d.Serial))
		}
		if d.WWN != "" {
			add("nvme-" + d.WWN)
		}
	case "ata":
		if d.Serial != "" {
			add("ata-" + disk.JoinID(d.Model, d.Serial))
		}
		wwnLink()
	case "scsi":
		switch {
		case strings.HasPrefix(d.WWN, "0x"):
			add("scsi-3" + d.WWN[2:])
		case d.Serial != "":
			add("scsi-S" + disk.JoinID(d.Vendor, d.Model, d.Serial))
		}
		wwnLink()
	case "usb":
		if d.Serial != "" {
			lun := "0"
			if m := scsiAddr().FindStringSubmatch(filepath.Base(realDeviceDir(s))); m != nil {
				lun = m[4]
			}
			add("usb-" + disk.JoinID(d.Vendor, d.Model, d.Serial) + "-0:" + lun)
		}
	case "virtio":
		if d.Serial != "" {
			add("virtio-" + disk.UdevName(d.Serial))
		}
	case "mmc":
		if d.Serial != "" {
			add("mmc-" + disk.JoinID(d.Model, d.Serial))
		}
	}
	return ids
}

func realDeviceDir(s sysDev) string {
	dir, err := filepath.EvalSymlinks(filepath.Join(s.dir, "device"))
	if err != nil {
		return ""
	}
	return dir
}

func byPathName(s sysDev, d *disk.Disk) string {
	segs := strings.Split(s.rel, "/")
	pci := ""
	pciAt := -1
	for i, seg := range segs {
		if pciAddr().MatchString(seg) {
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
		if m := ataPort().FindStringSubmatch(s.rel); m != nil {
			return base + "-ata-" + m[1]
		}
	case "virtio":
		return base
	case "usb":
		var iface, lun string
		for _, seg := range below {
			if usbIface().MatchString(seg) {
				iface = seg[strings.IndexByte(seg, '-')+1:]
			}
			if m := scsiAddr().FindStringSubmatch(seg); m != nil {
				lun = m[4]
			}
		}
		if iface != "" && lun != "" {
			return base + "-usb-0:" + iface + "-scsi-0:0:0:" + lun
		}
	case "scsi":
		for _, seg := range below {
			if m := scsiAddr().FindStringSubmatch(seg); m != nil {
				return base + "-scsi-" + scsiHostOffset(s, segs, m[1]) + ":" + m[2] + ":" + m[3] + ":" + m[4]
			}
		}
	case "mmc":
		return base
	}
	return ""
}

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
