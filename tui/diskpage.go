package tui

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nodeinit/nodeinit/disk"
)

// The disk page lists every disk with its identity and content. The install
// disk is chosen with Enter, further disks become app-data disks (oVirt's
// HostVG and AppVG disks, which storage_init lists after the first) with
// Space. A disk that can never be a target is greyed with the reason, and a
// disk holding foreign content is erased only when its serial is typed: the
// consent nodeinit.wipe=<serial> gives on the command line.

// unattached is a loop device with no backing file: the kernel makes eight
// of them, and the page does not list them.
func unattached(d disk.Disk) bool { return d.Transport == "loop" && d.SizeBytes == 0 }

func (s *State) diskItems() []item {
	var it []item
	for _, d := range s.Facts.Disks {
		if !unattached(d) && s.unusable(d) == "" {
			it = append(it, item{id: "disk:" + d.Name})
		}
	}
	for _, name := range s.chosen() {
		if d, ok := s.Facts.Disk(name); ok && d.Content == disk.ContentForeign {
			it = append(it, item{id: "consent:" + name, field: s.field("consent:" + name)})
		}
	}
	return it
}

// minInstall is the smallest install disk for the layout asked so far.
func (s *State) minInstall(d disk.Disk) int64 { return s.minimum(d, disk.MinDiskBytes) }

// minAppData is the smallest app-data disk for the layout asked so far.
func (s *State) minAppData(d disk.Disk) int64 { return s.minimum(d, disk.MinAppDataDiskBytes) }

// minimum is min's size for d's sectors and the sizes typed (the defaults
// while they do not parse).
func (s *State) minimum(d disk.Disk, min func(int, map[string]int64) (int64, error)) int64 {
	vols, _ := s.vols()
	n, err := min(d.LogicalSectorSize, vols)
	if err != nil {
		n, _ = min(d.LogicalSectorSize, nil)
	}
	return n
}

// unusable says why d can be neither the install disk nor an app-data disk,
// or "": disk.Ineligible's reasons (the boot medium, mounted, swap, holders,
// read-only, virtual devices), and too small for either.
func (s *State) unusable(d disk.Disk) string {
	if r := disk.Ineligible(d, disk.SelectOptions{}, false); r != "" {
		return strings.TrimPrefix(r, d.Path+" ")
	}
	if d.SizeBytes < s.minAppData(d) && d.SizeBytes < s.minInstall(d) {
		return fmt.Sprintf("too small (an install needs %d MiB, app-data %d MiB)", s.minInstall(d)>>20, s.minAppData(d)>>20)
	}
	return ""
}

// consentValue is what the person types to let d be erased: what
// nodeinit.wipe= names it by (its serial, else WWN, by-id name or path).
func consentValue(d disk.Disk) string {
	return strings.Trim(strings.TrimPrefix(disk.WipeArgument(d), "nodeinit.wipe="), `"`)
}

// consentName says what consentValue is for d.
func consentName(d disk.Disk) string {
	switch {
	case d.Serial != "":
		return "serial"
	case d.WWN != "":
		return "WWN"
	case len(d.ByID) > 0:
		return "by-id name"
	}
	return "path"
}

func (s *State) chooseDisk(name string, space bool) {
	d, ok := s.Facts.Disk(name)
	if !ok {
		return
	}
	if r := s.unusable(*d); r != "" {
		s.msg = fmt.Sprintf("%s cannot be used: %s", d.Path, r)
		return
	}
	if !space {
		if d.SizeBytes < s.minInstall(*d) {
			s.msg = fmt.Sprintf("%s is too small to install on (%d MiB; the layout needs %d MiB); Space makes it an app-data disk", d.Path, d.SizeBytes>>20, s.minInstall(*d)>>20)
			return
		}
		s.target = name
		s.appData = slices.DeleteFunc(s.appData, func(x string) bool { return x == name })
		return
	}
	switch {
	case name == s.target:
		s.msg = d.Path + " is the install disk; Enter on another disk makes that one the install disk"
	case slices.Contains(s.appData, name):
		s.appData = slices.DeleteFunc(s.appData, func(x string) bool { return x == name })
	case d.SizeBytes < s.minAppData(*d):
		s.msg = fmt.Sprintf("%s is too small for an app-data disk (%d MiB; it needs %d MiB)", d.Path, d.SizeBytes>>20, s.minAppData(*d)>>20)
	default:
		s.appData = append(s.appData, name)
	}
}

// diskDone checks the choice: an install disk, and the typed serial of every
// chosen disk with foreign content.
func (s *State) diskDone() error {
	if s.target == "" {
		return errors.New("choose the install disk: move to it and press Enter")
	}
	for _, name := range s.chosen() {
		d, _ := s.Facts.Disk(name)
		if d.Content != disk.ContentForeign {
			continue
		}
		f := s.field("consent:" + name)
		typed := strings.TrimSpace(f.String())
		if typed == consentValue(*d) {
			continue
		}
		s.focus = "consent:" + name
		if typed == "" {
			return fmt.Errorf("%s holds %s: type its %s to erase it, or choose another disk", d.Path, disk.DescribeContent(*d), consentName(*d))
		}
		f.Clear()
		return fmt.Errorf("that is not the %s of %s: it is not erased; type it exactly, or choose another disk", consentName(*d), d.Path)
	}
	return nil
}

