package plan

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/operr"
)

// App-data disks (disk/appdata.go has the layout). Every disk storage_init lists
// after the install disk becomes app-data disk N, N = 1, 2, … in the order
// listed: oVirt's further HostVG disks (after ',') and its AppVG disks (after
// ';') alike. The install and a reinstall that wipes write them after the
// install disk's own filesystems and before the root slot: until the ledger is
// written last, a power cut leaves an install that never finished, which the
// same command line redoes, and an app-data disk holds no boot state, so no
// state of it can make the install disk unbootable. The ledger then records
// each by its partitions' UUIDs, and a boot mounts only those.

// AppDataDisk is one app-data disk a plan writes: its layout, and where the
// node mounts its data partition.
type AppDataDisk struct {
	Index  int         `json:"index"`
	Target Target      `json:"target"`
	Layout disk.Layout `json:"layout"`
	Mount  string      `json:"mount"`
	// Keep is the partition kept as it is (node-app<Index> with
	// nodeinit.keep=data on a reinstall), or "".
	Keep string `json:"keep,omitempty"`
}

// AppDataMount is the directory where the node finds app-data disk n.
func AppDataMount(n int) string { return "/data/app" + strconv.Itoa(n) }

// LayoutOf is the layout the plan writes on the disk named name: the install
// disk's or an app-data disk's; nil for a disk the plan partitions not.
func (p *Blueprint) LayoutOf(name string) *disk.Layout {
	if p.Target != nil && p.Target.Name == name && p.Layout != nil {
		return p.Layout
	}
	if a := p.AppDataOf(name); a != nil {
		return &a.Layout
	}
	return nil
}

// AppDataOf is the app-data disk the plan writes on the disk named name, or nil.
func (p *Blueprint) AppDataOf(name string) *AppDataDisk {
	for i := range p.AppData {
		if p.AppData[i].Target.Name == name {
			return &p.AppData[i]
		}
	}
	return nil
}

// PartitionByUUID finds the partition whose PARTUUID is uuid on any disk, and
// its disk.
func (f *Facts) PartitionByUUID(uuid string) (*disk.Disk, *disk.Partition) {
	if uuid == "" {
		return nil, nil
	}
	for i := range f.Disks {
		d := &f.Disks[i]
		for k := range d.Partitions {
			if strings.EqualFold(d.Partitions[k].PartUUID, uuid) {
				return d, &d.Partitions[k]
			}
		}
	}
	return nil, nil
}

// appDisk is a disk the plan makes app-data disk n.
type appDisk struct {
	n int
	d *disk.Disk
}

// installAppDisks are the app-data disks of the install that are on this
// machine, found by the PARTUUIDs its ledger records, with their numbers; and
// a warning for each that is not here.
func installAppDisks(f *Facts) ([]appDisk, []string) {
	var out []appDisk
	var warn []string
	for _, ref := range f.Install.AppData {
		d, _ := f.PartitionByUUID(ref.DataPartUUID)
		if d == nil {
			warn = append(warn, fmt.Sprintf("app-data disk %d of the install (%s, PARTUUID %s) is not on this machine: it is left out", ref.Index, disk.AppDataLabel(ref.Index), ref.DataPartUUID))
			continue
		}
		out = append(out, appDisk{n: ref.Index, d: d})
	}
	return out, warn
}

// appPlan is what the app-data disks add to an install or a reinstall that wipes.
type appPlan struct {
	disks    []AppDataDisk
	steps    []Step
	destroys []string
	keeps    []string
	warnings []string
	wiped    []string // disks wiped, for lvsSpanningOut
}

