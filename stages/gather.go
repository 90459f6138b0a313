package stages

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/plan"
)

// GatherOptions says where facts come from.
type GatherOptions struct {
	// Root is "/" on a machine; tests point it at a fake tree.
	Root string
	// KeysDir holds the trusted image public keys (*.pub).
	KeysDir string
	// DefaultImages are tried in order when nodeinit.image is not given,
	// e.g. "initramfs:/bundle" then "label:NODEINIT".
	DefaultImages []string
	// RunDir is where temporary mounts go (default /run/nodeinit).
	RunDir string
	// Dev reads the ESP ledger of an existing install, through the partition
	// opened read-only; nil skips it.
	Dev device.Machine
	// ESPDir is the install's ESP when it is mounted already (a running node has it at
	// NodeESPDir): the ledger is read there instead of mounting the partition again.
	ESPDir string
	// KeepESP keeps the install's ESP open read-only after the probe read its
	// ledger, for the boot to read again without parsing the FAT a second time
	// (Machine.TakeESP). The caller must close it before anything repartitions.
	KeepESP bool
	// OnlyDisks, when set, limits discovery to these kernel names.
	OnlyDisks []string
	// Source tunes image sources (CAs, retries, label search roots).
	Source image.SourceOptions
}

// Machine is the result of probing: the facts, plus the opened image bundle that
// the write stages stream from (nil when the action needs no image).
type Machine struct {
	Facts  *plan.Facts
	Bundle *image.Bundle
	// AdminHash is the admin password hash read from the bundle for
	// nodeinit.adminpw=bundle, checked against the signed manifest; "" otherwise.
	AdminHash cmdline.Secret

	esp    *ProbedESP // with GatherOptions.KeepESP
	closed bool
}

// ProbedESP is the ESP of the install the probe found, still open read-only
// with its FAT parsed (GatherOptions.KeepESP). A plain boot reads its
// ledger and entries from it again instead of parsing the FAT twice (under
// emulation each parse took 60-70 ms); see Job.ProbedESP.
type ProbedESP struct {
	Disk string // the disk's kernel name
	FS   boot.FS
	b    device.Block
}

// Close closes the partition. Only the first call does anything, so the
// job and the code that handed the ESP to it may both close it; a nil
// ProbedESP is closed already.
func (e *ProbedESP) Close() error {
	if e == nil || e.b == nil {
		return nil
	}
	b := e.b
	e.b = nil
	return b.Close()
}

// TakeESP hands the probed ESP (nil without GatherOptions.KeepESP, or
// without an install) to the caller, who closes it; Close no longer does.
func (m *Machine) TakeESP() *ProbedESP {
	e := m.esp
	m.esp = nil
	return e
}

// Params returns the params the plan and the job act on: p, or, when
// nodeinit.adminpw=bundle took the admin password hash from the bundle, a copy
// of p that carries it as AdminPW, so that seed-config writes it as it writes
// an adminpw= hash. The hash is only in memory, as a Secret that every printed
// form redacts: the command line, and so the node's /proc/cmdline, never held it.
func (m *Machine) Params(p *cmdline.Params) *cmdline.Params {
	if m.AdminHash == "" {
		return p
	}
	q := *p
	q.AdminPW = m.AdminHash
	return &q
}

// Close releases the image source (unmounting a medium). Only the first call
// does anything, so /init may release the source before switch_root and still
// defer Close for the paths that fail.
func (m *Machine) Close() error {
	m.TakeESP().Close()
	if m.closed || m.Bundle == nil || m.Bundle.Source == nil {
		return nil
	}
	m.closed = true
	return m.Bundle.Source.Close()
}

// Gather probes the machine read-only and returns its facts.
func Gather(ctx context.Context, p *cmdline.Params, o GatherOptions) (*plan.Facts, error) {
	m, err := Probe(ctx, p, o)
	if err != nil {
		return nil, err
	}
	m.Close()
	return m.Facts, nil
}

