package disk

// Disk is what discovery learned about one whole block device. It is a fact:
// gathered once, read-only, serialisable to JSON.
type Disk struct {
	Name string `json:"name"` // kernel name, e.g. nvme0n1
	Path string `json:"path"` // /dev/nvme0n1

	SizeBytes          int64 `json:"size_bytes"`
	LogicalSectorSize  int   `json:"logical_sector_size"`
	PhysicalSectorSize int   `json:"physical_sector_size"`
	Rotational         bool  `json:"rotational,omitempty"`
	Removable          bool  `json:"removable,omitempty"`
	ReadOnly           bool  `json:"read_only,omitempty"`

	// Transport is nvme, ata, scsi, usb, virtio, mmc, loop, ram, zram or unknown.
	Transport string `json:"transport"`

	Model  string   `json:"model,omitempty"`
	Vendor string   `json:"vendor,omitempty"`
	Serial string   `json:"serial,omitempty"`
	WWN    string   `json:"wwn,omitempty"`
	ByID   []string `json:"by_id,omitempty"`   // names under /dev/disk/by-id, as udev would make them
	ByPath string   `json:"by_path,omitempty"` // name under /dev/disk/by-path

	Holders []string `json:"holders,omitempty"` // dm-0, md127, … on the disk or its partitions
	Mounts  []string `json:"mounts,omitempty"`  // mount points on the disk or its partitions
	Swap    bool     `json:"swap,omitempty"`    // active swap on the disk or its partitions

	Partitions []Partition  `json:"partitions,omitempty"`
	Signatures []Signature  `json:"signatures,omitempty"`
	Content    ContentClass `json:"content"`
	// ProbeError is why the disk's bytes could not be read; such a disk counts as foreign.
	ProbeError string `json:"probe_error,omitempty"`
	// InstalledVersion is the node image version found when Content is ContentOurs.
	InstalledVersion string `json:"installed_version,omitempty"`

	// BootMedium is set when this disk holds the medium we booted from.
	BootMedium bool `json:"boot_medium,omitempty"`

	// PVs are the LVM physical volumes on the disk and its partitions, with the
	// volume group metadata each carries.
	PVs []PV `json:"pvs,omitempty"`
}

// Partition is one partition of a Disk.
type Partition struct {
	Number    int    `json:"number"`
	Name      string `json:"name"` // kernel name, e.g. nvme0n1p2
	Path      string `json:"path"`
	StartByte int64  `json:"start_byte"`
	SizeBytes int64  `json:"size_bytes"`
	PartLabel string `json:"partlabel,omitempty"` // GPT partition name
	TypeGUID  string `json:"type_guid,omitempty"`
	PartUUID  string `json:"partuuid,omitempty"`
	FSType    string `json:"fstype,omitempty"`
	FSLabel   string `json:"fslabel,omitempty"`
	FSUUID    string `json:"fsuuid,omitempty"`
	// Mounts are the mount points of this partition (also listed in Disk.Mounts).
	Mounts []string `json:"mounts,omitempty"`
}

// Signature is one on-disk signature found by probing (GPT, ext4, LVM2_member, …).
type Signature struct {
	Type   string `json:"type"`            // gpt, dos, ext4, xfs, btrfs, vfat, swap, LVM2_member, linux_raid_member, crypto_LUKS, iso9660, …
	Offset int64  `json:"offset"`          // byte offset on the disk
	Label  string `json:"label,omitempty"` // filesystem label when there is one (VG name for LVM2_member, array name for md)
	UUID   string `json:"uuid,omitempty"`  // filesystem, PV, array or LUKS UUID when there is one
	Where  string `json:"where,omitempty"` // "disk" or the partition name
}

// ContentClass is what a disk holds, for the consent rules.
type ContentClass string

// Content classes, from the safest to overwrite to the least.
const (
	ContentBlank   ContentClass = "blank"    // no signature anywhere
	ContentOurs    ContentClass = "ours"     // a nodeinit install
	ContentOVirt   ContentClass = "ovirt"    // an old oVirt Node install (Root/RootBackup, HostVG)
	ContentAppData ContentClass = "app-data" // a nodeinit app-data disk: node-app<N> and node-swap2 only
	ContentForeign ContentClass = "foreign"  // anything else: another OS, data, LVM, md, LUKS
)

// PartitionByLabel returns the partition whose GPT name (PARTLABEL) is label, or nil.
func (d *Disk) PartitionByLabel(label string) *Partition {
	for i := range d.Partitions {
		if d.Partitions[i].PartLabel == label {
			return &d.Partitions[i]
		}
	}
	return nil
}

// Dedup returns s without repeated strings, in first-seen order.
func Dedup(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
