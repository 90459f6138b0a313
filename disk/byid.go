package disk

import (
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

// UdevName is udev's whitespace and character replacement.
func UdevName(s string) string {
	s = strings.Join(strings.Fields(s), "_")
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', strings.ContainsRune("#+-.:=@_", r):
			return r
		}
		return '_'
	}, s)
}

func JoinID(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = UdevName(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "_")
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
