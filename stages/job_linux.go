package stages

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"golang.org/x/sys/unix"
)

// Job binds a plan to this machine. Its Stages are the implementations the engine runs;
// every path is below DevDir, RunDir or NewRoot so a test can point them elsewhere.
type Job struct {
	Params *cmdline.Params
	Facts  *Facts
	Plan   *Blueprint
	Bundle *image.Bundle
	Mount  Mounter
	Bind   nodeconfig.Mounter
	// EFIVars opens the firmware variables; nil when the machine has none.
	EFIVars func() (boot.EFIVars, error)
	DevDir  string // /dev
	RunDir  string // /run/nodeinit
	NewRoot string // where the node's root is assembled before switch_root
	Now     func() time.Time
	// Log is the JSON-lines event log, copied to the ESP by the report stage.
	Log string
	// Mounted maps a partition label (NODE-ESP, node-config) to the directory where it
	// is mounted already: on a running node the stages use those mounts instead of
	// mounting the partition a second time.
	Mounted map[string]string
	// Fetch calls local_boot_trigger after a successful install; nil uses HTTP.
	Fetch func(ctx context.Context, url string) error

	unlocks []func() error
	mounted []string
}

// Stages returns the implementation of every stage this build has.
func (j *Job) Stages() map[string]StageFunc {
	return map[string]StageFunc{
		StageWipe:          j.wipe,
		StagePartition:     j.partition,
		StageFilesystems:   j.filesystems,
		StageWriteSlot:     j.writeSlot,
		StageESP:           j.esp,
		StageSeedConfig:    j.seedConfig,
		StageMigrateConfig: j.migrateConfig,
		StageBootOrder:     j.bootOrder,
		StageReport:        j.report,
		StageVerifyImage:   j.imageToRAM,
		StageBoot:          j.boot,
	}
}

// Close releases disk locks and unmounts what the job mounted, newest first.
// After a successful boot stage the node's mounts stay for switch_root.
func (j *Job) Close() error {
	var errs []error
	for i := len(j.mounted) - 1; i >= 0; i-- {
		if err := j.Mount.Unmount(j.mounted[i]); err != nil {
			errs = append(errs, err)
		}
	}
	j.mounted = nil
	for _, u := range j.unlocks {
		if err := u(); err != nil {
			errs = append(errs, err)
		}
	}
	j.unlocks = nil
	return errors.Join(errs...)
}

func (j *Job) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

func (j *Job) diskOf(s Step) (*disk.Disk, string, error) {
	name := s.Args["disk"]
	d, ok := j.Facts.Disk(name)
	if !ok {
		return nil, "", fmt.Errorf("disk %q is not among the probed disks", name)
	}
	return d, filepath.Join(j.DevDir, d.Name), nil
}

// lock takes the exclusive flock on the disk for the rest of the job.
func (j *Job) lock(dev string) error {
	for range j.unlocks {
		return nil // one disk per job holds the lock already
	}
	unlock, err := disk.Lock(dev)
	if err != nil {
		return err
	}
	j.unlocks = append(j.unlocks, unlock)
	return nil
}

// partDev is the device node of the partition labelled name on the job's disk.
func (j *Job) partDev(d *disk.Disk, name string) (string, error) {
	if j.Plan.Layout != nil {
		if ps, ok := j.Plan.Layout.Find(name); ok {
			return disk.PartitionPath(filepath.Join(j.DevDir, d.Name), ps.Number), nil
		}
	}
	if p := partByLabel(d, name); p != nil {
		return filepath.Join(j.DevDir, p.Name), nil
	}
	return "", fmt.Errorf("%s has no partition labelled %s", d.Path, name)
}

