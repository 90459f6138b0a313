package stages

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
	"golang.org/x/sys/unix"
)

// Job binds a plan to a machine: RunStep runs each planned step's implementation.
// Every effect goes through Dev, the device edge (linuxdev on a machine, the
// recorder in tests); every path is below DevDir, RunDir or NewRoot.
type Job struct {
	Params  *cmdline.Params
	Facts   *plan.Facts
	Plan    *plan.Blueprint
	Bundle  *image.Bundle
	Dev     device.Machine
	DevDir  string // /dev
	RunDir  string // /run/nodeinit
	NewRoot string // where the node's root is assembled before switch_root
	Now     func() time.Time
	// Log is the JSON-lines event log, copied to the ESP by the report stage,
	// which calls FlushLog (when set) first, for the lines still queued.
	Log      string
	FlushLog func()
	// Mounted maps a partition label (NODE-ESP, node-config) to the directory where it
	// is mounted already: on a running node the stages use those mounts instead of
	// mounting the partition a second time.
	Mounted map[string]string
	// Fetch calls local_boot_trigger after a successful install; nil uses HTTP.
	Fetch func(ctx context.Context, url string) error
	// SSHKey is an OpenSSH public key line for the admin user, which seed-config
	// writes beside the command line's config; no kernel argument carries one (the
	// installer screen does). Empty for none.
	SSHKey string
	// ProbedESP, when set, is the boot disk's ESP as the probe read it
	// (GatherOptions.KeepESP): the job's first use of that ESP reads through it
	// (withProbedESP), then closes it. Only a job whose first step is mount-root
	// gets one: a step that repartitions needs the partition closed.
	ProbedESP *ProbedESP

	unlocks []func() error
	locked  []string
	mounted []string
	erased  map[string]boot.EraseRecord // disk → the wipe this job made of it
	appData map[int]boot.AppDataRecord  // app-data disk number → its partitions, as partitioned by this job
	fetched map[string]string           // bundle file name → its checked copy in RAM
	// rebootReason, when set by mount-root, says why this boot reboots into
	// the other slot instead of switching root (RebootReason).
	rebootReason string
	bootDisk     *disk.Disk // the disk mount-root boots from
}

// RunStep runs one planned step, chosen by the type of its input. An error that
// is not already an operator error becomes one that names the step and the
// disk, and says what to do.
func (j *Job) RunStep(ctx context.Context, s plan.Step, r *Reporter) error {
	// A download's mirror failovers become the step's info events.
	ctx = image.WithNotify(ctx, func(msg string) { r.Info("%s", msg) })
	err := j.runStep(ctx, s, r)
	if err == nil || operr.Of(err) != nil {
		return err
	}
	return j.operatorError(s, err)
}

func (j *Job) operatorError(s plan.Step, err error) error {
	where := ""
	if s.Input != nil && s.Input.Target() != "" {
		where = " on /dev/" + s.Input.Target()
		if d, ok := j.Facts.Disk(s.Input.Target()); ok {
			where = " on " + d.Path
			if d.Serial != "" {
				where += " (serial " + d.Serial + ")"
			}
		}
	}
	fix := "correct what the error names, then run the same command line again: it finishes the job or says why not"
	if errors.Is(err, unix.EIO) || errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EROFS) {
		fix = "the disk failed a write: check its cabling and health (smartctl -a), or replace it, then run the same command line again"
	}
	return &operr.Error{What: fmt.Sprintf("%s%s failed", s.Name, where), Fix: fix, Err: err}
}

func (j *Job) runStep(ctx context.Context, s plan.Step, r *Reporter) error {
	switch in := s.Input.(type) {
	case plan.Wipe:
		return j.wipe(ctx, in, r)
	case plan.Partition:
		return j.partition(ctx, in, r)
	case plan.Filesystems:
		return j.filesystems(ctx, in, r)
	case plan.FetchBootFiles:
		return j.fetchBootFiles(ctx, in, r)
	case plan.WriteSlot:
		return j.writeSlot(ctx, in, r)
	case plan.CopyBootFiles:
		return j.copyBootFiles(ctx, in, r)
	case plan.SeedConfig:
		return j.seedConfig(ctx, in, r)
	case plan.MigrateConfig:
		return j.migrateConfig(ctx, in, r)
	case plan.AddBootEntry:
		return j.addBootEntry(ctx, in, r)
	case plan.BootOrder:
		return j.bootOrder(ctx, in, r)
	case plan.Report:
		return j.report(ctx, in, r)
	case plan.CopyToRAM:
		return j.imageToRAM(ctx, r)
	case plan.MountRoot:
		return j.mountRoot(ctx, in, r)
	}
	return fmt.Errorf("step %s: input %T has no implementation in this build", s.Name, s.Input)
}

