package modalias

import "fmt"

// virtioPCIVendor is the PCI vendor ID of every virtio device (Red Hat).
const virtioPCIVendor = 0x1af4

// VirtioChild returns the modalias of the virtio device that virtio_pci
// registers for the PCI device whose modalias is pci, and false when pci is
// not a virtio device. The virtio spec (4.1.2.1) fixes the mapping: a modern
// device's PCI device ID is 0x1040 plus its virtio device ID, a transitional
// device (0x1000-0x103f) carries it as its PCI subsystem device ID, and the
// virtio vendor is the PCI subsystem vendor, as drivers/virtio/virtio_pci_*.c
// read them; the kernel writes it as "virtio:d%08Xv%08X". So /init can load
// virtio_blk beside virtio_pci, in the same round, instead of scanning sysfs
// again for the device virtio_pci adds.
func VirtioChild(pci string) (string, bool) {
	var vendor, device, subVendor, subDevice uint32
	if n, err := fmt.Sscanf(pci, "pci:v%8Xd%8Xsv%8Xsd%8X", &vendor, &device, &subVendor, &subDevice); err != nil || n != 4 || vendor != virtioPCIVendor {
		return "", false
	}
	var id uint32
	switch {
	case device >= 0x1040 && device <= 0x107f:
		id = device - 0x1040
	case device >= 0x1000 && device <= 0x103f:
		id = subDevice
	default:
		return "", false
	}
	return fmt.Sprintf("virtio:d%08Xv%08X", id, subVendor), true
}
