package stages

import (
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

// searched describes the failed search for a default image source under root:
// the sources tried, the block devices there were, and the controllers that
// no driver took (a CD on an AHCI controller the initramfs has no driver for
// is not a block device at all).
func searched(root string, tried []string) *plan.ImageSearch {
	s := &plan.ImageSearch{Tried: tried, BlockDevices: []string{}}
	if entries, err := os.ReadDir(filepath.Join(root, "sys", "class", "block")); err == nil {
		for _, e := range entries {
			name := e.Name()
			empty := readTrim(filepath.Join(root, "sys", "class", "block", name, "size")) == "0"
			switch {
			case empty && unattached(name):
				// loop0…7 and ram disks exist on every machine; unused, they say nothing
			case empty:
				s.BlockDevices = append(s.BlockDevices, name+" (no medium)")
			default:
				s.BlockDevices = append(s.BlockDevices, name)
			}
		}
	}
	s.Undriven = append(undrivenPCI(filepath.Join(root, "sys", "bus", "pci", "devices")),
		undrivenUSB(filepath.Join(root, "sys", "bus", "usb", "devices"))...)
	return s
}

// unattached tells a kernel name of a device that exists unused on every
// machine: an unattached loop device or a ram disk.
func unattached(name string) bool {
	return strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram")
}

// searchCause is the short reason a source did not open: the operator
// error's own words without the source, which the caller names.
func searchCause(err error) string {
	if e := operr.Of(err); e != nil {
		if e.Why != "" {
			return e.Why
		}
		if e.Err != nil {
			return image.WithoutURL(e.Err).Error()
		}
	}
	return image.WithoutURL(err).Error()
}

// pciKind is a PCI class (the top 16 bits of the class code, or all 24 for
// USB host controllers) that can hide boot media, with the module that
// usually drives it.
type pciKind struct {
	class, kind, module string
}

// pciKinds are matched by prefix against the class code, longest first.
var pciKinds = []pciKind{
	{"0x0c0330", "USB 3 (xHCI) controller", "xhci_pci"},
	{"0x0c0320", "USB 2 (EHCI) controller", "ehci_pci"},
	{"0x0c0310", "USB 1 (OHCI) controller", "ohci_pci"},
	{"0x0c0300", "USB 1 (UHCI) controller", "uhci_hcd"},
	{"0x0106", "SATA (AHCI) controller", "ahci"},
	{"0x0108", "NVMe controller", "nvme"},
	{"0x0107", "SAS controller", ""},
	{"0x0104", "RAID controller", ""},
	{"0x0101", "IDE controller", "ata_piix"},
	{"0x0100", "SCSI controller", ""},
	{"0x0180", "storage controller", ""},
}

// virtioVendor is Red Hat's PCI vendor id, which virtio devices carry.
const virtioVendor = "0x1af4"

// undrivenPCI lists the storage and USB controllers under dir
// (/sys/bus/pci/devices) that have no driver bound.
func undrivenPCI(dir string) []plan.Controller {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []plan.Controller
	for _, e := range entries {
		d := filepath.Join(dir, e.Name())
		if hasDriver(d) {
			continue
		}
		class, vendor, device := readTrim(filepath.Join(d, "class")), readTrim(filepath.Join(d, "vendor")), readTrim(filepath.Join(d, "device"))
		for _, k := range pciKinds {
			if !strings.HasPrefix(class, k.class) {
				continue
			}
			module := k.module
			if vendor == virtioVendor {
				module = "virtio_pci"
			}
			out = append(out, plan.Controller{Address: e.Name(), Kind: k.kind,
				ID: strings.TrimPrefix(vendor, "0x") + ":" + strings.TrimPrefix(device, "0x"), Module: module})
			break
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// usbMassStorage is the USB interface class of sticks, card readers and USB
// CD drives.
const usbMassStorage = "08"

// undrivenUSB lists the USB mass-storage interfaces under dir
// (/sys/bus/usb/devices) that no driver took.
func undrivenUSB(dir string) []plan.Controller {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []plan.Controller
	for _, e := range entries {
		d := filepath.Join(dir, e.Name())
		if readTrim(filepath.Join(d, "bInterfaceClass")) != usbMassStorage || hasDriver(d) {
			continue
		}
		parent := filepath.Dir(mustEval(d))
		out = append(out, plan.Controller{Address: e.Name(), Kind: "USB mass-storage device",
			ID: readTrim(filepath.Join(parent, "idVendor")) + ":" + readTrim(filepath.Join(parent, "idProduct")), Module: "usb_storage"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// hasDriver tells whether the sysfs device dir has a driver bound: its
// "driver" link exists.
func hasDriver(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, "driver"))
	return err == nil
}

// mustEval resolves the symlinks of p, or returns p.
func mustEval(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