// Probe gathers facts: disks, medium, existing install, NICs, EFI, TPM and DMI,
// and, when the action needs one, opens and checks the image manifest. It writes nothing.
func Probe(ctx context.Context, p *cmdline.Params, o GatherOptions) (*Machine, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.RunDir == "" {
		o.RunDir = "/run/nodeinit"
	}
	// Image sources look for media under the same root as the probe.
	if o.Source.SysRoot == "" {
		o.Source.SysRoot = filepath.Join(o.Root, "sys")
	}
	if o.Source.DevRoot == "" {
		o.Source.DevRoot = filepath.Join(o.Root, "dev")
	}
	if o.Source.InitramfsRoot == "" {
		o.Source.InitramfsRoot = o.Root
	}
	disks, err := diskio.Discover(diskio.Root{Dir: o.Root, Only: o.OnlyDisks})
	if err != nil {
		return nil, fmt.Errorf("probe disks: %w", err)
	}
	f := &plan.Facts{
		Disks:       disks,
		MemoryBytes: memTotal(filepath.Join(o.Root, "proc/meminfo")),
		EFI:         exists(filepath.Join(o.Root, "sys/firmware/efi")),
		TPM:         exists(filepath.Join(o.Root, "sys/class/tpm/tpm0")),
		NICs:        nics(filepath.Join(o.Root, "sys/class/net")),
		Consoles:    p.Consoles,
		DMI:         dmi(filepath.Join(o.Root, "sys/class/dmi/id")),
	}
	if dir := filepath.Join(o.Root, boot.GrubImageDir); exists(filepath.Join(dir, boot.GrubBootImage)) && exists(filepath.Join(dir, boot.GrubCoreImage)) {
		f.BIOSLoader = dir
	}
	var esp *ProbedESP
	f.Install, esp = findInstall(f, o)
	f.MissingFilesystems = missingFilesystems(o.Root, plan.AllKernelFilesystems)
	m := &Machine{Facts: f, esp: esp}
	if needsImage(p, f) {
		m.Bundle, f.Image = openImage(ctx, p, f, o)
		if m.Bundle != nil && p.Node.AdminPWFrom == cmdline.AdminPWBundle {
			m.readAdminHash(ctx)
		}
	}
	return m, nil
}

// readAdminHash reads the admin password hash from the bundle for
// nodeinit.adminpw=bundle. A bundle whose manifest lists no hash file is left
// to the planner, which refuses the actions that would seed the password
// (plan.ImageFacts.AdminHash stays false). A hash file that is listed but does
// not match the manifest, or holds no hash, makes the image unusable, as any
// bundle file that fails its check does: the plan refuses with the reason.
func (m *Machine) readAdminHash(ctx context.Context) {
	if _, ok := m.Bundle.Manifest.File(image.AdminHashName); !ok {
		return
	}
	h, err := m.Bundle.AdminHash(ctx)
	if err != nil {
		m.Bundle.Source.Close()
		m.Bundle = nil
		m.Facts.Image.Error, m.Facts.Image.Hint = err.Error(), image.HintOf(err)
		return
	}
	m.AdminHash = cmdline.Secret(h)
	m.Facts.Image.AdminHash = true
}

func needsImage(p *cmdline.Params, f *plan.Facts) bool {
	switch p.Action {
	case cmdline.ActionInstall, cmdline.ActionReinstall, cmdline.ActionUpgrade, cmdline.ActionStateless:
		return true
	case cmdline.ActionBoot:
		return p.AutoInstall && f.Install == nil
	}
	return false
}

