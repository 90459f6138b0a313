package plan

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/operr"
)

// Handoff is what happens after the last step.
type Handoff string

// Hand-offs.
const (
	HandoffSwitchRoot Handoff = "switch-root"
	HandoffReboot     Handoff = "reboot"
	HandoffShell      Handoff = "shell"
)

// Target is the identity of a disk the plan writes, as an operator would check it.
type Target struct {
	Name      string            `json:"name"`
	Path      string            `json:"path"`
	Model     string            `json:"model,omitempty"`
	Serial    string            `json:"serial,omitempty"`
	WWN       string            `json:"wwn,omitempty"`
	ByID      string            `json:"by_id,omitempty"`
	SizeBytes int64             `json:"size_bytes"`
	Sector    int               `json:"logical_sector_size"`
	Content   disk.ContentClass `json:"content"`
}

// Blueprint is a computed plan: the ordered steps that params and facts imply,
// with the disks they touch and what they destroy and keep.
type Blueprint struct {
	Action   cmdline.Action `json:"action"`
	Target   *Target        `json:"target,omitempty"`
	Disks    []Target       `json:"disks,omitempty"` // every disk the plan writes (uninstall, app-data disks)
	Layout   *disk.Layout   `json:"layout,omitempty"`
	AppData  []AppDataDisk  `json:"app_data,omitempty"` // the app-data disks the plan writes, each with its layout
	Slot     string         `json:"slot,omitempty"`
	Image    *ImageFacts    `json:"image,omitempty"`
	Destroys []string       `json:"destroys,omitempty"`
	Keeps    []string       `json:"keeps,omitempty"`
	Steps    []Step         `json:"steps"`
	Handoff  Handoff        `json:"handoff"`
	Warnings []string       `json:"warnings,omitempty"`
	DryRun   bool           `json:"dryrun,omitempty"`
	// Measures is what the boot extends into the TPM, when the machine has one.
	Measures []Measurement `json:"measures,omitempty"`
	// Firmware is cmdline.FirmwareBIOS for an install that boots through GRUB
	// under BIOS; empty for UEFI.
	Firmware string `json:"firmware,omitempty"`
}

// refuse is a plan refusal: nothing will be written. fix says what to change,
// arg is the kernel argument to add when one fixes it.
func refuse(fix, format string, args ...any) error {
	return &operr.Error{What: fmt.Sprintf(format, args...), Fix: fix}
}

// refuseArg is a refusal that one kernel argument fixes.
func refuseArg(arg, fix, format string, args ...any) error {
	return &operr.Error{What: fmt.Sprintf(format, args...), Fix: fix, Arg: arg}
}

// Plan computes what params and facts imply. It does no I/O: every check that can be
// made before writing is made here, and an error means nothing will be written.
func Plan(p *cmdline.Params, f *Facts) (*Blueprint, error) {
	if p.PossiblyTruncated && p.Destructive() {
		return nil, refuse("shorten the kernel command line (drop unused arguments) so it is below the limit",
			"the kernel command line is %d bytes or more and may have been cut; refusing the destructive action %q", cmdline.MaxLen-1, p.Action)
	}
	var (
		plan *Blueprint
		err  error
	)
	switch p.Action {
	case cmdline.ActionRescue:
		plan = &Blueprint{Action: p.Action, Handoff: HandoffShell}
	case cmdline.ActionBoot:
		if p.AutoInstall && (f.Install == nil || f.Install.Incomplete != "") {
			plan, err = planInstall(p, f, cmdline.ActionInstall)
			if plan != nil {
				plan.Warnings = append(plan.Warnings, "no action flag: storage_init and BOOTIF on a machine without an install mean install (oVirt auto-install)")
			}
		} else {
			plan, err = planBoot(p, f)
		}
	case cmdline.ActionInstall:
		plan, err = planInstall(p, f, cmdline.ActionInstall)
	case cmdline.ActionReinstall:
		plan, err = planInstall(p, f, cmdline.ActionReinstall)
	case cmdline.ActionUpgrade:
		plan, err = planUpgrade(p, f)
	case cmdline.ActionUninstall:
		plan, err = planUninstall(p, f)
	case cmdline.ActionStateless:
		plan, err = planStateless(p, f)
	default:
		return nil, refuse("use one of install, reinstall, upgrade, uninstall, stateless, rescue", "unknown action %q", p.Action)
	}
	if err != nil {
		return nil, err
	}
	if err := checkTools(plan, f); err != nil {
		return nil, err
	}
	if plan.Action == cmdline.ActionInstall || plan.Action == cmdline.ActionReinstall || plan.Action == cmdline.ActionStateless {
		// What seed-config will write is checked now, before the first write.
		if err := checkAdminHash(p, f); err != nil {
			return nil, err
		}
		if err := checkConfig(p, f); err != nil {
			return nil, err
		}
	}
	plan.DryRun = p.Node.DryRun
	plan.Warnings = append(plan.Warnings, p.Warnings...)
	if f.TPM && p.Node.TPM != cmdline.TPMOff {
		plan.Measures = measurements(plan, p)
	}
	return plan, nil
}

// KernelFilesystems are the filesystems step s has the kernel mount: the kernel
// must have them built in, or the initramfs carry their modules. The ESP is
// read and written in-process; only the node's boot mounts it.
func KernelFilesystems(s Step) []string {
	switch in := s.Input.(type) {
	case SeedConfig, MigrateConfig:
		return []string{"ext4"}
	case MountRoot:
		if in.Slot == "ram" {
			return []string{"squashfs", "overlay"}
		}
		return []string{"squashfs", "overlay", "ext4", "vfat"}
	}
	return nil
}

// AllKernelFilesystems are the filesystems any step may have the kernel mount.
var AllKernelFilesystems = []string{"ext4", "squashfs", "overlay", "vfat"}