// planAppData checks the app-data disks, each as the install disk is checked
// (consent for what is on it, in use, large enough, what nodeinit.keep=data
// keeps), lays each out and gives its steps: a wipe unless it is blank, the
// partition table, the filesystems.
func planAppData(p *cmdline.Params, f *Facts, apps []appDisk, consentAction string, keepData bool) (appPlan, error) {
	var out appPlan
	var vols map[string]int64
	if p.StorageVol != nil {
		vols = p.StorageVol.SizesMiB
	}
	if len(apps) == 0 {
		for _, v := range []string{cmdline.VolSwap2, cmdline.VolData2} {
			if _, ok := vols[v]; ok {
				out.warnings = append(out.warnings, "storage_vol gives Swap2 or Data2, which size app-data disks, and storage_init lists none (only one disk): they are not used")
				break
			}
		}
		return out, nil
	}
	var notices []string
	for _, a := range apps {
		d, n := a.d, a.n
		if why := inUse(d); why != "" {
			return out, refuse("unmount or stop what uses it (or boot the install medium), or leave the disk out of storage_init",
				"app-data disk %d: %s cannot be written: %s", n, d.Path, why)
		}
		if err := disk.CheckConsent(*d, consentAction, p.Node.Wipe); err != nil {
			return out, fmt.Errorf("app-data disk %d: %w", n, err)
		}
		l, err := disk.PlanAppDataLayout(d.SizeBytes, d.LogicalSectorSize, n, vols)
		if err != nil {
			return out, fmt.Errorf("layout for app-data disk %d (%s): %w", n, d.Path, err)
		}
		notices = append(notices, l.Notices...)
		l.Notices = nil
		keep := ""
		if keepData {
			switch have := disk.AppDataIndexOf(*d); {
			case have == n:
				if err := l.KeepInPlace(disk.AppDataLabel(n), d.Partitions); err != nil {
					return out, fmt.Errorf("nodeinit.keep=data on %s (app-data disk %d): %w", d.Path, n, err)
				}
				keep = disk.AppDataLabel(n)
			case have > 0:
				return out, &operr.Error{
					What: fmt.Sprintf("nodeinit.keep=data: %s holds %s but storage_init lists it as app-data disk %d", d.Path, disk.AppDataLabel(have), n),
					Why:  "keeping it would move its files to " + AppDataMount(n),
					Fix:  fmt.Sprintf("list the app-data disks in the order of the install (%s as disk %d), or drop nodeinit.keep", d.Path, have),
				}
			}
		}
		t := targetOf(d)
		out.disks = append(out.disks, AppDataDisk{Index: n, Target: t, Layout: l, Mount: AppDataMount(n), Keep: keep})
		what := fmt.Sprintf("app-data disk %d", n)
		switch {
		case keep != "":
			// No wipe: the new table is written over the old one, which
			// holds only our partitions, so through any cut one of the two
			// still names the kept partition and a re-run keeps it again.
			// (After a wipe, a cut before the new table would leave the files
			// on a disk that looks new.)
			if _, ok := l.Find(disk.LabelSwap2); ok {
				out.destroys = append(out.destroys, fmt.Sprintf("%s (%s): %s (made anew)", d.Path, what, disk.LabelSwap2))
			}
			out.keeps = append(out.keeps, fmt.Sprintf("%s (%s): %s partition and its files, on %s; its partition table is written again in place, without a wipe", d.Path, what, keep, AppDataMount(n)))
		case d.Content != disk.ContentBlank:
			out.destroys = append(out.destroys, fmt.Sprintf("%s (%s): %s", d.Path, what, describeContent(d)))
			out.steps = append(out.steps, wipeStep(p, d.Name, "",
				fmt.Sprintf("remove every signature and partition table on %s, %s", d.Path, what), d.Path))
			out.wiped = append(out.wiped, d.Path)
		}
		var parts, made, touches []string
		for _, ps := range l.Partitions {
			parts = append(parts, fmt.Sprintf("%s %dMiB", ps.Name, ps.Size>>20))
			dev := disk.PartitionPath(d.Path, ps.Number)
			if ps.Name == keep {
				made = append(made, ps.Name+" kept as it is")
				continue
			}
			made = append(made, fmt.Sprintf("%s on %s", fsName(ps.FS), ps.Name))
			touches = append(touches, dev)
		}
		out.steps = append(out.steps,
			step(Partition{Disk: d.Name},
				fmt.Sprintf("write a GPT (%d-byte sectors) on %s, %s: %s", d.LogicalSectorSize, d.Path, what, strings.Join(parts, ", ")), d.Path),
			step(Filesystems{Disk: d.Name, Keep: keep},
				fmt.Sprintf("make %s (%s, %s); the node mounts %s on %s", strings.Join(made, ", "), d.Path, what, disk.AppDataLabel(n), AppDataMount(n)), touches...))
	}
	for _, nt := range disk.Dedup(notices) {
		out.warnings = append(out.warnings, "app-data disks: "+nt)
	}
	return out, nil
}

