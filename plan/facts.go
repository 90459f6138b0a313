package plan

import (
	"encoding/json"
	"fmt"

	"github.com/nodeinit/nodeinit/disk"
)

// Facts is what the machine is: gathered once, read-only, serialisable to JSON,
// so a plan can be computed against a machine described in a file.
type Facts struct {
	Disks       []disk.Disk `json:"disks"`
	MemoryBytes int64       `json:"memory_bytes,omitempty"`
	EFI         bool        `json:"efi"`
	// MissingFilesystems are the filesystems the steps may have the kernel
	// mount (AllKernelFilesystems) that its kernel can neither mount nor load
	// a module for.
	MissingFilesystems []string `json:"missing_filesystems,omitempty"`
	// BIOSLoader is the directory where the initramfs carries GRUB's i386-pc
	// boot.img and core.img (boot.GrubImageDir), which a BIOS install writes;
	// empty when it carries none.
	BIOSLoader string   `json:"bios_loader,omitempty"`
	TPM        bool     `json:"tpm"`
	NICs       []NIC    `json:"nics,omitempty"`
	Consoles   []string `json:"consoles,omitempty"`
	DMI        DMI      `json:"dmi"`
	// Install is the nodeinit install found on the machine's disks, if any.
	Install *Install `json:"install,omitempty"`
	// Image is what the image check found, when the action needs an image.
	Image *ImageFacts `json:"image,omitempty"`
	// ImageSearch says where the image was looked for when the action needs
	// one, nodeinit.image= was not given, and no default source held it.
	ImageSearch *ImageSearch `json:"image_search,omitempty"`
}

// ImageSearch is where the default image sources were looked for, and what
// may have hidden the medium: the block devices the kernel showed, and the
// storage and USB controllers no driver took.
type ImageSearch struct {
	// Tried are the default sources, each with why it did not give the image.
	Tried []string `json:"tried"`
	// BlockDevices are the kernel names of the block devices there were.
	BlockDevices []string `json:"block_devices"`
	// Undriven are the controllers that had no driver bound.
	Undriven []Controller `json:"undriven,omitempty"`
}

// Controller is a storage or USB controller (or a USB mass-storage device)
// that no driver took, so nothing behind it shows as a block device.
type Controller struct {
	Address string `json:"address"` // PCI address, or USB interface name
	Kind    string `json:"kind"`    // e.g. "SATA (AHCI) controller"
	ID      string `json:"id"`      // vendor:device
	// Module is the kernel module that usually drives it, if known.
	Module string `json:"module,omitempty"`
}

// NIC is one network interface.
type NIC struct {
	Name    string `json:"name"`
	MAC     string `json:"mac"`
	Carrier bool   `json:"carrier,omitempty"`
	Driver  string `json:"driver,omitempty"`
}

// DMI is the machine identity used for URL templating and reports.
type DMI struct {
	Vendor  string `json:"vendor,omitempty"`
	Product string `json:"product,omitempty"`
	Serial  string `json:"serial,omitempty"`
	UUID    string `json:"uuid,omitempty"`
}

// Install describes an existing nodeinit install.
type Install struct {
	Disk       string          `json:"disk"` // kernel name of the disk holding the ESP
	ActiveSlot string          `json:"active_slot,omitempty"`
	Slots      map[string]Slot `json:"slots,omitempty"`
	// OVirt is set for an old oVirt Node layout (it counts as a previous install).
	OVirt bool `json:"ovirt,omitempty"`
	// Incomplete says why the install never finished (no ledger, no installed
	// slot): an install cut short. The same install command line redoes it
	// without consent; booting it is refused.
	Incomplete string `json:"incomplete,omitempty"`
	// Others are further disks that hold a nodeinit install. Which one a boot
	// or an upgrade acts on must not depend on disk names, so those refuse.
	Others []string `json:"others,omitempty"`
	// AppData are the install's app-data disks, as its ledger records them.
	AppData []AppDataRef `json:"app_data,omitempty"`
	// BIOS says the install boots through GRUB for BIOS (its ESP holds
	// nodeinit's grub.cfg), whatever firmware runs now: its upgrades touch no
	// EFI loader and no EFI boot order.
	BIOS bool `json:"bios,omitempty"`
}

// AppDataRef is one app-data disk of an install as the ledger records it: by
// the PARTUUIDs of its partitions, so that a boot never mounts another
// machine's disk that happens to carry the same names.
type AppDataRef struct {
	Index        int    `json:"index"` // N of node-app<N> and /data/app<N>
	DataPartUUID string `json:"data_partuuid"`
	SwapPartUUID string `json:"swap_partuuid,omitempty"`
}

// Slot is one A/B root slot as the ledger records it.
type Slot struct {
	Version string `json:"version,omitempty"`
	State   string `json:"state,omitempty"` // empty|writing|ready|good|bad
	// Manifest is the SHA-256 (hex) of the slot's manifest.json on the ESP: the
	// image a boot of the slot measures (package measure).
	Manifest string `json:"manifest_sha256,omitempty"`
}

// ImageFacts is the outcome of fetching and checking the image manifest,
// done while gathering facts so that Plan can stay pure.
type ImageFacts struct {
	Source   string `json:"source"`
	Name     string `json:"name,omitempty"`
	Version  string `json:"version,omitempty"`
	Arch     string `json:"arch,omitempty"`
	Signed   bool   `json:"signed"` // a trusted key verified the manifest signature
	Pinned   bool   `json:"pinned"` // nodeinit.image.sha256 matched the manifest
	RootSize int64  `json:"root_size,omitempty"`
	// UpgradeFrom lists the version constraints the image accepts to upgrade from.
	UpgradeFrom []string `json:"upgrade_from,omitempty"`
	// AdminHash is set when nodeinit.adminpw=bundle asked for the admin password
	// hash and the bundle's adminpw.hash matched the signed manifest and held one.
	// The hash itself is never a fact.
	AdminHash bool `json:"admin_hash,omitempty"`
	// Error is why the image could not be used; Plan refuses when it is set.
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
}

// ParseFacts reads facts from their JSON form (a file written by the probe, or a
// test fixture). name is where they came from, for the error.
func ParseFacts(name string, b []byte) (*Facts, error) {
	var f Facts
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse facts %s: %w", name, err)
	}
	return &f, nil
}

// Disk returns the disk with the given kernel name.
func (f *Facts) Disk(name string) (*disk.Disk, bool) {
	for i := range f.Disks {
		if f.Disks[i].Name == name {
			return &f.Disks[i], true
		}
	}
	return nil, false
}