// checkTools refuses a plan whose steps need a program or a kernel filesystem
// the machine lacks, before the first write rather than half way through. One
// refusal names everything missing, so one rebuild of the initramfs fixes it.
func checkTools(bp *Blueprint, f *Facts) error {
	var missing, fixes []string
	add := func(what, fix string) {
		if !slices.Contains(missing, what) {
			missing = append(missing, what)
			if !slices.Contains(fixes, fix) {
				fixes = append(fixes, fix)
			}
		}
	}
	for _, s := range bp.Steps {
		for _, fs := range KernelFilesystems(s) {
			if slices.Contains(f.MissingFilesystems, fs) {
				add(fmt.Sprintf("no %s filesystem in its kernel, which the %s step mounts", fs, s.Name),
					"build the initramfs with the kernel's "+fs+" module (nodeinit mkinitramfs --modules-dir adds it by default; a --module list must name it), or boot a kernel that has it built in")
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return refuse(strings.Join(fixes, "; "), "%s: this initramfs has %s", bp.Action, strings.Join(missing, ", and "))
}

func planBoot(p *cmdline.Params, f *Facts) (*Blueprint, error) {
	if f.Install == nil || f.Install.OVirt {
		return nil, refuse("boot an install medium with 'install storage_init=<disk>' to install, or 'rescue' for a shell",
			"no nodeinit install found on any disk")
	}
	if err := oneInstall(f); err != nil {
		return nil, err
	}
	if why := f.Install.Incomplete; why != "" {
		return nil, refuseArg("install storage_init=/dev/"+f.Install.Disk, "boot the install medium again with the same install command line: it finishes the install",
			"%s holds a nodeinit install that never finished: %s", f.Install.Disk, why)
	}
	slot := p.Node.Slot
	if slot == "" {
		slot = f.Install.ActiveSlot
	}
	if slot == "" {
		slot = "a"
	}
	s, ok := f.Install.Slots[slot]
	if !ok || s.Version == "" {
		return nil, refuse("boot the entry of the other slot, or reinstall",
			"slot %s on %s holds no image", slot, f.Install.Disk)
	}
	d, _ := f.Disk(f.Install.Disk)
	plan := &Blueprint{Action: cmdline.ActionBoot, Slot: slot, Handoff: HandoffSwitchRoot}
	if d != nil {
		t := targetOf(d)
		plan.Target = &t
	}
	appText, appTouches := appDataMountText(f.Install.AppData)
	plan.Steps = []Step{step(MountRoot{Disk: f.Install.Disk, Slot: slot, AppData: f.Install.AppData},
		fmt.Sprintf("mount slot %s (version %s) read-only with a tmpfs overlay, bind persisted config, mount logging (a new one first gets the image's /var/log) and data", slot, s.Version)+appText,
		append([]string{"node-root-" + slot, "node-config", "node-logging", "node-data"}, appTouches...)...)}
	return plan, nil
}

// planInstall covers install, reinstall and oVirt's auto-install.
func planInstall(p *cmdline.Params, f *Facts, action cmdline.Action) (*Blueprint, error) {
	// An install over the same image boots it: no PXE reinstall loops. An
	// install that never finished is done again (see redo below).
	redo := action == cmdline.ActionInstall && f.Install != nil && !f.Install.OVirt && f.Install.Incomplete != ""
	if action == cmdline.ActionInstall && f.Install != nil && !f.Install.OVirt && !redo {
		if err := oneInstall(f); err != nil {
			return nil, err
		}
		active := f.Install.Slots[f.Install.ActiveSlot]
		if f.Image != nil && f.Image.Error == "" && active.Version != "" && active.Version == f.Image.Version {
			plan, err := planBoot(p, f)
			if plan != nil {
				plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s already holds version %s: booting it instead of installing again", f.Install.Disk, active.Version))
			}
			return plan, err
		}
		return nil, refuseArg("reinstall", "add 'reinstall' to replace it (data is kept only with nodeinit.keep=data), or 'upgrade' to upgrade it",
			"%s already holds a nodeinit install (slot %s version %s); install does not overwrite an install", f.Install.Disk, f.Install.ActiveSlot, active.Version)
	}
	if err := checkImage(p, f); err != nil {
		return nil, err
	}
	target, extra, err := selectTargets(p, f, action)
	if err != nil {
		return nil, err
	}
	consentAction := string(action)
	if redo && target.Name == f.Install.Disk {
		// Our own unfinished install: the same command line may finish it.
		consentAction = string(cmdline.ActionReinstall)
	}
	if err := disk.CheckConsent(*target, consentAction, p.Node.Wipe); err != nil {
		return nil, err
	}
	var vols map[string]int64
	if p.StorageVol != nil {
		vols = p.StorageVol.SizesMiB
	}
	layout, err := disk.PlanLayout(target.SizeBytes, target.LogicalSectorSize, vols)
	if err != nil {
		return nil, fmt.Errorf("layout for %s: %w", target.Path, err)
	}
	firmware := installFirmware(p, f)
	if firmware == cmdline.FirmwareBIOS {
		if f.BIOSLoader == "" {
			return nil, refuseArg("nodeinit.firmware=uefi", "build the initramfs with GRUB for BIOS (nodeinit mkinitramfs --bios-loader DIR: boot.img and core.img), or install for UEFI with nodeinit.firmware=uefi",
				"a BIOS install of %s needs GRUB's boot.img and core.img, and this initramfs carries none", target.Path)
		}
		if layout, err = layout.WithBIOSBoot(); err != nil {
			return nil, refuseArg("nodeinit.firmware=uefi", "install for UEFI, or pick a disk with 512-byte sectors", "%s: %v", target.Path, err)
		}
	}
	plan0Notices := layout.Notices
	if rs := f.Image.RootSize; rs > 0 {
		if slot, ok := layout.Find("node-root-a"); ok && slot.Size < rs {
			return nil, refuse("raise the root size in storage_vol (third field, MiB)",
				"image %s needs %d MiB but the root slot is %d MiB", f.Image.Version, ceilMiB(rs), slot.Size>>20)
		}
	}
	keepData := action == cmdline.ActionReinstall && contains(p.Node.Keep, "data")
	if keepData {
		if err := layout.KeepInPlace("node-data", target.Partitions); err != nil {
			return nil, fmt.Errorf("nodeinit.keep=data on %s: %w", target.Path, err)
		}
	}
	app, appErr := planAppData(p, f, extra, consentAction, keepData)

	var inPlaceWhyNot string
	if action == cmdline.ActionReinstall {
		// In place, the app-data disks are left as they are: what would be
		// refused about writing them (mounted on the running node, say) does
		// not count unless storage_init lists them, which asks for them as
		// they are laid out now.
		inPlaceWhyNot = inPlaceBlocker(p, f, target, layout, app.disks)
		if inPlaceWhyNot == "" && (appErr == nil || p.StorageInit == nil) {
			return planReinstallInPlace(p, f, target, layout, keepData, extra)
		}
	}
	if appErr != nil {
		return nil, appErr
	}

	t := targetOf(target)
	plan := &Blueprint{Action: action, Target: &t, Layout: &layout, Slot: "a", Image: f.Image, Handoff: HandoffReboot}
	if firmware == cmdline.FirmwareBIOS {
		plan.Firmware = firmware
	}
	if inPlaceWhyNot != "" && target.Content == disk.ContentOurs {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s: the old install stops booting at the wipe, because %s", target.Path, inPlaceWhyNot))
	}
	plan.Warnings = append(plan.Warnings, linkWarnings(p, f)...)
	if redo && target.Name == f.Install.Disk {
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s holds a nodeinit install that never finished (%s): installing it again", target.Path, f.Install.Incomplete))
	}
	plan.Warnings = append(plan.Warnings, plan0Notices...)
	plan.Warnings = append(plan.Warnings, app.warnings...)
	if action == cmdline.ActionReinstall {
		plan.Warnings = append(plan.Warnings, unlistedAppData(f, extra)...)
	}
	plan.Disks = append(plan.Disks, t)
	plan.AppData = app.disks
	for _, a := range app.disks {
		plan.Disks = append(plan.Disks, a.Target)
	}
	dev := target.Path
	if target.Content != disk.ContentBlank {
		what := describeContent(target)
		if keepData {
			plan.Destroys = append(plan.Destroys, fmt.Sprintf("%s: everything except node-data (%s)", dev, what))
			plan.Keeps = append(plan.Keeps, dev+": node-data partition and its files")
		} else {
			plan.Destroys = append(plan.Destroys, fmt.Sprintf("%s: %s", dev, what))
		}
	}
	plan.Destroys = append(plan.Destroys, app.destroys...)
	plan.Keeps = append(plan.Keeps, app.keeps...)
	keep := ""
	if keepData {
		keep = "node-data"
	}
	wiped := app.wiped
	if target.Content != disk.ContentBlank {
		wiped = append([]string{target.Path}, wiped...)
	}
	if err := lvsSpanningOut(f, wiped); err != nil {
		return nil, err
	}
	plan.Steps = append(plan.Steps, fetchStep(f, true))
	if target.Content != disk.ContentBlank {
		plan.Steps = append(plan.Steps, wipeStep(p, target.Name, keep,
			fmt.Sprintf("remove every signature and partition table on %s", dev)+keepNote(keepData), dev))
	}
	parts := make([]string, 0, len(layout.Partitions))
	for _, ps := range layout.Partitions {
		if ps.IsBIOSBoot() {
			parts = append(parts, fmt.Sprintf("%s %dKiB", ps.Name, ps.Size>>10))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %dMiB", ps.Name, ps.Size>>20))
	}
	plan.Steps = append(plan.Steps,
		step(Partition{Disk: target.Name},
			fmt.Sprintf("write a GPT (%d-byte sectors) on %s: %s", target.LogicalSectorSize, dev, strings.Join(parts, ", ")), dev),
		step(Filesystems{Disk: target.Name, Keep: keep}, filesystemsText(&layout, keep),
			partTouches(&layout, keep, "NODE-ESP", "node-config", "node-logging", "node-swap", "node-data")...))
	// The app-data disks come before the slot: the install is unfinished (no
	// ledger) until add-boot-entry, so a cut anywhere among them is redone.
	plan.Steps = append(plan.Steps, app.steps...)
	plan.Steps = append(plan.Steps,
		writeSlotStep(f, target.Name, "a", false),
		copyBootFilesStep(target.Name, firmware),
		step(SeedConfig{Disk: target.Name},
			"write a new machine ID, and hostname, network, dns, ntp, admin password hash, ssh and management settings from the command line, into node-config", "node-config"),
		step(AddBootEntry{Disk: target.Name, Slot: "a", Fresh: true},
			"write slot a's loader entry and a new ledger recording the install"+ledgerAppText(app.disks), "NODE-ESP"),
		step(BootOrder{Disk: target.Name}, "put the disk first in the EFI boot order", "efivars"),
		step(Report{Disk: target.Name}, "save the log on the ESP and report the outcome", "NODE-ESP"),
	)
	switch {
	case firmware == cmdline.FirmwareBIOS:
		plan.Steps = removeStep(plan.Steps, StageBootOrder)
		plan.Warnings = append(plan.Warnings, "installing for BIOS: GRUB in the MBR and "+disk.LabelBIOSBoot+" boots the disk, with its boot counters in the ESP's grub/grubenv")
	case !f.EFI:
		plan.Steps = removeStep(plan.Steps, StageBootOrder)
		plan.Warnings = append(plan.Warnings, "no EFI firmware found: the EFI boot order is not changed")
	}
	return plan, nil
}

// installFirmware is the firmware the installed disk boots under:
// nodeinit.firmware, else BIOS when the installer runs under BIOS and its
// initramfs carries GRUB, else UEFI (a disk installed under BIOS for a UEFI
// machine, as before BIOS installs existed).
func installFirmware(p *cmdline.Params, f *Facts) string {
	switch {
	case p.Node.Firmware != "":
		return p.Node.Firmware
	case !f.EFI && f.BIOSLoader != "":
		return cmdline.FirmwareBIOS
	}
	return cmdline.FirmwareUEFI
}

// copyBootFilesStep installs the boot loader for firmware, and slot a's files.
func copyBootFilesStep(diskName, firmware string) Step {
	if firmware == cmdline.FirmwareBIOS {
		return step(CopyBootFiles{Disk: diskName, Slot: "a", Loader: true, BIOS: true},
			"install GRUB for BIOS (boot.img into the MBR, core.img into "+disk.LabelBIOSBoot+", grub.cfg and grubenv on the ESP), and slot a's kernel, initrd and manifest on the ESP",
			"MBR", disk.LabelBIOSBoot, "NODE-ESP")
	}
	return step(CopyBootFiles{Disk: diskName, Slot: "a", Loader: true},
		"install systemd-boot, and slot a's kernel, initrd and manifest, on the ESP", "NODE-ESP")
}

// trialTries is the boot-counting budget of a slot on trial: nodeinit.tries,
// or 3.
func trialTries(p *cmdline.Params) int {
	if p.Node.Tries > 0 {
		return p.Node.Tries
	}
	return 3
}

// linkWarnings warns when BOOTIF=link finds no interface with a link.
func linkWarnings(p *cmdline.Params, f *Facts) []string {
	if p.BootIf != nil && p.BootIf.Link && !slices.ContainsFunc(f.NICs, func(n NIC) bool { return n.Carrier }) {
		return []string{"BOOTIF=link: no network interface has a link, so no interface is configured; name it with BOOTIF=<MAC> to configure one"}
	}
	return nil
}

// fetchStep copies the boot files into RAM and checks them before anything is written.
func fetchStep(f *Facts, loader bool) Step {
	what := "kernel and initrd"
	if loader {
		what = "kernel, initrd and boot loader"
	}
	return step(FetchBootFiles{Loader: loader},
		fmt.Sprintf("copy %s %s's %s into RAM and check them against the signed manifest, before anything is written", f.Image.Name, f.Image.Version, what), "ram")
}

// inPlaceBlocker says why a reinstall onto target cannot keep the working
// install bootable until the new one is written, or "" when it can: target
// holds this machine's one complete nodeinit install, its running slot is
// blessed, the new layout is the disk's partition table as it is, the erase
// mode asks for no more than the default, and nothing it writes is mounted.
func inPlaceBlocker(p *cmdline.Params, f *Facts, target *disk.Disk, layout disk.Layout, apps []AppDataDisk) string {
	in := f.Install
	switch {
	case in == nil || in.OVirt || in.Disk != target.Name:
		return "it holds no nodeinit install"
	case in.Incomplete != "":
		return "its install never finished (" + in.Incomplete + ")"
	case len(in.Others) > 0:
		return "more disks hold an install"
	case in.Slots[in.ActiveSlot].State != "good":
		return fmt.Sprintf("its running slot %s is not blessed", orDash(in.ActiveSlot))
	case string(p.Node.EraseMode()) != string(disk.EraseSignatures) || p.Node.EraseSecure:
		return fmt.Sprintf("nodeinit.erase=%s asks for the whole disk to be erased first", p.Node.EraseMode())
	}
	if d := layout.Compare(target.Partitions); !d.Matches() {
		return "the new layout differs from its partition table (" + strings.ReplaceAll(d.String(), "\n", "; ") + ")"
	}
	// In place, the app-data disks stay as they are: only when storage_init
	// names the install's own, laid out as it would lay them out now.
	if p.StorageInit != nil {
		if why := appDataDiffers(f, apps); why != "" {
			return why
		}
	}
	for _, ps := range target.Partitions {
		// The running slot, the ESP and node-config are used where they are
		// mounted (a reinstall from the running node); the rest is remade.
		if len(ps.Mounts) > 0 && ps.PartLabel != "node-root-"+in.ActiveSlot && ps.PartLabel != disk.LabelESP && ps.PartLabel != "node-config" {
			return fmt.Sprintf("%s (%s) is mounted at %s", ps.PartLabel, ps.Name, strings.Join(ps.Mounts, ", "))
		}
	}
	return ""
}

// planReinstallInPlace reinstalls the way an upgrade runs: the new image goes
// into the inactive slot, the config is replaced behind a snapshot, and only the
// new slot's counted entry makes it the one that boots. Until then a power cut
// or a failed fetch leaves the old slot booting with its own config (its boot
// restores the snapshot); a new slot that does not come up falls back to it.
func planReinstallInPlace(p *cmdline.Params, f *Facts, target *disk.Disk, layout disk.Layout, keepData bool, apps []appDisk) (*Blueprint, error) {
	active := f.Install.ActiveSlot
	slot := OtherSlot(active)
	from := f.Install.Slots[active].Version
	tries := trialTries(p)
	t := targetOf(target)
	plan := &Blueprint{Action: cmdline.ActionReinstall, Target: &t, Layout: &layout, Slot: slot, Image: f.Image, Handoff: HandoffReboot}
	plan.Disks = []Target{t}
	plan.Warnings = append(plan.Warnings, layout.Notices...)
	plan.Warnings = append(plan.Warnings, linkWarnings(p, f)...)
	plan.Warnings = append(plan.Warnings, fmt.Sprintf("reinstall in place: slot %s (version %s) keeps booting until slot %s is written; slot %s then boots on trial with %d tries and falls back to slot %s",
		active, from, slot, slot, tries, active))
	dev := target.Path
	old := f.Install.Slots[slot].Version
	if old == "" {
		old = "empty"
	}
	var remake []string
	for _, name := range []string{"node-logging", "node-swap", "node-data"} {
		if _, ok := layout.Find(name); ok && !(keepData && name == "node-data") {
			remake = append(remake, name)
		}
	}
	plan.Destroys = []string{
		fmt.Sprintf("%s: node-root-%s (%s, the inactive slot)", dev, slot, old),
		fmt.Sprintf("%s: %s (made anew)", dev, strings.Join(remake, ", ")),
		fmt.Sprintf("%s: node-config's files (replaced by this command line's; kept as snapshot %s until slot %s is blessed)", dev, from, slot),
	}
	if keepData {
		plan.Keeps = append(plan.Keeps, dev+": node-data partition and its files")
	}
	plan.Keeps = append(plan.Keeps,
		fmt.Sprintf("%s: node-root-%s (version %s, the fallback until slot %s is blessed)", dev, active, from, slot),
		dev+": the partition table and the ESP's boot loader")
	plan.Keeps = append(plan.Keeps, appDataKeeps(apps)...)
	name := target.Name
	plan.Steps = []Step{
		// The loader is checked, though the ESP's own stays: a bundle that is
		// not whole is refused before anything is written.
		fetchStep(f, true),
		writeSlotStep(f, name, slot, true),
		step(CopyBootFiles{Disk: name, Slot: slot, Ready: true},
			fmt.Sprintf("copy slot %s's kernel, initrd and manifest onto the ESP", slot), "NODE-ESP"),
		step(Filesystems{Disk: name, Only: remake}, "make "+strings.Join(remakeText(layout, remake), ", "), remake...),
		step(SeedConfig{Disk: name, Replace: true, Snapshot: from, Slot: slot},
			fmt.Sprintf("snapshot node-config as %s, then replace it with a new machine ID, and hostname, network, dns, ntp, admin password hash, ssh and management settings from the command line", from), "node-config"),
		step(AddBootEntry{Disk: name, Slot: slot, Tries: tries, NewArgs: true},
			fmt.Sprintf("add loader entry for slot %s with %d tries, sorted before slot %s; record the reinstall in the ledger", slot, tries, active), "NODE-ESP"),
		step(BootOrder{Disk: name}, "put the disk first in the EFI boot order", "efivars"),
		step(Report{Disk: name}, "save the log on the ESP and report the outcome", "NODE-ESP"),
	}
	if f.Install.BIOS {
		plan.Steps = removeStep(plan.Steps, StageBootOrder)
		plan.Warnings = append(plan.Warnings, "the install boots through GRUB for BIOS, which keeps booting it: the EFI boot order is not changed")
	} else if !f.EFI {
		plan.Steps = removeStep(plan.Steps, StageBootOrder)
		plan.Warnings = append(plan.Warnings, "no EFI firmware found: the EFI boot order is not changed")
	}
	return plan, nil
}

// remakeText says which filesystem goes on each of labels.
func remakeText(l disk.Layout, labels []string) []string {
	out := make([]string, len(labels))
	for i, name := range labels {
		ps, _ := l.Find(name)
		out[i] = fsName(ps.FS) + " on " + name
	}
	return out
}

// wipeStep is the wipe of one disk in the erase mode the command line asks for,
// described with what that mode does and does not guarantee.
func wipeStep(p *cmdline.Params, diskName, keep, what, dev string) Step {
	mode := string(p.Node.EraseMode())
	return step(Wipe{Disk: diskName, Keep: keep, Mode: mode, Secure: p.Node.EraseSecure},
		fmt.Sprintf("%s; erase=%s: %s", what, mode, disk.EraseMode(mode).Describe()), dev)
}

func writeSlotStep(f *Facts, diskName, slot string, upgrade bool) Step {
	return step(WriteSlot{Disk: diskName, Slot: slot, Upgrade: upgrade},
		fmt.Sprintf("stream %s %s rootfs.squashfs into node-root-%s, checking its signed digests as it goes", f.Image.Name, f.Image.Version, slot),
		"node-root-"+slot)
}

func planUpgrade(p *cmdline.Params, f *Facts) (*Blueprint, error) {
	if f.Install == nil || f.Install.OVirt {
		return nil, refuse("use 'install storage_init=<disk>' (or 'reinstall' over an old oVirt Node)", "upgrade: no nodeinit install found")
	}
	if err := oneInstall(f); err != nil {
		return nil, err
	}
	if why := f.Install.Incomplete; why != "" {
		return nil, refuseArg("install storage_init=/dev/"+f.Install.Disk, "finish the install first: run the same install command line again",
			"upgrade: %s holds a nodeinit install that never finished: %s", f.Install.Disk, why)
	}
	if err := checkImage(p, f); err != nil {
		return nil, err
	}
	active := f.Install.ActiveSlot
	if active == "" {
		active = "a"
	}
	from := f.Install.Slots[active].Version
	if err := checkVersions(from, f.Image, p.Node.Force); err != nil {
		return nil, err
	}
	// The running slot is the last known-good one only once it is blessed: an
	// upgrade from a slot on trial would overwrite the slot it falls back to.
	if st := f.Install.Slots[active].State; st != "" && st != "good" && !p.Node.Force {
		return nil, refuseArg("nodeinit.force", "bless the running slot first (nodeinit bless, or let the node's boot-complete unit do it), or add nodeinit.force to overwrite the fallback anyway",
			"upgrade: the running slot %s (version %s) is %s, not blessed: slot %s still holds the image it falls back to", active, from, st, OtherSlot(active))
	}
	inactive := OtherSlot(active)
	d, ok := f.Disk(f.Install.Disk)
	if !ok {
		return nil, refuse("", "upgrade: the install disk %s is not among the probed disks", f.Install.Disk)
	}
	if sp := d.PartitionByLabel("node-root-" + inactive); sp != nil && f.Image.RootSize > sp.SizeBytes {
		return nil, refuse("reinstall with a larger root size in storage_vol (third field, MiB), or use a smaller image",
			"upgrade: image %s needs %d MiB but node-root-%s is %d MiB", f.Image.Version, ceilMiB(f.Image.RootSize), inactive, sp.SizeBytes>>20)
	}
	if sp := d.PartitionByLabel("node-root-" + inactive); sp != nil && len(sp.Mounts) > 0 {
		return nil, refuse("reboot into the other slot first",
			"upgrade: node-root-%s (%s) is mounted at %s", inactive, sp.Name, strings.Join(sp.Mounts, ", "))
	}
	t := targetOf(d)
	tries := trialTries(p)
	plan := &Blueprint{Action: cmdline.ActionUpgrade, Target: &t, Slot: inactive, Image: f.Image, Handoff: HandoffReboot}
	old := f.Install.Slots[inactive].Version
	if old == "" {
		old = "empty"
	}
	plan.Destroys = []string{fmt.Sprintf("%s: node-root-%s (%s, the inactive slot)", d.Path, inactive, old)}
	plan.Keeps = []string{fmt.Sprintf("node-root-%s (version %s, running)", active, from), "node-config (snapshot first)", "node-logging", "node-data"}
	copyText := fmt.Sprintf("copy slot %s's kernel, initrd and manifest onto the ESP", inactive)
	// A BIOS install's loader is GRUB in the MBR: no EFI loader to try, no
	// EFI boot order to restore, whatever the firmware running the upgrade.
	efi := f.EFI && !f.Install.BIOS
	if efi {
		copyText += "; a boot loader that differs from the one the firmware starts goes beside it, for a one-time trial boot (BootNext)"
	}
	plan.Steps = []Step{
		fetchStep(f, efi),
		writeSlotStep(f, d.Name, inactive, true),
		step(CopyBootFiles{Disk: d.Name, Slot: inactive, Ready: true, TrialLoader: efi}, copyText, "NODE-ESP"),
		step(MigrateConfig{Disk: d.Name, Slot: inactive, From: from, To: f.Image.Version},
			fmt.Sprintf("snapshot node-config as %s, apply the migrations of %s", from, f.Image.Version), "node-config"),
		step(AddBootEntry{Disk: d.Name, Slot: inactive, Tries: tries},
			fmt.Sprintf("add loader entry for slot %s with %d tries, sorted before slot %s; record it in the ledger", inactive, tries, active), "NODE-ESP"),
		step(Report{Disk: d.Name}, "save the log on the ESP and report the outcome", "NODE-ESP"),
	}
	if efi {
		// Booting a CD can make the firmware drop the disk's Boot#### entry; an
		// upgrade that reboots must land on the disk again.
		plan.Steps = insertBefore(plan.Steps, StageReport,
			step(BootOrder{Disk: d.Name}, "restore the disk's EFI boot entry and put it first in the boot order", "efivars"))
	}
	return plan, nil
}

// planUninstall wipes every disk holding an install, then every nodeinit
// app-data disk, found by its partitions' GPT names (node-app<N>) whether or
// not storage_init lists it. The installs go first: a cut after them leaves
// nothing that boots, and the same uninstall run again finds the app-data
// disks left by their names.
func planUninstall(p *cmdline.Params, f *Facts) (*Blueprint, error) {
	plan := &Blueprint{Action: cmdline.ActionUninstall, Handoff: HandoffReboot}
	for _, classes := range [][]disk.ContentClass{{disk.ContentOurs, disk.ContentOVirt}, {disk.ContentAppData}} {
		for i := range f.Disks {
			d := &f.Disks[i]
			if !slices.Contains(classes, d.Content) || d.BootMedium {
				continue
			}
			if virtual(d) && !named(p, d) {
				continue // a loop device holding an image is uninstalled only when named
			}
			what, holds := "the install", "an install"
			if d.Content == disk.ContentAppData {
				what = fmt.Sprintf("nodeinit app-data disk %d (%s and its files)", disk.AppDataIndexOf(*d), disk.AppDataLabel(disk.AppDataIndexOf(*d)))
				holds = "nodeinit app data"
			}
			if why := inUse(d); why != "" {
				return nil, refuse("unmount or stop what uses it, or boot the install medium and uninstall from there",
					"uninstall: %s holds %s but %s", d.Path, holds, why)
			}
			t := targetOf(d)
			plan.Disks = append(plan.Disks, t)
			plan.Destroys = append(plan.Destroys, fmt.Sprintf("%s: %s", d.Path, describeContent(d)))
			plan.Steps = append(plan.Steps, wipeStep(p, d.Name, "", "remove every partition and signature of "+what+" on "+d.Path, d.Path))
		}
	}
	if len(plan.Disks) == 0 {
		return nil, refuse("nothing to do: no disk holds a nodeinit or oVirt Node install", "uninstall: no install found")
	}
	var wiped []string
	for _, d := range plan.Disks {
		wiped = append(wiped, d.Path)
	}
	if err := lvsSpanningOut(f, wiped); err != nil {
		return nil, err
	}
	plan.Target = &plan.Disks[0]
	if f.EFI {
		plan.Steps = append(plan.Steps, step(BootOrder{Remove: true}, "remove nodeinit entries from the EFI boot order", "efivars"))
	}
	plan.Keeps = append(plan.Keeps, "every disk not part of the install")
	return plan, nil
}

// lvsSpanningOut refuses a wipe of the disks wiped when an LV on one of them
// also has extents on a disk the plan leaves alone (oVirt's HostVG spread over
// several disks): wiping would destroy the LV and leave part of it behind.
func lvsSpanningOut(f *Facts, wiped []string) error {
	pvs := map[string][]disk.PV{}
	for _, d := range f.Disks {
		if len(d.PVs) > 0 {
			pvs[d.Path] = d.PVs
		}
	}
	spans := disk.CrossDiskLVs(wiped, pvs)
	if len(spans) == 0 {
		return nil
	}
	var msgs []string
	for _, s := range spans {
		msgs = append(msgs, s.Message())
	}
	return &operr.Error{What: strings.Join(msgs, "; "),
		Fix: "list every disk of the volume group in storage_init (storage_init=/dev/sda,/dev/sdb: the disks after the first become app-data disks) so all of it is wiped, or remove or move the LV first (lvremove, pvmove)"}
}

// virtual reports a loop, ram or zram device.
func virtual(d *disk.Disk) bool {
	switch d.Transport {
	case "loop", "ram", "zram":
		return true
	}
	return false
}

// named reports whether storage_init names d by its exact path.
func named(p *cmdline.Params, d *disk.Disk) bool {
	if p.StorageInit == nil {
		return false
	}
	for _, s := range append(p.StorageInit.Disks, p.StorageInit.Extra...) {
		if s.Raw == d.Path {
			return true
		}
	}
	return false
}

// inUse says why a disk cannot be written now, or "".
func inUse(d *disk.Disk) string {
	var why []string
	if len(d.Mounts) > 0 {
		why = append(why, "it is mounted at "+strings.Join(d.Mounts, ", "))
	}
	if d.Swap {
		why = append(why, "it holds active swap")
	}
	if len(d.Holders) > 0 {
		why = append(why, "it is held by "+strings.Join(d.Holders, ", "))
	}
	if d.ReadOnly {
		why = append(why, "it is read-only")
	}
	return strings.Join(why, " and ")
}

func planStateless(p *cmdline.Params, f *Facts) (*Blueprint, error) {
	if err := checkImage(p, f); err != nil {
		return nil, err
	}
	plan := &Blueprint{Action: cmdline.ActionStateless, Image: f.Image, Slot: "ram", Handoff: HandoffSwitchRoot}
	plan.Keeps = []string{"every disk: nothing is written"}
	plan.Steps = []Step{
		step(CopyToRAM{}, fmt.Sprintf("copy %s %s rootfs.squashfs into RAM, checking its signed digests", f.Image.Name, f.Image.Version), "ram"),
		step(MountRoot{Slot: "ram"}, "mount the image from RAM with a tmpfs overlay; config from the command line only", "ram"),
	}
	return plan, nil
}

// selectTargets resolves storage_init (or the existing install for reinstall)
// to the install disk and the app-data disks, numbered in the order listed; a
// reinstall without storage_init takes the install's disk and the app-data
// disks its ledger records, under their numbers.
func selectTargets(p *cmdline.Params, f *Facts, action cmdline.Action) (*disk.Disk, []appDisk, error) {
	spec := p.StorageInit
	if spec == nil {
		if action == cmdline.ActionReinstall && f.Install != nil {
			if err := oneInstall(f); err != nil {
				return nil, nil, err
			}
			d, ok := f.Disk(f.Install.Disk)
			if ok {
				apps, _ := installAppDisks(f)
				return d, apps, nil
			}
		}
		return nil, nil, refuse("add storage_init=<disk> (for example storage_init=serial:ABC123 or storage_init=/dev/disk/by-id/…)",
			"%s needs a target disk and none was named", action)
	}
	// A loop device is a target only when storage_init names its exact path:
	// `nodeinit apply` onto an image file, as tests and image builders do.
	sel, err := disk.Select(f.Disks, spec, disk.SelectOptions{AllowLoop: true})
	if err != nil {
		return nil, nil, err
	}
	d, ok := f.Disk(sel.Target.Name)
	if !ok {
		return nil, nil, errors.New("selected disk vanished from facts")
	}
	var apps []appDisk
	for i, x := range sel.Extra {
		a, ok := f.Disk(x.Name)
		if !ok {
			return nil, nil, errors.New("selected disk vanished from facts")
		}
		apps = append(apps, appDisk{n: i + 1, d: a})
	}
	return d, apps, nil
}

// oneInstall refuses to pick between several disks holding an install: which
// one a boot, an upgrade or a reinstall acts on must not depend on disk names.
func oneInstall(f *Facts) error {
	if len(f.Install.Others) == 0 {
		return nil
	}
	all := append([]string{f.Install.Disk}, f.Install.Others...)
	return &operr.Error{
		What: fmt.Sprintf("%d disks hold a nodeinit install: %s", len(all), strings.Join(all, ", ")),
		Why:  "nodeinit does not guess which one this machine runs",
		Fix:  "remove the disk that should not be here, or name the disk to act on with storage_init= and reinstall it; uninstall wipes every install",
		Arg:  "storage_init=/dev/" + f.Install.Disk,
	}
}

func checkImage(p *cmdline.Params, f *Facts) error {
	if f.Image == nil {
		if s := f.ImageSearch; s != nil {
			return imageNotFound(p, s)
		}
		return refuse("add nodeinit.image=<dir|label:NAME|https://…> or boot from a medium that carries the bundle",
			"%s needs an image and none was found", p.Action)
	}
	if f.Image.Error != "" {
		return &operr.Error{What: fmt.Sprintf("image %s: %s", f.Image.Source, f.Image.Error), Fix: f.Image.Hint}
	}
	return nil
}

// imageNotFound says where the image was looked for, which block devices
// there were, and which controllers had no driver: a medium behind one of
// those cannot be seen, however it was booted.
func imageNotFound(p *cmdline.Params, s *ImageSearch) error {
	devs := "none"
	if len(s.BlockDevices) > 0 {
		devs = strings.Join(s.BlockDevices, ", ")
	}
	why := fmt.Sprintf("looked in %s; block devices: %s", strings.Join(s.Tried, "; "), devs)
	fix := "boot from a medium that carries the bundle, or give nodeinit.image=<dir|label:NAME|/dev/NAME|https://…>"
	if len(s.Undriven) > 0 {
		var ctl, mods []string
		for _, c := range s.Undriven {
			d := fmt.Sprintf("%s %s [%s]", c.Address, c.Kind, c.ID)
			if c.Module != "" {
				d += " (module " + c.Module + ")"
				if !slices.Contains(mods, c.Module) {
					mods = append(mods, c.Module)
				}
			}
			ctl = append(ctl, d)
		}
		why += "; no driver for " + strings.Join(ctl, ", ")
		if len(mods) > 0 {
			fix = "the medium may sit behind a controller this initramfs has no driver for: build it with " +
				"nodeinit mkinitramfs --module " + strings.Join(mods, " --module ") + ", or " + fix
		}
	}
	return &operr.Error{What: fmt.Sprintf("%s needs an image and none was found", p.Action), Why: why, Fix: fix}
}

// checkVersions refuses downgrades and major-version jumps unless forced.
func checkVersions(from string, img *ImageFacts, force bool) error {
	if force || from == "" {
		return nil
	}
	to := img.Version
	c := compareVersions(to, from)
	switch {
	case c == 0:
		return refuse("nothing to do; add nodeinit.force to rewrite the other slot anyway", "upgrade: version %s is already running", from)
	case c < 0:
		return refuseArg("nodeinit.force", "add nodeinit.force to downgrade", "upgrade: %s is older than the running %s", to, from)
	}
	if len(img.UpgradeFrom) > 0 {
		for _, c := range img.UpgradeFrom {
			if versionMatches(from, c) {
				return nil
			}
		}
		return refuseArg("nodeinit.force", "upgrade to an intermediate release first, or add nodeinit.force",
			"upgrade: image %s accepts upgrades from %s, not from %s", to, strings.Join(img.UpgradeFrom, ", "), from)
	}
	if major(to) != major(from) {
		return refuseArg("nodeinit.force", "upgrade to the last release of "+major(from)+".x first, or add nodeinit.force",
			"upgrade: %s to %s is a major-version jump", from, to)
	}
	return nil
}

// compareVersions compares dotted numeric versions; non-numeric parts compare as strings.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y string
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		xi, xerr := strconv.Atoi(x)
		yi, yerr := strconv.Atoi(y)
		switch {
		case xerr == nil && yerr == nil && xi != yi:
			if xi < yi {
				return -1
			}
			return 1
		case (xerr != nil || yerr != nil) && x != y:
			return strings.Compare(x, y)
		}
	}
	return 0
}

// versionMatches reports whether v matches a constraint: an exact version, or a prefix like "1.x" / "1.2.x".
func versionMatches(v, constraint string) bool {
	if prefix, ok := strings.CutSuffix(constraint, ".x"); ok {
		return v == prefix || strings.HasPrefix(v, prefix+".")
	}
	return v == constraint
}

func major(v string) string {
	m, _, _ := strings.Cut(v, ".")
	return m
}

// OtherSlot is the A/B slot that is not s.
func OtherSlot(s string) string {
	if s == "b" {
		return "a"
	}
	return "b"
}

func targetOf(d *disk.Disk) Target {
	t := Target{Name: d.Name, Path: d.Path, Model: d.Model, Serial: d.Serial, WWN: d.WWN,
		SizeBytes: d.SizeBytes, Sector: d.LogicalSectorSize, Content: d.Content}
	if len(d.ByID) > 0 {
		t.ByID = d.ByID[0]
	}
	return t
}

func describeContent(d *disk.Disk) string {
	var sigs []string
	for _, s := range d.Signatures {
		x := s.Type
		if s.Label != "" {
			x += " '" + s.Label + "'"
		}
		if s.Where != "" && s.Where != "disk" {
			x += " on " + s.Where
		}
		sigs = append(sigs, x)
	}
	what := string(d.Content)
	switch d.Content {
	case disk.ContentOurs:
		what = "nodeinit install"
		if d.InstalledVersion != "" {
			what += " version " + d.InstalledVersion
		}
	case disk.ContentOVirt:
		what = "old oVirt Node install"
	case disk.ContentAppData:
		what = fmt.Sprintf("nodeinit app-data disk %d", disk.AppDataIndexOf(*d))
	}
	if len(sigs) > 0 {
		what += " (" + strings.Join(sigs, ", ") + ")"
	}
	return what
}

// filesystemsText says which filesystems the filesystems step makes: only the
// partitions the layout has, and not the one kept.
func filesystemsText(l *disk.Layout, keep string) string {
	var made []string
	for _, ps := range l.Partitions {
		if ps.FS == disk.FSRaw {
			continue
		}
		if ps.Name == keep {
			made = append(made, ps.Name+" kept as it is")
			continue
		}
		made = append(made, fmt.Sprintf("%s on %s", fsName(ps.FS), ps.Name))
	}
	return "make " + strings.Join(made, ", ")
}

func fsName(fs string) string {
	if fs == disk.FSVfat {
		return "FAT32"
	}
	return fs
}

func partTouches(l *disk.Layout, keep string, names ...string) []string {
	var out []string
	for _, n := range names {
		if _, ok := l.Find(n); ok && n != keep {
			out = append(out, n)
		}
	}
	return out
}

func insertBefore(steps []Step, name string, s Step) []Step {
	for i := range steps {
		if steps[i].Name == name {
			return append(steps[:i], append([]Step{s}, steps[i:]...)...)
		}
	}
	return append(steps, s)
}

func removeStep(steps []Step, name string) []Step {
	out := steps[:0]
	for _, s := range steps {
		if s.Name != name {
			out = append(out, s)
		}
	}
	return out
}

func keepNote(keep bool) string {
	if keep {
		return ", keeping node-data"
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func ceilMiB(n int64) int64 { return (n + 1<<20 - 1) >> 20 }
