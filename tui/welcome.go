package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/image/deb"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

// OfferKind is one action the welcome page can offer.
type OfferKind string

// The actions, in the order the welcome page lists them.
const (
	// OfferInstall installs on a disk chosen on the disk page.
	OfferInstall OfferKind = "install"
	// OfferUpgrade writes a newer image into the inactive slot (upgrade).
	OfferUpgrade OfferKind = "upgrade"
	// OfferDowngrade writes an older image of the same major version into the
	// inactive slot, keeping config and data (upgrade nodeinit.force).
	OfferDowngrade OfferKind = "downgrade"
	// OfferReinstallKeep writes the installed version again into the
	// inactive slot, keeping config and data (upgrade nodeinit.force).
	OfferReinstallKeep OfferKind = "reinstall-keep"
	// OfferReinstallWipe is a new install over the old one: config and data
	// are erased (reinstall).
	OfferReinstallWipe OfferKind = "reinstall-wipe"
	// OfferUninstall erases every install and app-data disk (uninstall).
	OfferUninstall OfferKind = "uninstall"
	// OfferStateless runs the image from RAM (stateless).
	OfferStateless OfferKind = "stateless"
	// OfferRescue opens the rescue shell (rescue).
	OfferRescue OfferKind = "rescue"
)

// Offer is one action on the welcome page, worded as oVirt Node worded it.
type Offer struct {
	Kind  OfferKind
	Title string // e.g. "Upgrade 1.0 to 1.1"
	What  string // what it does, in a line
}

// offers are the actions the machine's state allows, and notes saying what is
// not offered and why (a major-version jump, a refused upgrade, no image).
// An action that needs no more input (upgrade, downgrade, reinstall keeping
// data, uninstall) is offered only when plan.Plan accepts its command line.
func offers(f *plan.Facts, base *cmdline.Params) (list []Offer, notes []string) {
	img := f.Image
	imgOK := img != nil && img.Error == ""
	switch {
	case img == nil:
		notes = append(notes, "No image was found on the medium, so nothing can be installed, upgraded or run stateless.")
	case !imgOK:
		notes = append(notes, fmt.Sprintf("The image %s cannot be used: %s", img.Source, img.Error))
	}
	in := f.Install
	// planned offers an action only when plan.Plan accepts its line.
	planned := func(o Offer, toks ...string) {
		p, _, err := compose(base, nil, toks)
		if err == nil {
			_, err = plan.Plan(p, f)
		}
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s is not offered: %s", o.Title, refusal(err)))
			return
		}
		list = append(list, o)
	}
	switch {
	case in == nil:
		if imgOK {
			list = append(list, Offer{OfferInstall, fmt.Sprintf("Install %s", img.Version),
				fmt.Sprintf("install %s %s on a disk you choose", img.Name, img.Version)})
		}
	case in.OVirt:
		if imgOK {
			list = append(list, Offer{OfferInstall, fmt.Sprintf("Install %s", img.Version),
				fmt.Sprintf("replace the old oVirt Node on /dev/%s (its config is not carried over), or install on another disk", in.Disk)})
		}
		planned(Offer{OfferUninstall, "Uninstall", fmt.Sprintf("erase the old oVirt Node on /dev/%s", in.Disk)}, "uninstall")
	case in.Incomplete != "":
		if imgOK {
			list = append(list, Offer{OfferInstall, fmt.Sprintf("Install %s", img.Version),
				fmt.Sprintf("install again on /dev/%s, whose install never finished", in.Disk)})
		}
		planned(Offer{OfferUninstall, "Uninstall", fmt.Sprintf("erase the unfinished install on /dev/%s", in.Disk)}, "uninstall")
	default:
		active := in.ActiveSlot
		if active == "" {
			active = "a"
		}
		cur := in.Slots[active].Version
		if imgOK {
			other := plan.OtherSlot(active)
			keep := fmt.Sprintf("; config and data are kept, and slot %s (%s) stays the fallback", active, cur)
			switch c := deb.CompareVersions(img.Version, cur); {
			case major(img.Version) != major(cur) && c > 0:
				notes = append(notes, fmt.Sprintf("Upgrade %s to %s is not offered: it is a major-version jump. Upgrade to the last %s.x release first, or choose Reinstall and wipe.",
					cur, img.Version, major(cur)))
			case major(img.Version) != major(cur):
				notes = append(notes, fmt.Sprintf("Downgrade %s to %s is not offered: it goes back a major version, which may not read the config %s wrote. Choose Reinstall and wipe to install %s anew.",
					cur, img.Version, cur, img.Version))
			case c > 0:
				planned(Offer{OfferUpgrade, fmt.Sprintf("Upgrade %s to %s", cur, img.Version), fmt.Sprintf("write %s into slot %s%s", img.Version, other, keep)}, "upgrade")
			case c < 0:
				planned(Offer{OfferDowngrade, fmt.Sprintf("Downgrade %s to %s", cur, img.Version), fmt.Sprintf("write %s into slot %s%s", img.Version, other, keep)}, "upgrade", "nodeinit.force")
			default:
				planned(Offer{OfferReinstallKeep, fmt.Sprintf("Reinstall %s", cur), fmt.Sprintf("write %s again into slot %s%s", cur, other, keep)}, "upgrade", "nodeinit.force")
			}
			list = append(list, Offer{OfferReinstallWipe, "Reinstall and wipe",
				fmt.Sprintf("a new install of %s on a disk you choose; the old config and data are erased", img.Version)})
		}
		planned(Offer{OfferUninstall, "Uninstall", fmt.Sprintf("erase the install on /dev/%s and its app-data disks", in.Disk)}, "uninstall")
	}
	if imgOK {
		list = append(list, Offer{OfferStateless, "Run stateless", fmt.Sprintf("run %s from RAM with the settings you give; no disk is written", img.Version)})
	}
	list = append(list, Offer{OfferRescue, "Rescue shell", "a shell on this console, with the facts printed"})
	return list, notes
}

