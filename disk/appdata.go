package disk

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nodeinit/nodeinit/operr"
)

// App-data disks. oVirt Node spread its HostVG volume group over every disk
// storage_init listed before ';', and put the AppVG (Swap2, Data2) on the
// disks after it. nodeinit has no volume manager: the initramfs carries no
// LVM or md, and the crash-safety argument rests on plain GPT and ext4. So
// the first disk of the list is the install disk, with the whole node layout
// (PlanLayout), and every other listed disk, after ',' or after ';', is an
// app-data disk of its own:
//
//	partition 1  node-swap2      swap, storage_vol Swap2 MiB (default 0: none)
//	partition 2  node-app<N>     ext4 labelled node-app<N>, storage_vol Data2 MiB
//	                             (default -1: the rest of the disk), at least 1024 MiB
//
// N is 1, 2, … in the order the disks are listed, and the node mounts the
// data partition of app-data disk N on /data/app<N>. As on the install disk,
// partition numbers are fixed per volume (a Swap2 of 0 leaves partition 1
// out), and a Data2 that does not fill the disk leaves the rest unpartitioned.
// The types are the DPS swap type and generic Linux data, as for node-swap and
// node-data.

// LabelSwap2 is the GPT name and swap label of an app-data disk's swap partition.
const LabelSwap2 = "node-swap2"

// appDataPrefix starts the GPT name of an app-data disk's data partition.
const appDataPrefix = "node-app"

// AppDataLabel is the GPT name and ext4 label of app-data disk n (1, 2, …).
func AppDataLabel(n int) string { return appDataPrefix + strconv.Itoa(n) }

// AppDataIndex is n of an app-data partition name node-app<n>, or 0 when
// label is not one.
func AppDataIndex(label string) int {
	digits, ok := strings.CutPrefix(label, appDataPrefix)
	if !ok || digits == "" || digits[0] == '0' {
		return 0
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 1 {
		return 0
	}
	return n
}

// AppDataIndexOf is the n of the node-app<n> partition on d, or 0 when d has
// none. A disk with several (which nodeinit never writes) gives the first.
func AppDataIndexOf(d Disk) int {
	for _, p := range d.Partitions {
		if n := AppDataIndex(p.PartLabel); n > 0 {
			return n
		}
	}
	return 0
}

// appDataTable lists the volumes of app-data disk n in disk order.
func appDataTable(n int) []volume {
	return []volume{
		{name: "swap2", minMiB: 16, canSkip: true, parts: []PartSpec{{Number: 1, Name: LabelSwap2, TypeGUID: TypeSwap, FS: FSSwap}}},
		{name: "data2", minMiB: 1024, parts: []PartSpec{{Number: 2, Name: AppDataLabel(n), TypeGUID: TypeLinuxData, FS: FSExt4}}},
	}
}

// appDataDefaults are the sizes of an app-data disk's volumes that storage_vol
// does not give: no swap, data the rest.
var appDataDefaults = map[string]int64{"swap2": 0, "data2": -1}

// appDataVols is the part of storage_vol that sizes the app-data disks.
func appDataVols(vols map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range vols {
		if n := strings.ToLower(k); n == "swap2" || n == "data2" {
			out[n] = v
		}
	}
	return out
}

// PlanAppDataLayout computes the partition table of app-data disk n (1, 2, …)
// of diskSize bytes with the given logical sector size: node-swap2 of Swap2
// MiB and node-app<n> of Data2 MiB, from vols (storage_vol sizes as PlanLayout
// takes them; only swap2 and data2 are read). A size below a volume's minimum
// is rounded up, with a notice. A disk smaller than MinAppDataDiskBytes is
// refused with an error that wraps ErrDiskTooSmall and an *operr.Error saying
// the minimum. It does no I/O.
func PlanAppDataLayout(diskSize int64, sectorSize int, n int, vols map[string]int64) (Layout, error) {
	if err := checkGeometry(diskSize, sectorSize); err != nil {
		return Layout{}, err
	}
	if n < 1 {
		return Layout{}, fmt.Errorf("plan app-data layout: disk number %d: app-data disks are numbered from 1", n)
	}
	table := appDataTable(n)
	s, err := sizeVolumes(table, appDataVols(vols), appDataDefaults)
	if err != nil {
		return Layout{}, err
	}
	if diskMiB := diskSize / MiB; s.needMiB > diskMiB {
		return Layout{}, fmt.Errorf("plan app-data layout: %w: %w", ErrDiskTooSmall, &operr.Error{
			What: fmt.Sprintf("the disk is %d MiB and an app-data disk needs at least %d MiB (%d MiB short)", diskMiB, s.needMiB, s.needMiB-diskMiB),
			Why:  fmt.Sprintf("%s, and %d MiB for the partition tables", describeSizes(table, s), tableMiB),
			Fix:  fmt.Sprintf("use a disk of at least %d MiB, or give smaller Swap2 and Data2 sizes in storage_vol (Swap2 may be 0)", s.needMiB),
		})
	}
	return assemble(table, s, diskSize, sectorSize, s.needMiB), nil
}

// MinAppDataDiskBytes is the size of the smallest disk with the given logical
// sector size on which PlanAppDataLayout plans vols: any smaller disk is
// refused. The error is PlanAppDataLayout's for sizes no disk could take.
func MinAppDataDiskBytes(sectorSize int, vols map[string]int64) (int64, error) {
	if err := checkGeometry(int64(sectorSize), sectorSize); err != nil {
		return 0, err
	}
	s, err := sizeVolumes(appDataTable(1), appDataVols(vols), appDataDefaults)
	return s.needMiB * MiB, err
}

// isAppData reports whether every partition of d is an app-data disk's
// (node-swap2, node-app<n>, at least one of the latter) and nothing but the
// partition table and the filesystems inside those partitions is on it.
func isAppData(d *Disk) bool {
	if len(d.Partitions) == 0 {
		return false
	}
	data := false
	for _, p := range d.Partitions {
		switch {
		case AppDataIndex(p.PartLabel) > 0:
			data = true
		case p.PartLabel != LabelSwap2:
			return false
		}
	}
	for _, s := range d.Signatures {
		switch s.Type {
		case SigGPT, SigPMBR:
		case SigExt4, SigSwap:
			if s.Where == "" || s.Where == "disk" {
				return false
			}
		default:
			return false
		}
	}
	return data
}
