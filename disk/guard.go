package disk

import (
	"fmt"
	"strings"

	"github.com/nodeinit/nodeinit/operr"
)

// OurPartLabels are the GPT partition names of a nodeinit install.
var OurPartLabels = []string{"NODE-ESP", "node-root-a", "node-root-b", "node-config", "node-logging", "node-swap", "node-data"}

// oVirtVG is the volume group of an old oVirt Node install.
const oVirtVG = "HostVG"

// Classify sets d.Content from d.Partitions and d.Signatures:
//   - ours: a partition named node-root-a or node-root-b (the ledger on the
//     ESP gives the version; the caller fills InstalledVersion);
//   - ovirt: partitions labelled Root and RootBackup (GPT name or filesystem
//     label), or an LVM physical volume of the HostVG volume group;
//   - app-data: a nodeinit app-data disk, whose only partitions are
//     node-app<N> and node-swap2 and whose only signatures are the table and
//     the filesystems in them (see isAppData);
//   - blank: no signature at all, or only a partition table without partitions;
//   - foreign: anything else, and any disk whose bytes could not be read.
func Classify(d *Disk) {
	d.Content = classify(d)
}

func classify(d *Disk) ContentClass {
	if d.ProbeError != "" {
		return ContentForeign
	}
	labels := map[string]bool{}
	for _, p := range d.Partitions {
		labels[p.PartLabel] = true
		labels[p.FSLabel] = true
	}
	for _, s := range d.Signatures {
		labels[s.Label] = labels[s.Label] || s.Type != SigLVM
	}
	if labels["node-root-a"] || labels["node-root-b"] {
		return ContentOurs
	}
	if labels["Root"] && labels["RootBackup"] {
		return ContentOVirt
	}
	for _, s := range d.Signatures {
		if s.Type == SigLVM && s.Label == oVirtVG {
			return ContentOVirt
		}
	}
	if isAppData(d) {
		return ContentAppData
	}
	for _, s := range d.Signatures {
		switch s.Type {
		case SigGPT, SigPMBR, SigDOS:
			if len(d.Partitions) > 0 {
				return ContentForeign
			}
		default:
			return ContentForeign
		}
	}
	if len(d.Partitions) > 0 {
		return ContentForeign // partitions the kernel knows, whatever the bytes said
	}
	return ContentBlank
}

// ConsentError is a refusal to write a disk for lack of consent. Arg is the
// exact kernel argument that gives it.
type ConsentError struct {
	Disk   string // /dev path
	Found  string // what is on the disk, for the operator
	Reason string
	Hint   string // how to fix it, in words
	Arg    string // the kernel argument to add
}

// Error says what was found; the fix and the argument are the failure screen's.
func (e *ConsentError) Error() string {
	return fmt.Sprintf("%s (found %s)", e.Reason, e.Found)
}

// Unwrap gives the operator error the failure screen shows.
func (e *ConsentError) Unwrap() error {
	return &operr.Error{What: e.Reason, Why: "found " + e.Found, Fix: e.Hint, Arg: e.Arg}
}

// CheckConsent applies DESIGN.md's consent rules before anything is written
// to d for action (an action name: install, reinstall, uninstall, upgrade,
// or the oVirt tokens firstboot/ovirt_firstboot):
//   - a blank disk may always be written;
//   - our own install, our app-data disk and an old oVirt Node install may be
//     replaced by reinstall, uninstall, firstboot or ovirt_firstboot; plain
//     install over them refuses (the caller boots an install holding the same
//     image, or redoes an install that never finished as a reinstall);
//   - foreign content is only erased with nodeinit.wipe=<the disk's serial or
//     WWN>; a by-id name also names the disk, and a disk without any of these
//     is named by its /dev path.
//
// Consent that names the disk is enough for every case.
func CheckConsent(d Disk, action string, wipeConsent []string) error {
	if consentNames(d, wipeConsent) {
		return nil
	}
	found := DescribeContent(d)
	switch d.Content {
	case ContentBlank:
		return nil
	case ContentOurs, ContentOVirt, ContentAppData:
		switch strings.ToLower(action) {
		case "reinstall", "uninstall", "firstboot", "ovirt_firstboot", "ovirt-firstboot":
			return nil
		}
		what, replaced, keep := "a nodeinit install", "an install", ""
		switch d.Content {
		case ContentOVirt:
			what = "an old oVirt Node install"
		case ContentAppData:
			what, replaced, keep = "a nodeinit app-data disk", "its data", " (nodeinit.keep=data keeps its files)"
		}
		return &ConsentError{Disk: d.Path, Found: found,
			Reason: fmt.Sprintf("%s holds %s and %s does not replace %s", d.Path, what, action, replaced),
			Hint:   "add 'reinstall' to replace it" + keep + ", or " + WipeArgument(d) + " to erase the disk", Arg: "reinstall"}
	}
	reason := fmt.Sprintf("%s holds data nodeinit did not write", d.Path)
	if d.ProbeError != "" {
		reason = fmt.Sprintf("%s could not be read to check what it holds (%s)", d.Path, d.ProbeError)
	}
	hint := "add " + WipeArgument(d) + " to the command line to erase it, or name another disk in storage_init"
	if len(wipeConsent) > 0 {
		hint = fmt.Sprintf("nodeinit.wipe=%s does not name this disk; %s", strings.Join(wipeConsent, ","), hint)
	}
	return &ConsentError{Disk: d.Path, Found: found, Reason: reason, Hint: hint, Arg: WipeArgument(d)}
}

