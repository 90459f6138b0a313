package plan

// Stage names, in the order they can run. The first two and the last two are the
// engine's own steps around the plan; the rest are planned steps. cmdline.StageNames
// lists the same names, so nodeinit.break accepts exactly these (a test checks it).
const (
	StageNetwork       = "network"          // bring up the boot NIC when something needs it
	StageProbe         = "probe"            // gather facts, open and check the image
	StageFetch         = "fetch-boot-files" // kernel, initrd and loader into RAM, checked, before anything is written
	StageCopyToRAM     = "copy-to-ram"      // stateless: copy the rootfs into RAM, checking it
	StageWipe          = "wipe"             // clear signatures and tables
	StagePartition     = "partition"        // write the GPT
	StageFilesystems   = "filesystems"      // make FAT32, ext4 and swap
	StageWriteSlot     = "write-slot"       // stream the rootfs into a root slot
	StageCopyBootFiles = "copy-boot-files"  // loader, and the slot's kernel, initrd and manifest, onto the ESP
	StageSeedConfig    = "seed-config"      // config from the command line into node-config
	StageMigrateConfig = "migrate-config"   // snapshot node-config, apply the image's migrations
	StageAddBootEntry  = "add-boot-entry"   // the slot's loader entry and its ledger record
	StageBootOrder     = "boot-order"       // EFI Boot#### and BootOrder
	StageReport        = "report"           // log onto the ESP, local_boot_trigger
	StageMountRoot     = "mount-root"       // assemble the node's root under /newroot
	StageSwitchRoot    = "switch-root"      // hand-off: exec the node's init
	StageReboot        = "reboot"           // hand-off: reboot
)

// AllStages lists every stage name in run order.
var AllStages = []string{StageNetwork, StageProbe, StageFetch, StageCopyToRAM, StageWipe, StagePartition, StageFilesystems,
	StageWriteSlot, StageCopyBootFiles, StageSeedConfig, StageMigrateConfig, StageAddBootEntry, StageBootOrder,
	StageReport, StageMountRoot, StageSwitchRoot, StageReboot}

// Input is the typed input of one planned step; its concrete type says which
// stage implementation runs it.
type Input interface {
	// Stage is the stage name this input belongs to.
	Stage() string
	// Target is the kernel name of the disk the step writes, or "".
	Target() string
}

// Wipe clears every signature and partition table on Disk, except the partition
// labelled Keep, in the erase mode Mode (nodeinit.erase: signatures, discard or
// zero; Secure asks for the device's secure discard).
type Wipe struct {
	Disk   string `json:"disk"`
	Keep   string `json:"keep,omitempty"`
	Mode   string `json:"mode"`
	Secure bool   `json:"secure,omitempty"`
}

// Partition writes the GPT of Disk's layout (Blueprint.LayoutOf): the install
// disk's, or an app-data disk's.
type Partition struct {
	Disk string `json:"disk"`
}

// Filesystems makes the filesystems of Disk's layout (Blueprint.LayoutOf),
// leaving Keep as it is.
// Only, when set, limits it to the partitions of those labels (an in-place
// reinstall remakes node-logging, node-swap and node-data, nothing else).
type Filesystems struct {
	Disk string   `json:"disk"`
	Keep string   `json:"keep,omitempty"`
	Only []string `json:"only,omitempty"`
}

// FetchBootFiles copies the image's kernel and initrd, and its boot loader when
// Loader is set, into RAM and checks each against the signed manifest. It runs
// before the first write, so a missing or corrupt file refuses the action with
// the disk as it was; copy-boot-files then uses these copies.
type FetchBootFiles struct {
	Loader bool `json:"loader,omitempty"`
}

// WriteSlot streams the image's rootfs into node-root-Slot on Disk. With
// Upgrade (an upgrade, or a reinstall in place: the other slot keeps booting)
// it first drops the slot's old entry and marks it being written.
type WriteSlot struct {
	Disk    string `json:"disk"`
	Slot    string `json:"slot"`
	Upgrade bool   `json:"upgrade,omitempty"`
}

// CopyBootFiles puts the slot's kernel, initrd and manifest on Disk's ESP, and the
// boot loader when Loader is set (an install: the loader every slot shares).
// Ready records the slot as written in the ledger (a slot written next to a
// working one: it has no entry yet).
type CopyBootFiles struct {
	Disk   string `json:"disk"`
	Slot   string `json:"slot"`
	Loader bool   `json:"loader,omitempty"`
	Ready  bool   `json:"ready,omitempty"`
	// BIOS installs GRUB instead of systemd-boot (with Loader): boot.img into
	// the MBR, core.img into the BIOS boot partition, grub.cfg and grubenv on
	// the ESP, whose entries then live in grub.cfg (package boot, grub.go).
	BIOS bool `json:"bios,omitempty"`
	// TrialLoader stages the bundle's loader for a trial when it differs from
	// the one the firmware starts (an upgrade on EFI: see boot's loader trials).
	TrialLoader bool `json:"trial_loader,omitempty"`
}