// openImage opens the bundle and records the outcome as facts; a failure becomes
// ImageFacts.Error so that Plan refuses with the reason and the hint.
func openImage(ctx context.Context, p *cmdline.Params, f *plan.Facts, o GatherOptions) (*image.Bundle, *plan.ImageFacts) {
	specs := o.DefaultImages
	if p.Node.Image != "" {
		specs = []string{p.Node.Image}
	}
	if len(specs) == 0 {
		return nil, nil
	}
	keys, kerr := image.LoadKeyring(o.KeysDir)
	var lastErr error
	var tried []string
	for _, spec := range specs {
		src, err := image.OpenSource(spec, o.Source)
		if err != nil {
			lastErr = err
			tried = append(tried, image.RedactRawURL(spec)+" ("+searchCause(err)+")")
			continue
		}
		if label, ok := strings.CutPrefix(spec, "label:"); ok {
			markMedium(f, label, o)
		} else if strings.HasPrefix(spec, "initramfs:") {
			// A stick or CD whose initrd carries the bundle is still the boot
			// medium: find it by the label nodeinit's media carry, so it is never
			// a target, not only protected by the consent rule.
			markMedium(f, mediumLabel, o)
		}
		b, err := image.Open(ctx, src, keys, image.VerifyOptions{Insecure: p.Node.Insecure, PinnedSHA256: p.Node.ImageSHA256, Arch: runtime.GOARCH})
		if err != nil {
			src.Close()
			if kerr != nil {
				err = fmt.Errorf("%w (and the trusted keys could not be loaded: %v)", err, kerr)
			}
			return nil, &plan.ImageFacts{Source: image.RedactRawURL(spec), Error: err.Error(), Hint: image.HintOf(err)}
		}
		m := b.Manifest
		facts := &plan.ImageFacts{Source: image.RedactRawURL(spec), Name: m.Name, Version: m.Version, Arch: m.Arch,
			Signed: b.Signed, Pinned: b.Pinned, UpgradeFrom: m.UpgradeFrom}
		if rf, ok := m.File(image.RootfsName); ok {
			facts.RootSize = rf.Size
		}
		return b, facts
	}
	if p.Node.Image == "" {
		// No default source exists: the plan refuses with "needs an image",
		// and says where it looked and what may hide the medium.
		f.ImageSearch = searched(o.Root, tried)
		return nil, nil
	}
	return nil, &plan.ImageFacts{Source: image.RedactRawURL(specs[0]), Error: lastErr.Error(), Hint: image.HintOf(lastErr)}
}

// markMedium flags the disk carrying the labelled medium so it is never a target.
// mediumLabel is the filesystem label of nodeinit's ISO and USB media
// (media.DefaultLabel; stages does not import media).
const mediumLabel = "NODEINIT"

func markMedium(f *plan.Facts, label string, o GatherOptions) {
	label, _, _ = strings.Cut(label, "/")
	dev, _, err := image.FindByLabel(label, o.Source.SysRoot, o.Source.DevRoot)
	if err != nil {
		return
	}
	diskio.MarkBootMedium(f.Disks, filepath.Base(dev))
}

// findInstall finds a nodeinit install (or an old oVirt Node) and reads its ledger.
func findInstall(f *plan.Facts, o GatherOptions) (*plan.Install, *ProbedESP) {
	var ovirt, found *plan.Install
	var esp *ProbedESP
	for i := range f.Disks {
		d := &f.Disks[i]
		switch d.Content {
		case disk.ContentOurs:
			if found != nil {
				// A second install: which one boots must not depend on kernel names.
				found.Others = append(found.Others, d.Name)
				continue
			}
			in := &plan.Install{Disk: d.Name, Slots: map[string]plan.Slot{}}
			switch {
			case o.ESPDir != "":
				ledgerInto(in, boot.DirFS(o.ESPDir))
			case o.Dev != nil:
				esp = readLedgerInto(in, d, o)
			}
			if d.InstalledVersion == "" && in.ActiveSlot != "" {
				d.InstalledVersion = in.Slots[in.ActiveSlot].Version
			}
			found = in
		case disk.ContentOVirt:
			if ovirt == nil {
				ovirt = &plan.Install{Disk: d.Name, OVirt: true}
			}
		}
	}
	if found != nil {
		return found, esp
	}
	return ovirt, nil
}