func (j *Job) wipe(ctx context.Context, s Step, r *Reporter) error {
	d, dev, err := j.diskOf(s)
	if err != nil {
		return err
	}
	if err := j.lock(dev); err != nil {
		return err
	}
	opts := disk.WipeOptions{SectorSize: d.LogicalSectorSize, Partitions: d.Partitions}
	if keep := s.Args["keep"]; keep != "" {
		p := partByLabel(d, keep)
		if p == nil {
			return fmt.Errorf("keep %s: %s has no such partition", keep, d.Path)
		}
		opts.Keep = []disk.Partition{*p}
	}
	rep, err := disk.Wipe(dev, opts)
	if err != nil && !errors.Is(err, disk.ErrRereadDeferred) {
		return err
	}
	r.Info("cleared %d regions (%d KiB) by %s on %s", rep.Regions, rep.Bytes>>10, rep.Method, dev)
	return nil
}

func (j *Job) partition(ctx context.Context, s Step, r *Reporter) error {
	d, dev, err := j.diskOf(s)
	if err != nil {
		return err
	}
	if err := j.lock(dev); err != nil {
		return err
	}
	if err := disk.WriteTable(dev, *j.Plan.Layout); err != nil {
		if errors.Is(err, disk.ErrRereadDeferred) {
			return fmt.Errorf("%w (hint: the kernel still uses the old partitions of %s; reboot and run the install again)", err, d.Path)
		}
		return err
	}
	// Without udev, devtmpfs creates the partition nodes; wait until they exist.
	deadline := time.Now().Add(10 * time.Second)
	for _, ps := range j.Plan.Layout.Partitions {
		p := disk.PartitionPath(dev, ps.Number)
		for {
			if _, err := os.Stat(p); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("partition %s did not appear after the table was written", p)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func (j *Job) filesystems(ctx context.Context, s Step, r *Reporter) error {
	d, dev, err := j.diskOf(s)
	if err != nil {
		return err
	}
	for _, ps := range j.Plan.Layout.Partitions {
		if ps.FS == disk.FSRaw || ps.Name == s.Args["keep"] {
			continue
		}
		p := disk.PartitionPath(dev, ps.Number)
		if err := disk.MakeFS(p, ps.FS, ps.Name, disk.MkfsOptions{SectorSize: d.LogicalSectorSize}); err != nil {
			return err
		}
		r.Info("%s on %s (%s)", ps.FS, p, ps.Name)
	}
	return nil
}

func (j *Job) writeSlot(ctx context.Context, s Step, r *Reporter) error {
	d, dev, err := j.diskOf(s)
	if err != nil {
		return err
	}
	if err := j.lock(dev); err != nil {
		return err
	}
	slot := s.Args["slot"]
	target, err := j.partDev(d, "node-root-"+slot)
	if err != nil {
		return err
	}
	version := j.Bundle.Manifest.Version
	if j.Plan.Action == cmdline.ActionUpgrade {
		// Mark the slot as being written and drop its old entry first: a power cut
		// from now on leaves the slot unreferenced, and the next boot of the running
		// slot sees the interrupted upgrade.
		if err := j.withESP(d, func(esp string) error {
			if err := boot.RemoveSlotEntry(esp, slot); err != nil {
				return err
			}
			return j.updateLedger(esp, func(l *boot.Ledger) error {
				return l.RecordSlot(j.now(), slot, boot.SlotWriting, version, j.Bundle.Manifest.Name)
			})
		}); err != nil {
			return err
		}
	}
	return j.Bundle.WriteFile(ctx, image.RootfsName, target, 0, func(p image.Progress) {
		r.Progress(p.Done, p.Total, p.Rate)
	})
}

// withESP mounts the disk's ESP, runs fn, and unmounts it.
func (j *Job) withESP(d *disk.Disk, fn func(dir string) error) error {
	return j.withPart(d, "NODE-ESP", "esp", "vfat", fn)
}

// withPart runs fn on the partition labelled label: in its existing mount when
// Mounted names one, else mounted at RunDir/name for the duration of fn.
func (j *Job) withPart(d *disk.Disk, label, name, fstype string, fn func(dir string) error) error {
	if dir := j.Mounted[label]; dir != "" {
		err := fn(dir)
		unix.Sync()
		return err
	}
	dev, err := j.partDev(d, label)
	if err != nil {
		return err
	}
	return j.withMount(dev, name, fstype, fn)
}

func (j *Job) withMount(dev, name, fstype string, fn func(dir string) error) error {
	dir := filepath.Join(j.RunDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := j.Mount.Mount(dev, dir, fstype, 0, ""); err != nil {
		return err
	}
	ferr := fn(dir)
	unix.Sync()
	uerr := j.Mount.Unmount(dir)
	return errors.Join(ferr, uerr)
}

func (j *Job) updateLedger(esp string, fn func(*boot.Ledger) error) error {
	l, err := boot.ReadLedger(esp)
	if errors.Is(err, boot.ErrNoLedger) {
		l, err = boot.NewLedger(uuid.NewString()), nil
	}
	if err != nil {
		return err
	}
	if err := fn(l); err != nil {
		return err
	}
	return l.Write(esp)
}

// esp installs systemd-boot and the slot's kernel, initrd and manifest. On install it
// also writes the slot's entry and a fresh ledger; on upgrade the entry comes last
// (report), so a power cut before it leaves the old entry the only one.
func (j *Job) esp(ctx context.Context, s Step, r *Reporter) error {
	d, _, err := j.diskOf(s)
	if err != nil {
		return err
	}
	slot := s.Args["slot"]
	tmp := filepath.Join(j.RunDir, "stage", slot)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files := map[string]string{}
	for _, name := range []string{image.KernelName, image.InitrdName, image.LoaderName} {
		files[name] = filepath.Join(tmp, name)
		if err := j.Bundle.CopyFile(ctx, name, files[name]); err != nil {
			return err
		}
	}
	mb, err := j.Bundle.Manifest.Marshal()
	if err != nil {
		return err
	}
	manifest := filepath.Join(tmp, image.ManifestName)
	if err := os.WriteFile(manifest, mb, 0o644); err != nil {
		return err
	}
	m := j.Bundle.Manifest
	return j.withESP(d, func(esp string) error {
		if err := boot.InstallLoader(esp, files[image.LoaderName]); err != nil {
			return err
		}
		if err := boot.InstallSlot(esp, slot, files[image.KernelName], files[image.InitrdName], manifest); err != nil {
			return err
		}
		if j.Plan.Action == cmdline.ActionUpgrade {
			return j.updateLedger(esp, func(l *boot.Ledger) error {
				return l.RecordSlot(j.now(), slot, boot.SlotReady, m.Version, m.Name)
			})
		}
		if err := boot.WriteEntry(esp, boot.Entry{Slot: slot, Version: m.Version, Options: j.Params.BootEntryArgs()}); err != nil {
			return err
		}
		return j.updateLedger(esp, func(l *boot.Ledger) error {
			if err := l.RecordSlot(j.now(), slot, boot.SlotGood, m.Version, m.Name); err != nil {
				return err
			}
			if err := l.SetActive(slot); err != nil {
				return err
			}
			l.RecordAction(j.now(), string(j.Plan.Action), slot, m.Name+" "+m.Version)
			return nil
		})
	})
}

func (j *Job) seedConfig(ctx context.Context, s Step, r *Reporter) error {
	d, _, err := j.diskOf(s)
	if err != nil {
		return err
	}
	c := ConfigFromParams(j.Params, j.Facts)
	return j.withPart(d, "node-config", "config", "ext4", func(dir string) error {
		return nodeconfig.Seed(dir, c)
	})
}

// ConfigFromParams maps the command line to the node configuration it seeds.
func ConfigFromParams(p *cmdline.Params, f *Facts) nodeconfig.Config {
	c := nodeconfig.Config{
		Hostname:              p.Hostname,
		DNS:                   p.DNS,
		NTP:                   p.NTP,
		AdminPasswordHash:     p.AdminPW.Reveal(),
		RootPasswordHash:      p.RootPW.Reveal(),
		SSHPasswordAuth:       p.SSHPwAuth,
		ManagementFingerprint: p.ManagementServerFingerprint,
		ManagementServer:      hostPort(p.ManagementServer),
		Syslog:                hostPort(p.Syslog),
		Netconsole:            hostPort(p.Netconsole),
		Collectd:              hostPort(p.Collectd),
	}
	if p.BootIf != nil || p.IP != nil {
		iface := nodeconfig.Interface{DHCP: true}
		if p.BootIf != nil {
			iface.MAC, iface.Name = p.BootIf.MAC, p.BootIf.Name
			if p.BootIf.Link {
				for _, n := range f.NICs {
					if n.Carrier {
						iface.MAC = n.MAC
						break
					}
				}
			}
		}
		if p.IP != nil && !p.IP.DHCP && p.IP.Address != "" {
			iface.DHCP = false
			iface.Address = p.IP.Address
			if ones := maskBits(p.IP.Netmask); ones > 0 {
				iface.Address += "/" + strconv.Itoa(ones)
			}
			iface.Gateway = p.IP.Gateway
			if iface.MAC == "" && iface.Name == "" {
				iface.Name = p.IP.Interface
			}
		}
		if p.VLAN != nil {
			iface.VLAN = p.VLAN.ID
		}
		if iface.MAC != "" || iface.Name != "" {
			c.Interfaces = append(c.Interfaces, iface)
		}
	}
	return c
}

func hostPort(h *cmdline.HostPort) string {
	if h == nil {
		return ""
	}
	if h.Port == 0 {
		return h.Host
	}
	return h.Host + ":" + strconv.Itoa(h.Port)
}

func (j *Job) migrateConfig(ctx context.Context, s Step, r *Reporter) error {
	d, _, err := j.diskOf(s)
	if err != nil {
		return err
	}
	var ops []nodeconfig.Migration
	for _, m := range j.Bundle.Manifest.Migrations {
		var mode uint64
		if m.Mode != "" {
			if mode, err = strconv.ParseUint(m.Mode, 8, 32); err != nil {
				return fmt.Errorf("migration %s %s: mode %q is not octal", m.Op, m.Path, m.Mode)
			}
		}
		ops = append(ops, nodeconfig.Migration{Op: m.Op, Path: m.Path, To: m.To, Value: m.Value, Mode: os.FileMode(mode)})
	}
	from := s.Args["from"]
	return j.withPart(d, "node-config", "config", "ext4", func(dir string) error {
		// The snapshot is what the running version expects, restored on rollback.
		if err := nodeconfig.Snapshot(dir, from); err != nil {
			return err
		}
		// The ledger says migrations may have started before the first one runs: a
		// power cut from here on makes the next boot of the old slot restore the
		// snapshot (see recordBoot).
		if err := j.withESP(d, func(esp string) error {
			return j.updateLedger(esp, func(l *boot.Ledger) error {
				l.RecordAction(j.now(), ActionMigrating, s.Args["slot"], "config snapshot "+from+" taken; migrating to "+s.Args["to"])
				return nil
			})
		}); err != nil {
			return err
		}
		r.Info("config snapshot %q taken; applying %d migrations", from, len(ops))
		return nodeconfig.ApplyMigrations(dir, ops)
	})
}

func (j *Job) bootOrder(ctx context.Context, s Step, r *Reporter) error {
	if j.EFIVars == nil {
		r.Info("no EFI variables: boot order unchanged")
		return nil
	}
	v, err := j.EFIVars()
	if err != nil {
		return fmt.Errorf("open EFI variables: %w", err)
	}
	if s.Args["remove"] != "" {
		removed, err := boot.RemoveBootEntries(v)
		r.Info("removed %d nodeinit boot entries", len(removed))
		return err
	}
	d, dev, err := j.diskOf(s)
	if err != nil {
		return err
	}
	parts, err := disk.ReadGPT(dev, d.LogicalSectorSize)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if p.PartLabel != "NODE-ESP" {
			continue
		}
		guid, err := uuid.Parse(p.PartUUID)
		if err != nil {
			return fmt.Errorf("ESP partition GUID %q: %w", p.PartUUID, err)
		}
		ss := int64(d.LogicalSectorSize)
		n, err := boot.InstallBootEntry(v, boot.ESPLocation{PartNumber: uint32(p.Number),
			StartLBA: uint64(p.StartByte / ss), SizeLBA: uint64(p.SizeBytes / ss), PartGUID: guid})
		if err != nil {
			return err
		}
		r.Info("Boot%04X first in BootOrder", n)
		return nil
	}
	return fmt.Errorf("%s: no NODE-ESP partition in the GPT", d.Path)
}

// report records the outcome: on upgrade it writes the new counted entry, the very last
// write, so the old entry stays the only one until everything else is done.
func (j *Job) report(ctx context.Context, s Step, r *Reporter) error {
	d, _, err := j.diskOf(s)
	if err != nil {
		return err
	}
	if err := j.withESP(d, func(esp string) error {
		if s.Args["entry"] != "" {
			tries, _ := strconv.Atoi(s.Args["tries"])
			slot := s.Args["slot"]
			m := j.Bundle.Manifest
			if err := boot.WriteEntry(esp, boot.Entry{Slot: slot, Version: m.Version, Options: j.entryOptions(esp), Tries: tries}); err != nil {
				return err
			}
			if err := j.updateLedger(esp, func(l *boot.Ledger) error {
				l.RecordAction(j.now(), string(j.Plan.Action), slot, m.Name+" "+m.Version)
				return nil
			}); err != nil {
				return err
			}
		}
		if j.Log != "" {
			dst := filepath.Join(esp, "node", "log", j.now().UTC().Format("20060102T150405Z")+"-"+string(j.Plan.Action)+".jsonl")
			if err := copyFile(j.Log, dst); err != nil {
				r.Info("log not saved: %v", err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return j.localBootTrigger(ctx, r)
}

// localBootTrigger tells the provisioning server (local_boot_trigger) that the install
// is done, so it stops offering the installer: no PXE reinstall loops. A failure is
// reported, not fatal: the disk is complete, and the install-twice guard still boots it.
func (j *Job) localBootTrigger(ctx context.Context, r *Reporter) error {
	trigger := j.Params.LocalBootTrigger
	if trigger == "" || (j.Plan.Action != cmdline.ActionInstall && j.Plan.Action != cmdline.ActionReinstall) {
		return nil
	}
	host := j.Params.Hostname
	if host == "" && j.Params.IP != nil {
		host = j.Params.IP.Hostname
	}
	u := LocalBootTriggerURL(trigger, host)
	fetch := j.Fetch
	if fetch == nil {
		fetch = func(ctx context.Context, u string) error { return FetchLocalBootTrigger(ctx, nil, u, 5) }
	}
	if err := fetch(ctx, u); err != nil {
		r.Info("warning: %v", err)
		return nil
	}
	r.Info("local_boot_trigger %s called", u)
	return nil
}

// entryOptions keeps the running entry's arguments for an upgrade, so a node
// upgraded from its own OS keeps its console and other preserved settings.
func (j *Job) entryOptions(esp string) []string {
	if cur, err := boot.EntryFor(esp, j.Facts.Install.ActiveSlot); err == nil {
		return cur.Options
	}
	return j.Params.BootEntryArgs()
}

// MountLogDir mounts the ESP of the plan's disk, when it has one, and returns the
// directory where a failure log survives the reboot. The mount stays: the machine
// stops or reboots next.
func (j *Job) MountLogDir() (string, error) {
	if j.Plan == nil || j.Plan.Target == nil {
		return "", errors.New("no target disk")
	}
	d, ok := j.Facts.Disk(j.Plan.Target.Name)
	if !ok {
		return "", errors.New("target disk not in facts")
	}
	dev, err := j.partDev(d, "NODE-ESP")
	if err != nil {
		return "", err
	}
	dir := filepath.Join(j.RunDir, "faillog")
	if err := j.mountAt(dev, dir, "vfat", 0, ""); err != nil {
		return "", err
	}
	logDir := filepath.Join(dir, "node", "log")
	return logDir, os.MkdirAll(logDir, 0o755)
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func maskBits(mask string) int {
	ip := net.ParseIP(mask).To4()
	if ip == nil {
		return 0
	}
	ones, bits := net.IPMask(ip).Size()
	if bits == 0 {
		return 0 // not a contiguous mask
	}
	return ones
}
