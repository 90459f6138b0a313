package stages

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/kmod"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/u-root/u-root/pkg/mount/loop"
	"golang.org/x/sys/unix"
)

// Where the node finds nodeinit's mounts after switch_root. They are mounted below the
// initramfs's own /run/nodeinit (RunDir), and switch_root moves /run, with everything
// mounted below it, into the new root.
const (
	NodeESPDir    = "/run/nodeinit/esp"
	NodeConfigDir = "/run/nodeinit/config"
)

// BootFilesystems are the filesystem types mountRoot mounts: the slot, its
// overlay, the ESP and the ext4 partitions. /init preloads their drivers
// (kmod.Preload) while it probes, on a boot from a node's own loader entry.
var BootFilesystems = []string{"squashfs", "overlay", "vfat", "ext4"}

// mountRoot assembles the node's root under NewRoot: the slot's squashfs read-only, a
// tmpfs overlay on top, the ESP and config partition under /run/nodeinit, persisted files
// (the machine ID among them) bound over the root, logging on /var/log (seeded with the
// image's when new), data on /data, and the app-data disks the ledger records on
// /data/app<N> (mountAppData). It detects and records a rollback first. The
// caller then switches root.
func (j *Job) mountRoot(ctx context.Context, in plan.MountRoot, r *Reporter) error {
	slot := in.Slot
	if slot == "ram" {
		return j.bootStateless(ctx, r)
	}
	d, _, err := j.diskOf(in.Disk)
	if err != nil {
		return err
	}
	dev := func(label string) string {
		p, err := j.partDev(d, label)
		if err != nil {
			return ""
		}
		return p
	}
	rootDev := dev("node-root-" + slot)
	if rootDev == "" {
		return fmt.Errorf("%s has no node-root-%s partition", d.Path, slot)
	}
	// The slot's root (squashfs, then the overlay on it) is assembled on the
	// other CPU while this goroutine mounts config and records the boot: each
	// is mostly the kernel reading its partition, and neither needs the other.
	lower := filepath.Join(j.RunDir, "lower")
	rootMounted := make(chan error, 1)
	go func() {
		if err := j.mountAt(rootDev, lower, "squashfs", unix.MS_RDONLY, ""); err != nil {
			rootMounted <- operr.Wrap(err, "mount slot "+slot, "the slot may be damaged: boot the other slot's entry, or reinstall", "nodeinit.slot="+plan.OtherSlot(slot))
			return
		}
		rootMounted <- j.overlay(lower)
	}()
	config := filepath.Join(j.RunDir, "config")
	err = j.mountAt(dev("node-config"), config, "ext4", 0, "")
	if err == nil {
		// The ledger and any rollback are recorded through the partition itself, in
		// this process, before the kernel mounts the ESP for the node.
		j.bootDisk = d
		err = j.withESP(d, func(esp boot.FS) error { return j.recordBoot(esp, config, slot, r) })
	}
	if rerr := <-rootMounted; rerr != nil {
		return rerr
	}
	if err != nil {
		return err
	}
	if j.rebootReason != "" {
		return nil // a failed loader trial: /init reboots into the other slot
	}
	if err := j.mountAt(dev("NODE-ESP"), filepath.Join(j.RunDir, "esp"), "vfat", 0, ""); err != nil {
		return err
	}
	if err := j.bindConfig(config); err != nil {
		return err
	}
	if p := dev("node-logging"); p != "" {
		if err := j.mountLogging(p, lower, r); err != nil {
			return err
		}
	}
	if p := dev("node-data"); p != "" {
		if err := j.mountAt(p, filepath.Join(j.NewRoot, "/data"), "ext4", 0, ""); err != nil {
			return err
		}
	}
	j.mountAppData(in.AppData, r)
	return nil
}