// Offers are the actions the welcome page offers, and the notes saying what
// it does not offer and why.
func (s *State) Offers() ([]Offer, []string) { return s.offers, s.notes }

// refusal is a plan's refusal in a sentence: what, and the fix.
func refusal(err error) string {
	d := operr.Describe(err)
	out := d.Message
	if a, rest, ok := strings.Cut(out, ": "); ok && slices.Contains(actionWords, a) {
		out = rest // "upgrade: …" after "Upgrade 1.0 to 1.1 is not offered:"
	}
	if d.Fix != "" {
		out += " (" + d.Fix + ")"
	}
	return out
}

// actionWords are the action names the plan's refusals start with.
var actionWords = []string{"install", "reinstall", "upgrade", "uninstall", "stateless"}

// major is the first dotted field of a version.
func major(v string) string {
	m, _, _ := strings.Cut(v, ".")
	return m
}

func (s *State) welcomeItems() []item {
	it := make([]item, len(s.offers))
	for i := range s.offers {
		it[i] = item{id: fmt.Sprintf("offer:%d", i)}
	}
	return it
}

// welcomeFocus is the offer the command line asked for, else the first.
func (s *State) welcomeFocus() string {
	want := map[cmdline.Action][]OfferKind{
		cmdline.ActionInstall:   {OfferInstall, OfferUpgrade, OfferDowngrade, OfferReinstallKeep},
		cmdline.ActionReinstall: {OfferReinstallWipe},
		cmdline.ActionUpgrade:   {OfferUpgrade, OfferDowngrade, OfferReinstallKeep},
		cmdline.ActionUninstall: {OfferUninstall},
		cmdline.ActionStateless: {OfferStateless},
		cmdline.ActionRescue:    {OfferRescue},
	}[s.Base.Action]
	if s.offer.Kind != "" {
		want = []OfferKind{s.offer.Kind}
	}
	for _, k := range want {
		for i, o := range s.offers {
			if o.Kind == k {
				return fmt.Sprintf("offer:%d", i)
			}
		}
	}
	return "offer:0"
}

func (s *State) chooseOffer(id string) {
	var i int
	fmt.Sscanf(id, "offer:%d", &i)
	if i < 0 || i >= len(s.offers) {
		return
	}
	if s.offer.Kind != s.offers[i].Kind {
		s.offer = s.offers[i]
		s.prefill()
	}
	if s.offer.Kind == OfferRescue {
		s.Line = ""
		if p, line, err := s.compose(); err == nil {
			s.Line, s.Plan = line, nil
			if bp, err := plan.Plan(p, s.Facts); err == nil {
				s.Plan = bp
			}
			s.Finished = true
		} else {
			s.msg = err.Error()
		}
		return
	}
	s.forward()
}

func (s *State) welcomeBody(b *body, w int) {
	f := s.Facts
	b.nl()
	machine := strings.TrimSpace(clean(f.DMI.Vendor + " " + f.DMI.Product))
	if machine == "" {
		machine = "unknown machine"
	}
	firm := "BIOS"
	if f.EFI {
		firm = "EFI"
	}
	tpm := "no TPM"
	if f.TPM {
		tpm = "TPM 2.0"
	}
	b.labeled(0, w, "Machine", fmt.Sprintf("%s, %.1f GiB RAM, %s, %s, %s, %s",
		machine, float64(f.MemoryBytes)/(1<<30), firm, tpm, count(len(f.Disks), "disk"), count(len(f.NICs), "network interface")))
	if img := f.Image; img != nil && img.Error == "" {
		trust := "unsigned"
		switch {
		case img.Signed:
			trust = "signature verified"
		case img.Pinned:
			trust = "sha256 pinned"
		}
		b.labeled(0, w, "Medium", fmt.Sprintf("%s %s from %s (%s)", clean(img.Name), clean(img.Version), clean(img.Source), trust))
	}
	b.labeled(0, w, "Installed", installedText(f.Install))
	b.nl()
	b.text(" What should this machine do?")
	b.nl()
	b.nl()
	for i, o := range s.offers {
		id := fmt.Sprintf("offer:%d", i)
		b.text(" %s ", s.marker(id))
		b.add(s.focusAttr(id)|attrBold, "%s", pad(o.Title, 24))
		rest := wrap(o.What, w-29, 0)
		b.text("  %s", rest[0])
		b.nl()
		for _, r := range rest[1:] {
			b.text("%s%s", strings.Repeat(" ", 29), r)
			b.nl()
		}
	}
	for _, n := range s.notes {
		b.nl()
		b.para(attrFaint, w, 1, n)
	}
}

// count is n things, in the plural unless n is 1.
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// installedText says what install the machine holds.
func installedText(in *plan.Install) string {
	switch {
	case in == nil:
		return "nothing: no disk holds a nodeinit or oVirt Node install"
	case in.OVirt:
		return "an old oVirt Node on /dev/" + in.Disk
	case in.Incomplete != "":
		return fmt.Sprintf("an unfinished nodeinit install on /dev/%s: %s", in.Disk, in.Incomplete)
	}
	active := in.ActiveSlot
	if active == "" {
		active = "a"
	}
	sl := in.Slots[active]
	out := fmt.Sprintf("version %s on /dev/%s, slot %s", clean(sl.Version), in.Disk, active)
	if sl.State != "" {
		out += " (" + sl.State + ")"
	}
	if o := in.Slots[plan.OtherSlot(active)]; o.Version != "" {
		out += fmt.Sprintf("; slot %s holds %s", plan.OtherSlot(active), clean(o.Version))
	}
	return out
}
