package rescue

import (
	"fmt"
	"os"
	"strings"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
)

func init() { register("blkid", "[DEVICE | IMAGE-FILE...]", blkid) }

// blkid prints what probing finds on each block device (from sysfs, as there is no udev) and
// each partition, or on the named devices and image files: LABEL, UUID, TYPE, PTTYPE,
// PARTLABEL and PARTUUID, as blkid names them. The probing is disk.Probe's, in pure Go.
func blkid(c *call, args []string) error {
	names, err := c.operands(args)
	if err != nil {
		return err
	}
	var devices []blkEntry
	if needsDiscovery(names) {
		disks, err := diskio.Discover(diskio.Root{Dir: "/"})
		if err != nil {
			return err
		}
		devices = blkEntries(disks)
	}
	if len(names) == 0 {
		for _, e := range devices {
			if e.known() {
				fmt.Fprintln(c.stdout, e)
			}
		}
		return nil
	}
	found := true
	for _, name := range names {
		e, err := blkFind(devices, name)
		if err != nil {
			return err
		}
		if !e.known() {
			found = false // blkid's status 2: nothing recognised
			continue
		}
		fmt.Fprintln(c.stdout, e)
	}
	if !found {
		return exitStatus(2)
	}
	return nil
}

// blkEntry is one line of blkid's output.
type blkEntry struct {
	path, label, uuid, typ, ptType, partLabel, partUUID string
}

// known tells whether probing or the partition table said anything about the device.
func (e blkEntry) known() bool { return e.typ != "" || e.ptType != "" || e.partUUID != "" }

func (e blkEntry) String() string {
	s := e.path + ":"
	for _, kv := range [][2]string{{"LABEL", e.label}, {"UUID", e.uuid}, {"TYPE", e.typ}, {"PTTYPE", e.ptType},
		{"PARTLABEL", e.partLabel}, {"PARTUUID", e.partUUID}} {
		if kv[1] != "" {
			s += fmt.Sprintf(" %s=%q", kv[0], kv[1])
		}
	}
	return s
}

// needsDiscovery tells whether some name is not a regular file, so a device to find in sysfs.
func needsDiscovery(names []string) bool {
	for _, n := range names {
		if st, err := os.Stat(n); err != nil || !st.Mode().IsRegular() {
			return true
		}
	}
	return len(names) == 0
}

// blkEntries are the disks and their partitions, in discovery's order.
func blkEntries(disks []disk.Disk) []blkEntry {
	var out []blkEntry
	for _, d := range disks {
		out = append(out, sigEntry(d.Path, d.Signatures))
		for _, p := range d.Partitions {
			out = append(out, blkEntry{path: p.Path, label: p.FSLabel, uuid: p.FSUUID, typ: p.FSType,
				partLabel: p.PartLabel, partUUID: p.PartUUID})
		}
	}
	return out
}

// sigEntry is the entry for a whole device: its partition table and the first filesystem
// (or volume) found on the device itself.
func sigEntry(path string, sigs []disk.Signature) blkEntry {
	e := blkEntry{path: path}
	for _, s := range sigs {
		switch {
		case s.Where != "disk" || s.Type == disk.SigData:
		case s.Type == disk.SigGPT || s.Type == disk.SigDOS || s.Type == disk.SigPMBR:
			if e.ptType == "" {
				e.ptType = s.Type
			}
		case e.typ == "":
			e.typ, e.label, e.uuid = s.Type, s.Label, s.UUID
		}
	}
	return e
}

// blkFind is the entry for a device name (/dev/sda1 or sda1) or, probed here, an image file.
func blkFind(devices []blkEntry, name string) (blkEntry, error) {
	if st, err := os.Stat(name); err == nil && st.Mode().IsRegular() {
		f, err := os.Open(name)
		if err != nil {
			return blkEntry{}, err
		}
		defer f.Close()
		sigs, err := disk.Probe(f, st.Size(), 512)
		if err != nil {
			return blkEntry{}, fmt.Errorf("%s: %w", name, err)
		}
		return sigEntry(name, sigs), nil
	}
	for _, e := range devices {
		if e.path == "/dev/"+strings.TrimPrefix(name, "/dev/") {
			return e, nil
		}
	}
	return blkEntry{}, fmt.Errorf("%s: not a block device in /sys/block", name)
}