// mountLogging mounts node-logging (the partition part) on the new root's
// /var/log, where it hides the image's. So a new node-logging first gets a copy
// of the image's /var/log, read from the slot mounted at lower, and every
// node-logging gets a journal directory (nodeconfig.SeedLogging). A failed copy
// is reported and does not stop the boot: the node runs with the logs it has.
func (j *Job) mountLogging(part, lower string, r *Reporter) error {
	dir := filepath.Join(j.NewRoot, "/var/log")
	if err := j.mountAt(part, dir, "ext4", 0, ""); err != nil {
		return err
	}
	seeded, err := nodeconfig.SeedLogging(dir, filepath.Join(lower, "/var/log"))
	switch {
	case err != nil:
		r.Info("node-logging (%s): %v; booting with /var/log as it is", part, err)
	case seeded:
		r.Info("node-logging (%s) was new: the image's /var/log copied onto it", part)
	}
	return nil
}

// recordBoot notes this boot in the ledger, and when a newer slot ran out of tries,
// records the rollback and restores the config snapshot the booted version expects.
func (j *Job) recordBoot(esp boot.FS, config, slot string, r *Reporter) error {
	entries, err := boot.Entries(esp)
	if err != nil {
		return err
	}
	l, err := boot.ReadLedger(esp)
	if err != nil {
		return operr.Wrap(err, "read the install ledger", "the ESP ledger is missing: reinstall, or boot with rescue to inspect the ESP", "rescue")
	}
	reason, judged, err := j.judgeLoaderTrial(esp, l, config, slot, r)
	if err != nil {
		return err
	}
	if reason != "" {
		j.rebootReason = reason
		return l.Write(esp)
	}
	rb, err := boot.DetectRollback(slot, entries, l)
	if err != nil {
		return err
	}
	if rb != nil {
		rb.Time = j.now()
		if err := l.RecordRollback(j.now(), *rb); err != nil {
			return err
		}
		r.Info("ROLLBACK from slot %s to slot %s: %s", rb.From, rb.To, rb.Reason)
		if err := restoreSnapshot(config, l, slot, r); err != nil {
			return err
		}
	}
	changed := rb != nil || judged
	if in := DetectInterruptedUpgrade(slot, entries, l); in != nil && rb == nil {
		// An upgrade was cut before its entry: its slot is not bootable, and when
		// migrations may have run the config goes back to what this version expects.
		r.Info("UPGRADE INTERRUPTED: slot %s (version %s) was never finished; staying on slot %s", in.Slot, in.Version, slot)
		if in.Migrated {
			if err := restoreSnapshot(config, l, slot, r); err != nil {
				return err
			}
		}
		if err := l.RecordSlot(j.now(), in.Slot, boot.SlotBad, "", ""); err != nil {
			return err
		}
		l.RecordAction(j.now(), ActionInterrupted, in.Slot, fmt.Sprintf("upgrade to %s stopped before its loader entry; config restored: %v", in.Version, in.Migrated))
		changed = true
	}
	if e, err := boot.EntryFor(esp, slot); err == nil && e.Blessed() {
		if rec := l.Slots[slot]; rec != nil && rec.State != boot.SlotGood {
			if err := l.RecordSlot(j.now(), slot, boot.SlotGood, rec.Version, rec.Image); err != nil {
				return err
			}
			changed = true
		}
		if rec := l.Slots[slot]; rec != nil && rec.Loader != "" && !boot.SameLoaderPath(rec.Loader, l.DefaultLoader()) && j.bootDisk != nil {
			if err := j.promoteLoader(j.bootDisk, l, slot, r); err != nil {
				return err
			}
			changed = true
		}
	}

	if l.Active != slot {
		if err := l.SetActive(slot); err != nil {
			return err
		}
		l.RecordAction(j.now(), "boot", slot, "")
		changed = true
	}
	if !changed {
		return nil // a plain boot of the same slot writes nothing to the ESP
	}
	return l.Write(esp)
}

// restoreSnapshot puts back the config snapshot named after the version of slot, when
// there is one (a version installed fresh has none: its config was never migrated).
func restoreSnapshot(config string, l *boot.Ledger, slot string, r *Reporter) error {
	v := l.Slots[slot]
	if v == nil || v.Version == "" {
		return nil
	}
	names, err := nodeconfig.Snapshots(config)
	if err != nil {
		return err
	}
	if !slices.Contains(names, v.Version) {
		r.Info("no config snapshot %q to restore; config kept as it is", v.Version)
		return nil
	}
	if err := nodeconfig.Restore(config, v.Version); err != nil {
		return fmt.Errorf("restore config snapshot %s: %w", v.Version, err)
	}
	r.Info("config restored from snapshot %q", v.Version)
	return nil
}