// SeedConfig writes the configuration from the command line into node-config.
// With Replace (a reinstall in place) it first snapshots the config as
// Snapshot, the version the working slot expects, and records in the ledger
// that slot Slot's config is being written, then replaces the whole config:
// a boot of the old slot before Slot's entry exists restores the snapshot.
type SeedConfig struct {
	Disk     string `json:"disk"`
	Replace  bool   `json:"replace,omitempty"`
	Snapshot string `json:"snapshot,omitempty"`
	Slot     string `json:"slot,omitempty"`
}

// MigrateConfig snapshots node-config as From and applies the migrations of To.
type MigrateConfig struct {
	Disk string `json:"disk"`
	Slot string `json:"slot"`
	From string `json:"from"`
	To   string `json:"to"`
}

// AddBootEntry writes the slot's loader entry and records it in the ledger. Tries
// is the boot-counting budget (0: an uncounted entry, the install's). Fresh starts
// a new ledger (install, reinstall onto a wiped disk). NewArgs takes the entry's
// kernel arguments from this command line, as Fresh does, rather than from the
// running slot's entry (an upgrade keeps those).
type AddBootEntry struct {
	Disk    string `json:"disk"`
	Slot    string `json:"slot"`
	Tries   int    `json:"tries,omitempty"`
	Fresh   bool   `json:"fresh,omitempty"`
	NewArgs bool   `json:"new_args,omitempty"`
}

// BootOrder puts Disk's ESP first in the EFI boot order, or removes nodeinit's
// entries when Remove is set.
type BootOrder struct {
	Disk   string `json:"disk,omitempty"`
	Remove bool   `json:"remove,omitempty"`
}

// Report saves the event log on Disk's ESP and calls local_boot_trigger.
type Report struct {
	Disk string `json:"disk"`
}

// CopyToRAM copies the image's rootfs into RAM, checking its signed digests.
type CopyToRAM struct{}

// MountRoot assembles the node's root from node-root-Slot on Disk, or from RAM
// when Slot is "ram". AppData are the app-data disks the ledger records: each
// found by its PARTUUID is mounted on /data/app<N>; one that is missing is
// reported and the boot goes on.
type MountRoot struct {
	Disk    string       `json:"disk,omitempty"`
	Slot    string       `json:"slot"`
	AppData []AppDataRef `json:"app_data,omitempty"`
}

// Stage names the stage of each input.
func (Wipe) Stage() string           { return StageWipe }
func (Partition) Stage() string      { return StagePartition }
func (Filesystems) Stage() string    { return StageFilesystems }
func (FetchBootFiles) Stage() string { return StageFetch }
func (WriteSlot) Stage() string      { return StageWriteSlot }
func (CopyBootFiles) Stage() string  { return StageCopyBootFiles }
func (SeedConfig) Stage() string     { return StageSeedConfig }
func (MigrateConfig) Stage() string  { return StageMigrateConfig }
func (AddBootEntry) Stage() string   { return StageAddBootEntry }
func (BootOrder) Stage() string      { return StageBootOrder }
func (Report) Stage() string         { return StageReport }
func (CopyToRAM) Stage() string      { return StageCopyToRAM }
func (MountRoot) Stage() string      { return StageMountRoot }

// Target is the disk a step writes ("" for none): the one an error names.
func (w Wipe) Target() string          { return w.Disk }
func (p Partition) Target() string     { return p.Disk }
func (f Filesystems) Target() string   { return f.Disk }
func (FetchBootFiles) Target() string  { return "" }
func (w WriteSlot) Target() string     { return w.Disk }
func (c CopyBootFiles) Target() string { return c.Disk }
func (s SeedConfig) Target() string    { return s.Disk }
func (m MigrateConfig) Target() string { return m.Disk }
func (a AddBootEntry) Target() string  { return a.Disk }
func (b BootOrder) Target() string     { return b.Disk }
func (r Report) Target() string        { return r.Disk }
func (CopyToRAM) Target() string       { return "" }
func (m MountRoot) Target() string     { return m.Disk }

// Step is one planned stage run: what it does, exactly what it touches, and its
// typed input. Its name is its input's stage.
type Step struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Touches     []string `json:"touches,omitempty"`
	Input       Input    `json:"input"`
}

// Describe returns the human description of the step.
func (s Step) Describe() string { return s.Description }

// step builds a Step named after its input.
func step(in Input, description string, touches ...string) Step {
	return Step{Name: in.Stage(), Description: description, Touches: touches, Input: in}
}