// appDataDiffers says why the app-data disks a reinstall lists are not the
// install's as they are, so a reinstall in place, which leaves them
// untouched, would not do what the command line says; "" when they are.
func appDataDiffers(f *Facts, apps []AppDataDisk) string {
	recorded := slices.Clone(f.Install.AppData)
	slices.SortFunc(recorded, func(a, b AppDataRef) int { return a.Index - b.Index })
	if len(recorded) != len(apps) {
		return fmt.Sprintf("storage_init lists %d app-data disks and the install has %d", len(apps), len(recorded))
	}
	for i, a := range apps {
		rec := recorded[i]
		d, _ := f.Disk(a.Target.Name)
		if d == nil || rec.Index != a.Index || !slices.ContainsFunc(d.Partitions, func(p disk.Partition) bool { return strings.EqualFold(p.PartUUID, rec.DataPartUUID) }) {
			return fmt.Sprintf("%s is not the install's app-data disk %d", a.Target.Path, a.Index)
		}
		if diff := a.Layout.Compare(d.Partitions); !diff.Matches() {
			return fmt.Sprintf("the new layout of app-data disk %d differs from %s's partition table (%s)", a.Index, d.Path, strings.ReplaceAll(diff.String(), "\n", "; "))
		}
	}
	return ""
}

// unlistedAppData warns about the install's app-data disks that a reinstall
// writing a new ledger leaves out: they keep their files, but the new
// install does not mount them.
func unlistedAppData(f *Facts, apps []appDisk) []string {
	if f.Install == nil || f.Install.OVirt {
		return nil
	}
	have, _ := installAppDisks(f)
	var warn []string
	for _, h := range have {
		if !slices.ContainsFunc(apps, func(a appDisk) bool { return a.d.Name == h.d.Name }) {
			warn = append(warn, fmt.Sprintf("%s holds app-data disk %d of the install and storage_init does not list it: it is left as it is, and the new install does not mount it", h.d.Path, h.n))
		}
	}
	return warn
}

// appDataKeeps says, for a plan that leaves the install's app-data disks
// alone, that they are kept and still mounted.
func appDataKeeps(apps []appDisk) []string {
	var out []string
	for _, a := range apps {
		out = append(out, fmt.Sprintf("%s: app-data disk %d (%s on %s), untouched", a.d.Path, a.n, disk.AppDataLabel(a.n), AppDataMount(a.n)))
	}
	return out
}

// appDataMountText says which app-data disks a boot mounts.
func appDataMountText(refs []AppDataRef) (string, []string) {
	if len(refs) == 0 {
		return "", nil
	}
	var dirs, labels []string
	for _, r := range refs {
		dirs = append(dirs, AppDataMount(r.Index))
		labels = append(labels, disk.AppDataLabel(r.Index))
	}
	return fmt.Sprintf("; the app-data disks the ledger lists by PARTUUID on %s (one that is missing is reported and the boot goes on)", strings.Join(dirs, ", ")), labels
}

// ledgerAppText says that the install's ledger records the app-data disks.
func ledgerAppText(apps []AppDataDisk) string {
	if len(apps) == 0 {
		return ""
	}
	return ", with the PARTUUIDs of the app-data disks' partitions (the only ones a boot mounts)"
}