// WipeArgument is the nodeinit.wipe= argument that gives consent to erase d:
// its serial, else its WWN, else its first by-id name, else its path.
func WipeArgument(d Disk) string {
	switch {
	case d.Serial != "" && strings.ContainsAny(d.Serial, " \t"):
		return `nodeinit.wipe="` + d.Serial + `"`
	case d.Serial != "":
		return "nodeinit.wipe=" + d.Serial
	case d.WWN != "":
		return "nodeinit.wipe=" + d.WWN
	case len(d.ByID) > 0:
		return "nodeinit.wipe=" + d.ByID[0]
	}
	return "nodeinit.wipe=" + d.Path
}

// consentNames reports whether one of the consent values names d. Serials
// compare exactly (case-insensitively); WWNs with or without 0x; by-id names
// exactly. The /dev path, which is not stable, counts only for a disk with
// no serial, WWN or by-id name.
func consentNames(d Disk, consent []string) bool {
	for _, c := range consent {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if d.Serial != "" && strings.EqualFold(c, d.Serial) {
			return true
		}
		if d.WWN != "" && sameWWN(c, d.WWN) {
			return true
		}
		for _, id := range d.ByID {
			if c == id || c == "/dev/disk/by-id/"+id {
				return true
			}
		}
		if d.Serial == "" && d.WWN == "" && len(d.ByID) == 0 && c == d.Path {
			return true
		}
	}
	return false
}

func sameWWN(a, b string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.TrimSpace(s))
		s = strings.TrimPrefix(s, "wwn-")
		s = strings.TrimPrefix(s, "naa.")
		return strings.TrimPrefix(s, "0x")
	}
	return norm(a) != "" && norm(a) == norm(b)
}

// DescribeContent says what was found on d, for the operator, e.g.
// "ext4 filesystem labelled 'data' on nvme0n1p1, gpt partition table".
func DescribeContent(d Disk) string {
	if d.ProbeError != "" {
		return "unreadable content"
	}
	var parts []string
	seen := map[string]bool{}
	for _, s := range d.Signatures {
		var x string
		switch s.Type {
		case SigPMBR:
			continue
		case SigGPT, SigDOS:
			x = fmt.Sprintf("%s partition table", s.Type)
			if n := len(d.Partitions); n > 0 {
				x += fmt.Sprintf(" with %d partitions", n)
			}
		case SigLVM:
			x = "LVM physical volume"
			if s.Label != "" {
				x += " of volume group " + s.Label
			}
		case SigMD:
			x = "md RAID member"
		case SigLUKS:
			x = "LUKS encrypted volume"
		case SigSwap:
			x = "swap area"
		default:
			x = s.Type + " filesystem"
		}
		if s.Label != "" && s.Type != SigLVM {
			x += fmt.Sprintf(" labelled '%s'", s.Label)
		}
		if s.Where != "" && s.Where != "disk" {
			x += " on " + s.Where
		}
		if !seen[x] {
			seen[x] = true
			parts = append(parts, x)
		}
	}
	if len(parts) == 0 {
		if len(d.Partitions) > 0 {
			return fmt.Sprintf("%d partitions", len(d.Partitions))
		}
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