func (j *Job) bindConfig(config string) error {
	if err := nodeconfig.BindPersisted(config, j.NewRoot, binder{j.Dev}); err != nil {
		return err
	}
	return nodeconfig.ApplyShadow(config, j.NewRoot)
}

// overlay mounts a tmpfs upper layer over lower at NewRoot.
func (j *Job) overlay(lower string) error {
	rw := filepath.Join(j.RunDir, "rw")
	if err := j.mountAt("tmpfs", rw, "tmpfs", 0, "mode=0755"); err != nil {
		return err
	}
	for _, d := range []string{"upper", "work"} {
		if err := os.MkdirAll(filepath.Join(rw, d), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, rw, rw)
	return j.mountAt("overlay", j.NewRoot, "overlay", 0, opts)
}

func (j *Job) mountAt(source, target, fstype string, flags uintptr, data string) error {
	if source == "" {
		return fmt.Errorf("mount %s: no device", target)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	return j.Dev.Mount(source, target, fstype, flags, data)
}

// binder bind-mounts persisted config files through the device edge.
type binder struct{ dev device.Machine }

// Bind bind-mounts source on target.
func (b binder) Bind(source, target string) error {
	return b.dev.Mount(source, target, "", unix.MS_BIND, "")
}

// ramImage is where stateless keeps the image.
func (j *Job) ramImage() string { return filepath.Join(j.RunDir, "ram", image.RootfsName) }

// imageToRAM copies the verified root image into RAM for a stateless boot.
func (j *Job) imageToRAM(ctx context.Context, r *Reporter) error {
	dst := j.ramImage()
	if err := j.mountAt("tmpfs", filepath.Dir(dst), "tmpfs", 0, "mode=0700"); err != nil {
		return err
	}
	return j.Bundle.CopyFile(ctx, image.RootfsName, dst)
}

// bootStateless assembles a root from the image in RAM; config comes from the command
// line (and, for nodeinit.adminpw=bundle, the admin hash from the bundle: see seedStateless).
func (j *Job) bootStateless(ctx context.Context, r *Reporter) error {
	kmod.Load("loop") // not loaded at boot; a missing driver shows in loop.New's error
	l, err := loop.New(j.ramImage(), "squashfs", "")
	if err != nil {
		return fmt.Errorf("loop device for %s: %w", j.ramImage(), err)
	}
	lower := filepath.Join(j.RunDir, "lower")
	if err := j.mountAt(l.DevName(), lower, "squashfs", unix.MS_RDONLY, ""); err != nil {
		return err
	}
	if err := j.overlay(lower); err != nil {
		return err
	}
	config := filepath.Join(j.RunDir, "config")
	if err := j.mountAt("tmpfs", config, "tmpfs", 0, "mode=0755"); err != nil {
		return err
	}
	return j.seedStateless(config, r)
}

// seedStateless writes a stateless node's config into the directory config (a tmpfs)
// and lays it over the new root: the shadow fragments go into /etc/shadow. The admin
// password hash is the one in j.Params, which is adminpw= from the command line or, with
// nodeinit.adminpw=bundle, the hash the probe read from the bundle and checked against the
// signed manifest (Machine.Params); the second never was on the command line, which a
// stateless node keeps in /proc/cmdline for every process to read.
func (j *Job) seedStateless(config string, r *Reporter) error {
	c, err := j.nodeConfig()
	if err != nil {
		return err
	}
	if err := nodeconfig.Seed(config, c); err != nil {
		return err
	}
	r.Info("stateless: %d disks left untouched", len(j.Facts.Disks))
	if j.Params.Node.AdminPWFrom == cmdline.AdminPWBundle {
		r.Info("stateless: the admin password hash comes from the bundle's %s, not from the command line", image.AdminHashName)
	}
	return j.bindConfig(config)
}