// readLedgerInto reads the ledger on d's ESP into in; with o.KeepESP it
// returns the ESP still open.
func readLedgerInto(in *plan.Install, d *disk.Disk, o GatherOptions) *ProbedESP {
	esp := d.PartitionByLabel("NODE-ESP")
	if esp == nil {
		return nil
	}
	b, err := o.Dev.OpenBlockReadOnly(devPath(o.Root, esp), d.LogicalSectorSize)
	if err != nil {
		// Not evidence of an unfinished install (the device node may be late):
		// the install stays complete, so nothing is redone on a guess.
		return nil
	}
	fs, err := boot.OpenFAT(b)
	if err != nil {
		b.Close()
		in.Incomplete = "its ESP holds no readable FAT filesystem"
		return nil
	}
	ledgerInto(in, fs)
	if !o.KeepESP {
		b.Close()
		return nil
	}
	return &ProbedESP{Disk: d.Name, FS: fs, b: b}
}

// ledgerInto copies the active slot and the slots' versions from the ledger on esp.
func ledgerInto(in *plan.Install, esp boot.FS) {
	l, err := boot.ReadLedger(esp)
	if err != nil {
		// Every install ends by writing its ledger; without one it never finished.
		in.Incomplete = "it has no install ledger (an install that did not finish)"
		return
	}
	defer func() {
		if s, ok := in.Slots[in.ActiveSlot]; !ok || s.Version == "" {
			in.Incomplete = "its ledger names no installed slot"
		}
	}()
	in.ActiveSlot = l.Active
	in.BIOS = boot.IsGrub(esp)
	for _, a := range l.AppData {
		in.AppData = append(in.AppData, plan.AppDataRef{Index: a.Index, DataPartUUID: a.DataPartUUID, SwapPartUUID: a.SwapPartUUID})
	}
	for name, s := range l.Slots {
		if s != nil {
			in.Slots[name] = plan.Slot{Version: s.Version, State: string(s.State), Manifest: slotManifest(esp, name)}
		}
	}
	// Blessing renames the entry (systemd-bless-boot, nodeinit bless); the
	// ledger learns it on the next boot. The entry is what counts now.
	if s, ok := in.Slots[in.ActiveSlot]; ok && s.State != string(boot.SlotGood) {
		if e, err := boot.EntryFor(esp, in.ActiveSlot); err == nil && e.Blessed() {
			s.State = string(boot.SlotGood)
			in.Slots[in.ActiveSlot] = s
		}
	}
}

// slotManifest is the SHA-256 of the slot's manifest.json on the ESP, or "".
func slotManifest(esp boot.FS, slot string) string {
	b, err := esp.ReadFile(path.Join(boot.SlotDirPrefix, slot, boot.ManifestName))
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func devPath(root string, p *disk.Partition) string {
	if p.Path != "" && root == "/" {
		return p.Path
	}
	return filepath.Join(root, "dev", p.Name)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func memTotal(path string) int64 {
	for _, l := range strings.Split(readTrim(path), "\n") {
		if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func nics(dir string) []plan.NIC {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []plan.NIC
	for _, e := range entries {
		n := e.Name()
		if n == "lo" || !exists(filepath.Join(dir, n, "device")) {
			continue
		}
		nic := plan.NIC{Name: n, MAC: readTrim(filepath.Join(dir, n, "address")), Carrier: readTrim(filepath.Join(dir, n, "carrier")) == "1"}
		if link, err := os.Readlink(filepath.Join(dir, n, "device", "driver")); err == nil {
			nic.Driver = filepath.Base(link)
		}
		out = append(out, nic)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func dmi(dir string) plan.DMI {
	return plan.DMI{
		Vendor:  readTrim(filepath.Join(dir, "sys_vendor")),
		Product: readTrim(filepath.Join(dir, "product_name")),
		Serial:  readTrim(filepath.Join(dir, "product_serial")),
		UUID:    readTrim(filepath.Join(dir, "product_uuid")),
	}
}
