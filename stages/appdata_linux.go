package stages

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/plan"
)

// recordAppData keeps the PARTUUIDs of app-data disk app, read back from the
// GPT the partition step just wrote on d, for the ledger add-boot-entry writes.
func (j *Job) recordAppData(d *disk.Disk, app plan.AppDataDisk, parts []disk.Partition, r *Reporter) error {
	rec := boot.AppDataRecord{Index: app.Index, Disk: d.Serial}
	if rec.Disk == "" {
		rec.Disk = d.Path
	}
	for _, p := range parts {
		switch p.PartLabel {
		case disk.AppDataLabel(app.Index):
			rec.DataPartUUID = strings.ToLower(p.PartUUID)
		case disk.LabelSwap2:
			rec.SwapPartUUID = strings.ToLower(p.PartUUID)
		}
	}
	if rec.DataPartUUID == "" {
		return fmt.Errorf("app-data disk %d: the GPT written on %s has no %s partition", app.Index, d.Path, disk.AppDataLabel(app.Index))
	}
	if j.appData == nil {
		j.appData = map[int]boot.AppDataRecord{}
	}
	j.appData[app.Index] = rec
	r.Info("app-data disk %d on %s: %s PARTUUID %s", app.Index, d.Path, disk.AppDataLabel(app.Index), rec.DataPartUUID)
	return nil
}

// appDataRecords are the plan's app-data disks for the ledger, in order. Each
// was partitioned by this job (a reinstall keeping data writes a new table
// around the kept partition too), so a disk without a record is a bug.
func (j *Job) appDataRecords() ([]boot.AppDataRecord, error) {
	var out []boot.AppDataRecord
	for _, a := range j.Plan.AppData {
		rec, ok := j.appData[a.Index]
		if !ok {
			return nil, fmt.Errorf("app-data disk %d (%s) was not partitioned by this run", a.Index, a.Target.Path)
		}
		out = append(out, rec)
	}
	return out, nil
}

// mountAppData mounts the data partition of each app-data disk the ledger
// records on the new root's /data/app<N>, found by its PARTUUID among the
// probed disks and only there. A disk that is missing, or whose partition
// does not mount, is reported and the boot goes on: app-data disks hold no
// boot state. The swap partitions are left to the node OS, as node-swap is.
func (j *Job) mountAppData(refs []plan.AppDataRef, r *Reporter) {
	for _, ref := range refs {
		label, dir := disk.AppDataLabel(ref.Index), plan.AppDataMount(ref.Index)
		d, p := j.Facts.PartitionByUUID(ref.DataPartUUID)
		switch {
		case p == nil:
			r.Info("app-data disk %d is missing: no partition has PARTUUID %s (%s); %s is not mounted, the boot goes on", ref.Index, ref.DataPartUUID, label, dir)
			continue
		case p.PartLabel != label:
			r.Info("app-data disk %d: the partition with PARTUUID %s on %s is named %q, not %s; %s is not mounted, the boot goes on", ref.Index, ref.DataPartUUID, d.Path, p.PartLabel, label, dir)
			continue
		}
		dev := filepath.Join(j.DevDir, p.Name)
		if err := j.mountAt(dev, filepath.Join(j.NewRoot, dir), "ext4", 0, ""); err != nil {
			r.Info("app-data disk %d: mount %s (%s) on %s: %v; the boot goes on without it", ref.Index, dev, label, dir, err)
			continue
		}
		swap := ""
		if ref.SwapPartUUID != "" {
			if _, sp := j.Facts.PartitionByUUID(ref.SwapPartUUID); sp != nil && sp.PartLabel == disk.LabelSwap2 {
				swap = fmt.Sprintf("; swap %s (%s) for the node OS", filepath.Join(j.DevDir, sp.Name), disk.LabelSwap2)
			}
		}
		r.Info("app-data disk %d: %s (%s) mounted on %s%s", ref.Index, dev, label, dir, swap)
	}
}