// Close releases disk locks and unmounts what the job mounted, newest first.
// After a successful boot stage the node's mounts stay for switch_root.
func (j *Job) Close() error {
	errs := []error{j.ProbedESP.Close()}
	j.ProbedESP = nil
	for i := len(j.mounted) - 1; i >= 0; i-- {
		if err := j.Dev.Unmount(j.mounted[i]); err != nil {
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

func (j *Job) diskOf(name string) (*disk.Disk, string, error) {
	d, ok := j.Facts.Disk(name)
	if !ok {
		return nil, "", fmt.Errorf("disk %q is not among the probed disks", name)
	}
	return d, filepath.Join(j.DevDir, d.Name), nil
}

// lock takes the exclusive flock on the disk for the rest of the job. Every
// disk the plan writes is locked, each once.
func (j *Job) lock(dev string) error {
	if slices.Contains(j.locked, dev) {
		return nil
	}
	unlock, err := j.Dev.Lock(dev)
	if err != nil {
		return err
	}
	j.locked = append(j.locked, dev)
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
	if p := d.PartitionByLabel(name); p != nil {
		return filepath.Join(j.DevDir, p.Name), nil
	}
	return "", fmt.Errorf("%s has no partition labelled %s", d.Path, name)
}

func (j *Job) wipe(ctx context.Context, in plan.Wipe, r *Reporter) error {
	d, dev, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	if err := j.lock(dev); err != nil {
		return err
	}
	mode, err := disk.ParseEraseMode(in.Mode)
	if err != nil {
		return err
	}
	started := j.now()
	opts := disk.WipeOptions{SectorSize: d.LogicalSectorSize, Partitions: d.Partitions, Mode: mode, Secure: in.Secure,
		Progress: func(done, total int64) {
			rate := 0.0
			if s := j.now().Sub(started).Seconds(); s > 0 {
				rate = float64(done) / s
			}
			r.Progress(done, total, rate)
		}}
	if keep := in.Keep; keep != "" {
		p := d.PartitionByLabel(keep)
		if p == nil {
			return fmt.Errorf("keep %s: %s has no such partition", keep, d.Path)
		}
		opts.Keep = []disk.Partition{*p}
	}
	var rep disk.WipeReport
	if err := j.withBlock(dev, d.LogicalSectorSize, func(b device.Block) (err error) {
		rep, err = disk.WipeBlock(ctx, b, opts)
		return err
	}); err != nil {
		return err
	}
	// The kernel forgets the old partitions; when one is still open it keeps
	// them until the reboot, and the partition step says so if it matters.
	if err := j.Dev.SetPartitions(dev, nil); err != nil && !errors.Is(err, device.ErrRereadDeferred) {
		return err
	}
	r.Info("%s: cleared %d regions (%d KiB) by %s on %s, %d partitions and containers found", rep.Mode, rep.Regions, rep.Bytes>>10, rep.Method, dev, rep.Partitions)
	if j.erased == nil {
		j.erased = map[string]boot.EraseRecord{}
	}
	j.erased[in.Disk] = boot.EraseRecord{Time: j.now(), Mode: string(rep.Mode), Discarded: rep.Discarded,
		DiscardZeroes: rep.DiscardZeroes, ErasedBytes: rep.Erased, Bytes: rep.Bytes}
	if rep.Mode != disk.EraseSignatures {
		r.Info("erased %d MiB; discarded=%v %s; discarded blocks read back as zeroes: %s", rep.Erased>>20, rep.Discarded, rep.DiscardMethod, orNone(rep.DiscardZeroes))
	}
	for _, rs := range rep.Remote {
		r.Info("warning: %v lives partly on another disk and survives this wipe there", rs)
	}
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "n/a"
	}
	return s
}

func (j *Job) partition(ctx context.Context, in plan.Partition, r *Reporter) error {
	d, dev, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	if err := j.lock(dev); err != nil {
		return err
	}
	lp := j.Plan.LayoutOf(in.Disk)
	if lp == nil {
		return fmt.Errorf("the plan has no layout for %s", d.Path)
	}
	l := *lp
	app := j.Plan.AppDataOf(in.Disk)
	if err := j.withBlock(dev, d.LogicalSectorSize, func(b device.Block) error {
		if err := diskio.WriteGPT(b, l); err != nil {
			return err
		}
		if app == nil {
			return nil
		}
		// The ledger records an app-data disk by the PARTUUIDs just written.
		parts, err := diskio.ReadGPTOf(b)
		if err != nil {
			return err
		}
		return j.recordAppData(d, *app, parts, r)
	}); err != nil {
		return err
	}
	if err := j.Dev.SetPartitions(dev, l.KernelPartitions()); err != nil {
		if errors.Is(err, device.ErrRereadDeferred) {
			return operr.Wrap(err, "partition "+d.Path, "the kernel still uses the old partitions of "+d.Path+": reboot and run the same command line again", "")
		}
		return err
	}
	// Without udev, devtmpfs creates the partition nodes; wait until they exist.
	return j.Dev.WaitPartitions(dev, l.KernelPartitions())
}

// withBlock opens the disk or partition at path through the device edge, runs
// fn, flushes and closes it.
func (j *Job) withBlock(path string, sectorSize int, fn func(b device.Block) error) error {
	b, err := j.Dev.OpenBlock(path, sectorSize)
	if err != nil {
		return err
	}
	return flushAndClose(b, fn(b))
}

// flushAndClose ends a use of b that returned err: it flushes b when err is
// nil, and closes it either way.
func flushAndClose(b device.Block, err error) error {
	if err == nil {
		err = b.Flush()
	}
	return errors.Join(err, b.Close())
}

func (j *Job) filesystems(ctx context.Context, in plan.Filesystems, r *Reporter) error {
	d, dev, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	l := j.Plan.LayoutOf(in.Disk)
	if l == nil {
		return fmt.Errorf("the plan has no layout for %s", d.Path)
	}
	for _, ps := range l.Partitions {
		if ps.FS == disk.FSRaw || ps.Name == in.Keep || (in.Only != nil && !slices.Contains(in.Only, ps.Name)) {
			continue
		}
		p := disk.PartitionPath(dev, ps.Number)
		if err := j.Dev.MakeFS(device.Mkfs{Path: p, FS: ps.FS, Label: ps.Name, SectorSize: d.LogicalSectorSize}); err != nil {
			return err
		}
		r.Info("%s on %s (%s)", ps.FS, p, ps.Name)
	}
	return nil
}

func (j *Job) writeSlot(ctx context.Context, in plan.WriteSlot, r *Reporter) error {
	d, dev, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	if err := j.lock(dev); err != nil {
		return err
	}
	slot := in.Slot
	target, err := j.partDev(d, "node-root-"+slot)
	if err != nil {
		return err
	}
	version := j.Bundle.Manifest.Version
	if in.Upgrade {
		// Mark the slot as being written and drop its old entry first: a power cut
		// from now on leaves the slot unreferenced, and the next boot of the running
		// slot sees the interrupted upgrade.
		if err := j.withESP(d, func(esp boot.FS) error {
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
	if note, err := j.Bundle.ChunkCheck(ctx, image.RootfsName); err == nil {
		r.Info("verifying with %s", note)
	}
	return j.Bundle.WriteFile(ctx, image.RootfsName, target, 0, func(p image.Progress) {
		r.Progress(p.Done, p.Total, p.Rate)
	})
}

// withESP runs fn on the disk's ESP: its existing mount when Mounted names one (a
// running node), else the partition itself, read and written in this process
// through the device edge (boot.OpenFAT), with no vfat driver and no mount.
func (j *Job) withESP(d *disk.Disk, fn func(esp boot.FS) error) error {
	if dir := j.Mounted[disk.LabelESP]; dir != "" {
		err := fn(boot.DirFS(dir))
		j.Dev.SyncAll()
		return err
	}
	dev, err := j.partDev(d, disk.LabelESP)
	if err != nil {
		return err
	}
	if pe := j.takeProbedESP(d); pe != nil {
		return j.withProbedESP(pe, dev, d.LogicalSectorSize, fn)
	}
	return j.withBlock(dev, d.LogicalSectorSize, func(b device.Block) error {
		esp, err := boot.OpenFAT(b)
		if err != nil {
			return err
		}
		return fn(esp)
	})
}

// withPart runs fn on the partition labelled label: in its existing mount when
// Mounted names one, else mounted at RunDir/name for the duration of fn.
func (j *Job) withPart(d *disk.Disk, label, name, fstype string, fn func(dir string) error) error {
	if dir := j.Mounted[label]; dir != "" {
		err := fn(dir)
		j.Dev.SyncAll()
		return err
	}
	dev, err := j.partDev(d, label)
	if err != nil {
		return err
	}
	dir := filepath.Join(j.RunDir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := j.Dev.Mount(dev, dir, fstype, 0, ""); err != nil {
		return err
	}
	ferr := fn(dir)
	j.Dev.SyncAll()
	uerr := j.Dev.Unmount(dir)
	return errors.Join(ferr, uerr)
}

func (j *Job) updateLedger(esp boot.FS, fn func(*boot.Ledger) error) error {
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

// bootFileNames are the bundle files the ESP gets: the kernel and initrd, and the
// loader when asked.
func bootFileNames(loader bool) []string {
	names := []string{image.KernelName, image.InitrdName}
	if loader {
		names = append(names, image.LoaderName)
	}
	return names
}

// fetchBootFiles copies the boot files into RunDir (RAM in the initramfs),
// each checked against the signed manifest as it is read: a 404, a truncated
// medium or a bad digest refuses the action here, before any write.
func (j *Job) fetchBootFiles(ctx context.Context, in plan.FetchBootFiles, r *Reporter) error {
	dir := filepath.Join(j.RunDir, "fetched")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if j.fetched == nil {
		j.fetched = map[string]string{}
	}
	for _, name := range bootFileNames(in.Loader) {
		dst := filepath.Join(dir, name)
		if err := j.Bundle.CopyFile(ctx, name, dst); err != nil {
			src := j.Bundle.Source.String()
			return operr.Wrap(err, "fetch "+name+" from "+src, "nothing was written: make the bundle at "+src+" complete again (nodeinit image verify checks it) and run the same command line", "")
		}
		j.fetched[name] = dst
		if st, err := os.Stat(dst); err == nil {
			note, _ := j.Bundle.ChunkCheck(ctx, name)
			r.Info("%s: %d bytes, checked against %s", name, st.Size(), note)
		}
	}
	return nil
}

// copyBootFiles puts the slot's kernel, initrd and manifest on the ESP, and the boot
// loader when asked (install). On an upgrade the slot is then ready but has no entry
// yet: the entry comes last (addBootEntry), so a power cut before it leaves the old
// entry the only one.
func (j *Job) copyBootFiles(ctx context.Context, in plan.CopyBootFiles, r *Reporter) error {
	d, _, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	slot := in.Slot
	tmp := filepath.Join(j.RunDir, "stage", slot)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	files := map[string]string{}
	for _, name := range bootFileNames(in.Loader) {
		if p, ok := j.fetched[name]; ok {
			files[name] = p // fetched and checked before the first write
			continue
		}
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
	if err := j.withESP(d, func(esp boot.FS) error {
		switch {
		case in.Loader && in.BIOS:
			if err := boot.InstallGrub(esp); err != nil {
				return err
			}
		case in.Loader:
			if err := boot.InstallLoader(esp, files[image.LoaderName]); err != nil {
				return err
			}
		}
		if err := boot.InstallSlot(esp, slot, files[image.KernelName], files[image.InitrdName], manifest); err != nil {
			return err
		}
		if !in.Ready {
			return nil
		}
		return j.updateLedger(esp, func(l *boot.Ledger) error {
			if in.TrialLoader {
				if err := j.stageLoaderTrial(esp, l, slot, r); err != nil {
					return err
				}
			}
			return l.RecordSlot(j.now(), slot, boot.SlotReady, m.Version, m.Name)
		})
	}); err != nil {
		return err
	}
	if in.Loader && in.BIOS {
		// After the ESP: the MBR is the last write that makes the disk boot GRUB.
		return j.writeBIOSBoot(d, r)
	}
	return nil
}

// addBootEntry writes the slot's loader entry and records it in the ledger. On an
// upgrade this is the step that makes the new slot bootable, with a counted entry,
// and it comes last so that until then the old entry is the only one.
func (j *Job) addBootEntry(ctx context.Context, in plan.AddBootEntry, r *Reporter) error {
	d, _, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	m := j.Bundle.Manifest
	return j.withESP(d, func(esp boot.FS) error {
		if in.Fresh {
			if err := boot.WriteEntry(esp, boot.Entry{Slot: in.Slot, Version: m.Version, Options: j.Params.BootEntryArgs()}); err != nil {
				return err
			}
			return j.updateLedger(esp, func(l *boot.Ledger) error {
				if er, ok := j.erased[in.Disk]; ok {
					l.Erase = &er // the ledger says how the disk was erased before this install
				}
				apps, err := j.appDataRecords()
				if err != nil {
					return err
				}
				l.AppData = apps
				if err := l.RecordSlot(j.now(), in.Slot, boot.SlotGood, m.Version, m.Name); err != nil {
					return err
				}
				if err := l.SetActive(in.Slot); err != nil {
					return err
				}
				l.RecordAction(j.now(), string(j.Plan.Action), in.Slot, m.Name+" "+m.Version)
				return nil
			})
		}
		opts := j.entryOptions(esp)
		if in.NewArgs {
			opts = j.Params.BootEntryArgs()
		}
		if err := boot.WriteEntry(esp, boot.Entry{Slot: in.Slot, Version: m.Version, Options: opts, Tries: in.Tries}); err != nil {
			return err
		}
		return j.updateLedger(esp, func(l *boot.Ledger) error {
			l.RecordAction(j.now(), string(j.Plan.Action), in.Slot, m.Name+" "+m.Version)
			return nil
		})
	})
}

func (j *Job) seedConfig(ctx context.Context, in plan.SeedConfig, r *Reporter) error {
	d, _, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	c, err := j.nodeConfig()
	if err != nil {
		return err
	}
	if !in.Replace {
		return j.withPart(d, "node-config", "config", "ext4", func(dir string) error {
			return nodeconfig.Seed(dir, c)
		})
	}
	return j.withPart(d, "node-config", "config", "ext4", func(dir string) error {
		// The snapshot is the config the working slot runs with. Once the ledger
		// says slot in.Slot's config is being written, a boot of the working slot
		// before in.Slot's entry exists restores it (see recordBoot).
		if err := nodeconfig.Snapshot(dir, in.Snapshot); err != nil {
			return err
		}
		if err := j.withESP(d, func(esp boot.FS) error {
			return j.updateLedger(esp, func(l *boot.Ledger) error {
				l.RecordAction(j.now(), ActionMigrating, in.Slot, "config snapshot "+in.Snapshot+" taken; replacing the config for the reinstall")
				return nil
			})
		}); err != nil {
			return err
		}
		r.Info("config snapshot %q taken; replacing the config", in.Snapshot)
		return nodeconfig.Replace(dir, c)
	})
}

// nodeConfig is the configuration the command line seeds, checked by the same
// validation the planner's check used.
func (j *Job) nodeConfig() (nodeconfig.Config, error) {
	c, err := nodeconfig.FromParams(j.Params, NICsOf(j.Facts))
	c.AdminSSHKey = j.SSHKey
	return c, err
}

// NICsOf converts the probed NICs for nodeconfig.FromParams.
func NICsOf(f *plan.Facts) []nodeconfig.NIC {
	out := make([]nodeconfig.NIC, 0, len(f.NICs))
	for _, n := range f.NICs {
		out = append(out, nodeconfig.NIC{Name: n.Name, MAC: n.MAC, Carrier: n.Carrier})
	}
	return out
}

func (j *Job) migrateConfig(ctx context.Context, in plan.MigrateConfig, r *Reporter) error {
	d, _, err := j.diskOf(in.Disk)
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
	from := in.From
	return j.withPart(d, "node-config", "config", "ext4", func(dir string) error {
		// The snapshot is what the running version expects, restored on rollback.
		if err := nodeconfig.Snapshot(dir, from); err != nil {
			return err
		}
		// The ledger says migrations may have started before the first one runs: a
		// power cut from here on makes the next boot of the old slot restore the
		// snapshot (see recordBoot).
		if err := j.withESP(d, func(esp boot.FS) error {
			return j.updateLedger(esp, func(l *boot.Ledger) error {
				l.RecordAction(j.now(), ActionMigrating, in.Slot, "config snapshot "+from+" taken; migrating to "+in.To)
				return nil
			})
		}); err != nil {
			return err
		}
		r.Info("config snapshot %q taken; applying %d migrations", from, len(ops))
		return nodeconfig.ApplyMigrations(dir, ops)
	})
}

func (j *Job) bootOrder(ctx context.Context, in plan.BootOrder, r *Reporter) error {
	v, err := j.Dev.EFIVars()
	if errors.Is(err, device.ErrUnsupported) {
		r.Info("no EFI variables: boot order unchanged")
		return nil
	}
	if err != nil {
		return fmt.Errorf("open EFI variables: %w", err)
	}
	if in.Remove {
		removed, err := boot.RemoveBootEntries(v)
		r.Info("removed %d nodeinit boot entries", len(removed))
		if err != nil {
			return err
		}
		return j.recordUninstall(v, r)
	}
	d, _, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	loc, err := j.espLocation(d)
	if err != nil {
		return err
	}
	var l *boot.Ledger
	if err := j.withESP(d, func(esp boot.FS) (err error) {
		l, err = boot.ReadLedger(esp)
		return err
	}); err != nil {
		return err
	}
	before, _ := boot.ReadBootOrder(v)
	n, err := boot.InstallBootEntryFor(v, loc, l.DefaultLoader())
	if err != nil {
		return err
	}
	// Firmware rewrites BootOrder (OVMF does after a boot from a CD that QEMU's
	// boot order put first): say what this step found, so a restore is visible.
	r.Info("Boot%04X first in BootOrder (it was: %s)", n, bootOrderText(before))
	if rec := l.Slots[j.Plan.Slot]; j.Plan.Action == cmdline.ActionUpgrade && rec != nil && rec.LoaderTrial != "" {
		t, err := boot.InstallTrialBootEntry(v, loc, rec.LoaderTrial)
		if err != nil {
			return err
		}
		r.Info("loader trial: BootNext is Boot%04X, which starts %s once", t, rec.LoaderTrial)
	}
	return nil
}

// recordUninstall leaves the uninstall's erase record in an EFI variable
// (boot.UninstallVar): the ledger that would say how the disks were erased
// went with them. A firmware that refuses the variable is reported, not an
// error: the disks are erased either way.
func (j *Job) recordUninstall(v boot.EFIVars, r *Reporter) error {
	if len(j.erased) == 0 {
		return nil
	}
	rec := boot.UninstallRecord{Time: j.now()}
	names := make([]string, 0, len(j.erased))
	for name := range j.erased {
		names = append(names, name)
	}
	slices.Sort(names)
	var modes []string
	for _, name := range names {
		label := "/dev/" + name
		if d, ok := j.Facts.Disk(name); ok && d.Serial != "" {
			label += " (" + d.Serial + ")"
		}
		rec.Disks = append(rec.Disks, boot.ErasedDisk{Disk: label, EraseRecord: j.erased[name]})
		modes = append(modes, label+" erase="+j.erased[name].Mode)
	}
	if err := boot.WriteUninstallRecord(v, rec); err != nil {
		r.Info("the erase record was not kept: %v", err)
		return nil
	}
	r.Info("recorded in EFI variable %s: %s", boot.UninstallVar, strings.Join(modes, ", "))
	return nil
}

// bootOrderText is a BootOrder as efibootmgr shows it: 0003,0001.
func bootOrderText(order []uint16) string {
	if len(order) == 0 {
		return "empty"
	}
	parts := make([]string, len(order))
	for i, n := range order {
		parts[i] = fmt.Sprintf("%04X", n)
	}
	return strings.Join(parts, ",")
}

// report saves the event log on the ESP, where it survives the reboot, and calls
// local_boot_trigger.
func (j *Job) report(ctx context.Context, in plan.Report, r *Reporter) error {
	d, _, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	if j.Log != "" {
		if j.FlushLog != nil {
			j.FlushLog()
		}
		if err := j.withESP(d, func(esp boot.FS) error {
			dst := path.Join("node", "log", j.now().UTC().Format("20060102T150405Z")+"-"+string(j.Plan.Action)+".jsonl")
			data, err := os.ReadFile(j.Log)
			if err == nil {
				if err = esp.MkdirAll(path.Dir(dst)); err == nil {
					err = esp.WriteFile(dst, data)
				}
			}
			if err != nil {
				r.Info("log not saved: %v", err)
			}
			return nil
		}); err != nil {
			return err
		}
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
	r.Info("local_boot_trigger %s called", image.RedactRawURL(u))
	return nil
}

// entryOptions keeps the running entry's arguments for an upgrade, so a node
// upgraded from its own OS keeps its console and other preserved settings.
func (j *Job) entryOptions(esp boot.FS) []string {
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

func (j *Job) withReadOnlyBlock(path string, sectorSize int, fn func(b device.Block) error) error {
	b, err := j.Dev.OpenBlockReadOnly(path, sectorSize)
	if err != nil {
		return err
	}
	return errors.Join(fn(b), b.Close())
}