// storageTokens are storage_init for the chosen disks and nodeinit.wipe for
// those the person consented to erase.
func (s *State) storageTokens() []string {
	var specs, wipe []string
	for _, name := range s.chosen() {
		d, ok := s.Facts.Disk(name)
		if !ok {
			continue
		}
		specs = append(specs, disk.StableSpec(*d))
		if d.Content == disk.ContentForeign && strings.TrimSpace(s.field("consent:"+name).String()) == consentValue(*d) {
			wipe = append(wipe, consentValue(*d))
		}
	}
	var t []string
	if len(specs) > 0 {
		t = append(t, "storage_init="+strings.Join(specs, ","))
	}
	if len(wipe) > 0 {
		t = append(t, "nodeinit.wipe="+strings.Join(wipe, ","))
	}
	return t
}

// sizeText is a disk size for people.
func sizeText(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.1f TiB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// contentText is what a disk holds, in a few words: blank, nodeinit and its
// version, old oVirt Node, a nodeinit app-data disk, or the foreign
// signatures found (filesystems with their labels, LVM, md, LUKS).
func contentText(d disk.Disk) string {
	switch {
	case d.ProbeError != "":
		return "foreign: unreadable"
	case d.Content == disk.ContentBlank || d.Content == "":
		return "blank"
	case d.Content == disk.ContentOurs:
		if d.InstalledVersion != "" {
			return "nodeinit " + clean(d.InstalledVersion)
		}
		return "nodeinit install"
	case d.Content == disk.ContentOVirt:
		return "old oVirt Node"
	case d.Content == disk.ContentAppData:
		return fmt.Sprintf("nodeinit app-data %d", disk.AppDataIndexOf(d))
	}
	var f []string
	for _, sg := range d.Signatures {
		x := sg.Type
		switch sg.Type {
		case disk.SigPMBR, disk.SigGPT, disk.SigDOS:
			continue
		case disk.SigLVM:
			x = "LVM " + sg.Label
		case disk.SigMD:
			x = "md"
		case disk.SigLUKS:
			x = "LUKS"
		default:
			if sg.Label != "" {
				x += " '" + sg.Label + "'"
			}
		}
		if !slices.Contains(f, x) {
			f = append(f, x)
		}
	}
	if len(f) == 0 {
		return "foreign: " + clean(disk.DescribeContent(d))
	}
	return "foreign: " + clean(strings.Join(f, ", "))
}

// diskColumns are the widths of the disk list's columns.
const (
	colName  = 8
	colBus   = 7
	colSize  = 9
	colModel = 18
)

func (s *State) diskBody(b *body, w int) {
	b.text(" Enter: install disk (*)   Space: app-data disk (1), (2), … on /data/app1, …")
	b.nl()
	head := fmt.Sprintf("       %s %s %s %s %s", pad("DISK", colName), pad("BUS", colBus), pad("SIZE", colSize), pad("MODEL", colModel), "CONTENT")
	b.add(attrBold, "%s", head)
	b.nl()
	b.add(attrBold, "       %s", "SERIAL  WWN  BY-ID")
	b.nl()
	content := w - 7 - colName - colBus - colSize - colModel - 4
	for _, d := range s.Facts.Disks {
		if unattached(d) {
			continue
		}
		id := "disk:" + d.Name
		why := s.unusable(d)
		mark := "( )"
		switch n := slices.Index(s.appData, d.Name); {
		case why != "":
			mark = " - "
		case d.Name == s.target:
			mark = "(*)"
		case n >= 0:
			mark = fmt.Sprintf("(%d)", n+1)
		}
		a := attr(0)
		what := contentText(d)
		if why != "" {
			a = attrFaint
		}
		model := strings.TrimSpace(clean(d.Vendor + " " + d.Model))
		if d.Vendor == "ATA" || d.Transport == "virtio" {
			model = clean(d.Model)
		}
		b.text(" %s ", s.marker(id))
		b.add(a|s.focusAttr(id), "%s %s", mark, pad(clean(d.Name), colName))
		b.add(a, " %s %s %s %s", pad(clean(d.Transport), colBus), pad(sizeText(d.SizeBytes), colSize), pad(model, colModel), cut(what, content))
		b.nl()
		var ids []string
		for _, x := range []string{d.Serial, d.WWN, first(d.ByID)} {
			ids = append(ids, orDash(clean(x)))
		}
		b.add(a, "       %s", cut(strings.Join(ids, "  "), w-8))
		b.nl()
		switch {
		case why != "":
			b.add(a, "       cannot be used: %s", cut(why, w-24))
			b.nl()
		case len([]rune(what)) > content:
			b.add(a, "       %s", cut(what, w-8))
			b.nl()
		case d.SizeBytes < s.minInstall(d):
			b.text("       too small to install on (%d MiB needed): an app-data disk only", s.minInstall(d)>>20)
			b.nl()
		}
	}
	for _, name := range s.chosen() {
		d, ok := s.Facts.Disk(name)
		if !ok || d.Content != disk.ContentForeign {
			continue
		}
		id := "consent:" + name
		b.nl()
		b.para(attrBold, w, 1, fmt.Sprintf("%s holds %s. To erase it, type its %s:", d.Path, clean(disk.DescribeContent(*d)), consentName(*d)))
		b.text(" %s ", s.marker(id))
		b.add(s.focusAttr(id), "[%s]", pad(s.field(id).show(40), 40))
		b.nl()
	}
	b.nl()
	s.buttons(b, "next", "back")
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
