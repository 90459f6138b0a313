package stages

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/plan"
)

// ActionLoaderTrialFailed is the ledger action of a slot whose new boot
// loader the firmware did not start.
const ActionLoaderTrialFailed = "loader-trial-failed"

// stageLoaderTrial puts the bundle's loader on the ESP for slot's trial when
// it differs from the loader the firmware starts (see boot's loader trials),
// and records it in the ledger; the boot-order step then points BootNext at it.
func (j *Job) stageLoaderTrial(esp boot.FS, l *boot.Ledger, slot string, r *Reporter) error {
	src, ok := j.fetched[image.LoaderName]
	if !ok {
		return fmt.Errorf("stage the new loader: %s was not fetched", image.LoaderName)
	}
	p, err := boot.StageTrialLoader(esp, l, src)
	if err != nil {
		return err
	}
	rec := l.Slot(slot)
	rec.LoaderTrial, rec.Loader = p, ""
	if p == "" {
		r.Info("the bundle's boot loader is the one the firmware starts: no loader trial")
	} else {
		r.Info("new boot loader staged at %s: slot %s's first boot must come through it", p, slot)
	}
	return nil
}

// espLocation is where the disk's ESP sits, for EFI boot entries.
func (j *Job) espLocation(d *disk.Disk) (boot.ESPLocation, error) {
	_, dev, err := j.diskOf(d.Name)
	if err != nil {
		return boot.ESPLocation{}, err
	}
	var parts []disk.Partition
	if err := j.withReadOnlyBlock(dev, d.LogicalSectorSize, func(b device.Block) (err error) {
		parts, err = diskio.ReadGPTOf(b)
		return err
	}); err != nil {
		return boot.ESPLocation{}, err
	}
	for _, p := range parts {
		if p.PartLabel != disk.LabelESP {
			continue
		}
		guid, err := uuid.Parse(p.PartUUID)
		if err != nil {
			return boot.ESPLocation{}, fmt.Errorf("ESP partition GUID %q: %w", p.PartUUID, err)
		}
		ss := int64(d.LogicalSectorSize)
		return boot.ESPLocation{PartNumber: uint32(p.Number), StartLBA: uint64(p.StartByte / ss),
			SizeLBA: uint64(p.SizeBytes / ss), PartGUID: guid}, nil
	}
	return boot.ESPLocation{}, fmt.Errorf("%s: no %s partition in the GPT", d.Path, disk.LabelESP)
}

// judgeLoaderTrial runs on a boot of slot whose upgrade staged a new loader
// (LoaderTrial in the ledger). systemd-boot's LoaderImageIdentifier says which
// image the firmware started: the trial loader confirms it; anything else
// means the firmware could not start the new loader and fell back to the old
// one, so slot is marked bad, its entry goes, the config the other slot
// expects is restored, and it returns the reason: the caller reboots into the
// other slot instead of switching root. judged says the ledger changed (a
// verdict either way); a slot with no trial returns "", false.
func (j *Job) judgeLoaderTrial(esp boot.FS, l *boot.Ledger, config, slot string, r *Reporter) (reason string, judged bool, err error) {
	rec := l.Slots[slot]
	if rec == nil || rec.LoaderTrial == "" {
		return "", false, nil
	}
	booted := ""
	v, err := j.Dev.EFIVars()
	if err == nil {
		booted, err = boot.BootedLoader(v)
	}
	if err != nil && !errors.Is(err, device.ErrUnsupported) {
		return "", false, err
	}
	if boot.SameLoaderPath(booted, rec.LoaderTrial) {
		rec.Loader, rec.LoaderTrial = rec.LoaderTrial, ""
		l.RecordAction(j.now(), "loader-trial", slot, "the firmware started the new loader "+rec.Loader)
		r.Info("loader trial: the firmware started slot %s's new loader %s", slot, rec.Loader)
		return "", true, nil
	}
	if booted == "" {
		booted = "an image that did not say (no LoaderImageIdentifier)"
	}
	other := plan.OtherSlot(slot)
	reason = fmt.Sprintf("slot %s's new boot loader %s did not start: the firmware started %s instead", slot, rec.LoaderTrial, booted)
	if err := l.RecordRollback(j.now(), boot.Rollback{From: slot, To: other, Reason: reason}); err != nil {
		return "", false, err
	}
	if err := l.RecordSlot(j.now(), slot, boot.SlotBad, "", ""); err != nil {
		return "", false, err
	}
	rec.LoaderTrial = ""
	if err := l.SetActive(other); err != nil {
		return "", false, err
	}
	l.RecordAction(j.now(), ActionLoaderTrialFailed, slot, reason)
	if err := boot.RemoveSlotEntry(esp, slot); err != nil {
		return "", false, err
	}
	if v != nil {
		if err := boot.RemoveTrialBootEntries(v); err != nil {
			return "", false, err
		}
	}
	r.Info("ROLLBACK from slot %s to slot %s: %s", slot, other, reason)
	if err := restoreSnapshot(config, l, other, r); err != nil {
		return "", false, err
	}
	return reason, true, nil
}

// promoteLoader makes the firmware's "nodeinit" entry start the loader slot's
// trial confirmed, once slot is blessed.
func (j *Job) promoteLoader(d *disk.Disk, l *boot.Ledger, slot string, r *Reporter) error {
	rec := l.Slots[slot]
	if rec == nil || rec.Loader == "" || boot.SameLoaderPath(rec.Loader, l.DefaultLoader()) {
		return nil
	}
	v, err := j.Dev.EFIVars()
	if err != nil {
		return err
	}
	loc, err := j.espLocation(d)
	if err != nil {
		return err
	}
	n, err := boot.PromoteLoader(v, loc, l, rec.Loader)
	if err != nil {
		return err
	}
	l.RecordAction(j.now(), "loader-promoted", slot, fmt.Sprintf("Boot%04X starts %s", n, rec.Loader))
	r.Info("slot %s is blessed: Boot%04X now starts its loader %s", slot, n, rec.Loader)
	return nil
}

// RebootReason is why this boot reboots into the other slot instead of
// switching root into the node (a failed loader trial), or "".
func (j *Job) RebootReason() string { return j.rebootReason }
