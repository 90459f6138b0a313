package tui

import (
	"path"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/plan"
)

// Needed reports whether the command line p, on the machine f, calls for the
// installer screen. nodeinit.interactive=0 never does and
// nodeinit.interactive=1 always does. Otherwise only an install (the install
// flag, or oVirt's auto-install on a machine without an install) whose disk
// is left open does: no storage_init (the media's "Install or Upgrade"
// entry), or a bare storage_init, a bare BUS or a glob that matches more than
// one eligible disk. A complete line never waits at a screen, and neither
// does a plain boot or a PXE line (BOOTIF= set: pxelinux and iPXE add it,
// and an unattended fleet boots that way). Whether a console is there to show it on is the
// caller's to check.
func Needed(p *cmdline.Params, f *plan.Facts) bool {
	if p == nil || f == nil {
		return false
	}
	if v := p.Node.Interactive; v != nil {
		return *v
	}
	if p.BootIf != nil {
		return false
	}
	install := p.Action == cmdline.ActionInstall ||
		p.Action == cmdline.ActionBoot && p.AutoInstall && (f.Install == nil || f.Install.Incomplete != "")
	return install && diskOpen(p.StorageInit, f.Disks)
}

// diskOpen reports whether storage_init leaves the disk to choose.
func diskOpen(si *cmdline.StorageInit, disks []disk.Disk) bool {
	if si == nil {
		return true
	}
	count := func(match func(disk.Disk) bool) int {
		n := 0
		for _, d := range disks {
			if disk.Ineligible(d, disk.SelectOptions{}, false) == "" && match(d) {
				n++
			}
		}
		return n
	}
	if si.Bare || len(si.Disks) == 0 {
		// As disk.Select reads a bare storage_init: USB and removable disks only when named.
		return count(func(d disk.Disk) bool { return d.Transport != "usb" && !d.Removable }) > 1
	}
	for _, s := range append(append([]cmdline.DiskSpec(nil), si.Disks...), si.Extra...) {
		var match func(disk.Disk) bool
		switch {
		case s.Kind == cmdline.SpecBus && s.Value == "" && !s.All:
			match = func(d disk.Disk) bool { return strings.EqualFold(d.Transport, s.Bus) }
		case s.Kind == cmdline.SpecPath && strings.ContainsAny(s.Value, "*?["):
			match = func(d disk.Disk) bool { ok, _ := path.Match(s.Value, d.Path); return ok }
		case s.Kind == cmdline.SpecByID && strings.ContainsAny(s.Value, "*?["):
			match = func(d disk.Disk) bool {
				for _, id := range d.ByID {
					if ok, _ := path.Match(strings.TrimPrefix(s.Value, "/dev/disk/by-id/"), id); ok {
						return true
					}
				}
				return false
			}
		default:
			continue
		}
		if count(match) > 1 {
			return true
		}
	}
	return false
}
