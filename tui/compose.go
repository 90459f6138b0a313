package tui

import (
	"strconv"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
)

// compose is the command line the screen produces: base without the keys the
// screen decides (the action, storage_init, storage_vol, nodeinit.wipe,
// nodeinit.interactive, and what own clears), with toks added, read back by
// cmdline.Parse as the kernel would read it. There is no other path: the plan
// page, the done page and Run's result are all this line.
func compose(base *cmdline.Params, own func(*cmdline.Params), toks []string) (*cmdline.Params, string, error) {
	b := *base
	b.ActionTokens, b.AutoInstall, b.InitArgs = nil, false, nil
	b.StorageInit, b.StorageVol = nil, nil
	b.Node.Wipe, b.Node.Interactive = nil, nil
	if own != nil {
		own(&b)
	}
	var t []string
	for _, tok := range toks {
		if strings.ContainsAny(tok, " \t") {
			tok = `"` + tok + `"`
		}
		t = append(t, tok)
	}
	p, err := cmdline.Parse(strings.TrimSpace(strings.Join(t, " ") + " " + b.Canonical(true)))
	if err != nil {
		return nil, "", err
	}
	p.InitArgs = base.InitArgs
	line := p.Canonical(true)
	if p, err = cmdline.Parse(line); err != nil {
		return nil, "", err
	}
	return p, line, nil
}

// compose is the command line of what has been chosen and typed so far.
func (s *State) compose() (*cmdline.Params, string, error) {
	var toks []string
	var own func(*cmdline.Params)
	switch s.offer.Kind {
	case OfferInstall, OfferReinstallWipe:
		toks = append(toks, s.installAction())
		toks = append(toks, s.storageTokens()...)
		toks = append(toks, s.layoutTokens()...)
	case OfferUpgrade:
		toks = []string{"upgrade"}
	case OfferDowngrade, OfferReinstallKeep:
		toks = []string{"upgrade", "nodeinit.force"}
	case OfferUninstall:
		toks = []string{"uninstall"}
	case OfferStateless:
		toks = []string{"stateless"}
	case OfferRescue:
		toks = []string{"rescue"}
	}
	switch s.offer.Kind {
	case OfferInstall, OfferReinstallWipe, OfferStateless:
		toks = append(toks, s.networkTokens()...)
		if s.hash != "" {
			toks = append(toks, "adminpw="+s.hash)
		}
		own = func(p *cmdline.Params) {
			p.BootIf, p.IP, p.VLAN, p.Hostname, p.ManagementServer = nil, nil, nil, "", nil
			if s.static {
				p.DNS = nil
			}
			if s.hash != "" {
				p.AdminPW, p.Node.AdminPWFrom = "", ""
			}
		}
	}
	return compose(s.Base, own, toks)
}

// installAction is install, or reinstall where a chosen disk holds what only
// reinstall replaces: an old oVirt Node, a nodeinit app-data disk, or a
// nodeinit install other than one that never finished (which install redoes).
func (s *State) installAction() string {
	if s.offer.Kind == OfferReinstallWipe {
		return "reinstall"
	}
	in := s.Facts.Install
	for _, name := range s.chosen() {
		d, ok := s.Facts.Disk(name)
		if !ok {
			continue
		}
		switch d.Content {
		case disk.ContentOVirt, disk.ContentAppData:
			return "reinstall"
		case disk.ContentOurs:
			if in == nil || in.Incomplete == "" || in.Disk != name {
				return "reinstall"
			}
		}
	}
	return "install"
}

// chosen are the install disk and the app-data disks, in storage_init order.
func (s *State) chosen() []string {
	if s.target == "" {
		return nil
	}
	return append([]string{s.target}, s.appData...)
}

// prefill fills the pages from the command line the screen started from (and,
// for Reinstall and wipe, from the install), so a line given with
// nodeinit.interactive=1 shows its own values to change.
func (s *State) prefill() {
	b, f := s.Base, s.Facts
	s.target, s.appData = "", nil
	if b.StorageInit != nil {
		if sel, err := disk.Select(f.Disks, b.StorageInit, disk.SelectOptions{}); err == nil {
			s.target = sel.Target.Name
			for _, x := range sel.Extra {
				s.appData = append(s.appData, x.Name)
			}
		}
	}
	if in := f.Install; s.target == "" && in != nil &&
		(s.offer.Kind == OfferReinstallWipe || s.offer.Kind == OfferInstall && (in.OVirt || in.Incomplete != "")) {
		s.target = in.Disk
		for _, r := range in.AppData {
			if d, _ := f.PartitionByUUID(r.DataPartUUID); d != nil {
				s.appData = append(s.appData, d.Name)
			}
		}
	}
	for _, name := range s.chosen() {
		if d, ok := f.Disk(name); ok && d.Content == disk.ContentForeign {
			for _, w := range b.Node.Wipe {
				if w == consentValue(*d) {
					s.field("consent:" + name).Set(w)
				}
			}
		}
	}
	for _, v := range append(volumes, appVolumes...) {
		s.field("vol:" + v.name).Clear()
	}
	if b.StorageVol != nil {
		for name, size := range b.StorageVol.SizesMiB {
			key := strings.ToLower(name)
			if key == cmdline.VolEFI || key == cmdline.VolBoot {
				key = cmdline.VolBoot // both size the one ESP; the larger wins
				for _, k := range []string{cmdline.VolEFI, cmdline.VolBoot} {
					if v, ok := b.StorageVol.SizesMiB[k]; ok {
						size = max(size, v)
					}
				}
			}
			s.field("vol:" + key).Set(strconv.FormatInt(size, 10))
		}
	}
	s.prefillNetwork()
}
