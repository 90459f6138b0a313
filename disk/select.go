package disk

import (
	"fmt"
	"path"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/operr"
)

// SelectOptions adjust Select for tests.
type SelectOptions struct {
	// AllowLoop lets a loop device be a target when a spec names it by its
	// exact path (/dev/loop3). Only tests set it.
	AllowLoop bool
}

// Selection is what storage_init resolved to.
type Selection struct {
	// Target is the install disk: the first disk listed.
	Target Disk
	// Extra are the app-data disks, in the order listed: the further disks of
	// the list before ';' (oVirt's HostVG), then the disks after it (AppVG).
	Extra []Disk
}

// SelectError is a refusal to pick a disk. Candidates are the disks the
// operator can choose from (or that matched, when several did); Hint says in
// words what to write instead, and Arg is the exact kernel argument that fixes
// it (storage_init=serial:S123, naming a blank disk first), or "" when no
// candidate can be suggested.
type SelectError struct {
	Spec       string // storage_init as given
	Reason     string
	Candidates []Disk
	Hint       string // how to fix it, in words
	Arg        string // the kernel argument to use instead
}

// Error says what was refused and lists the candidates; the fix and the argument are the
// failure screen's (see Unwrap).
func (e *SelectError) Error() string {
	var b strings.Builder
	b.WriteString(e.what())
	if len(e.Candidates) > 0 {
		b.WriteString("; candidates:")
		for _, d := range e.Candidates {
			b.WriteString("\n  " + Identity(d))
		}
	}
	return b.String()
}

func (e *SelectError) what() string {
	if e.Spec == "" {
		return e.Reason
	}
	return fmt.Sprintf("storage_init=%s: %s", e.Spec, e.Reason)
}

// Unwrap gives the operator error the failure screen shows: its fix and kernel argument.
func (e *SelectError) Unwrap() error {
	return &operr.Error{What: e.what(), Fix: e.Hint, Arg: e.Arg}
}

// selectError is a SelectError whose Arg names the best of pick and whose Hint is words
// followed, when no disk can be suggested, by why.
func selectError(spec, reason string, candidates, pick []Disk, words string) *SelectError {
	arg := suggest(pick)
	switch {
	case arg != "":
	case len(pick) == 0:
		words += "; no disk here can be a target: attach one, or free one (unmount it, stop what holds it)"
	default:
		words += "; every candidate holds foreign content: name the disk you mean (storage_init=serial:<serial>) and add nodeinit.wipe=<serial> to erase it"
	}
	return &SelectError{Spec: spec, Reason: reason, Candidates: candidates, Hint: words, Arg: arg}
}

// Identity is one line naming a disk the ways an operator can select it.
func Identity(d Disk) string {
	f := []string{d.Path, d.Transport, humanSize(d.SizeBytes)}
	vendor := d.Vendor
	if vendor == "ATA" || d.Transport == "virtio" {
		vendor = "" // libata's placeholder; virtio's is the PCI vendor
	}
	if m := strings.TrimSpace(vendor + " " + d.Model); m != "" {
		f = append(f, fmt.Sprintf("model %q", m))
	}
	if d.Serial != "" {
		f = append(f, "serial "+d.Serial)
	}
	if d.WWN != "" {
		f = append(f, "wwn "+d.WWN)
	}
	if len(d.ByID) > 0 {
		f = append(f, "by-id "+d.ByID[0])
	}
	if d.ByPath != "" {
		f = append(f, "by-path "+d.ByPath)
	}
	if r := Ineligible(d, SelectOptions{}, false); r != "" {
		f = append(f, "("+r+")")
	} else if d.Content == ContentForeign {
		// The disk could be chosen, but only with consent: say so where the operator picks.
		f = append(f, "[foreign content: "+DescribeContent(d)+"; erasing it needs "+WipeArgument(d)+"]")
	}
	return strings.Join(f, "  ")
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<40:
		return fmt.Sprintf("%.1f TiB", float64(n)/(1<<40))
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}

// Ineligible returns why d can never be a target, or "". The rules of
// DESIGN.md: the boot medium, mounted filesystems, active swap, holders,
// read-only devices and virtual devices (loop only when exactPath and
// opts.AllowLoop).
func Ineligible(d Disk, opts SelectOptions, exactPath bool) string {
	switch {
	case d.BootMedium:
		return d.Path + " holds the boot medium"
	case d.Transport == "loop" && !(exactPath && opts.AllowLoop):
		return d.Path + " is a loop device"
	case d.Transport == "ram" || d.Transport == "zram" || d.Transport == "dm" || d.Transport == "md" || d.Transport == "nbd":
		return fmt.Sprintf("%s is a %s device, not a disk", d.Path, d.Transport)
	case len(d.Mounts) > 0:
		return fmt.Sprintf("%s has mounted filesystems (%s)", d.Path, strings.Join(d.Mounts, ", "))
	case d.Swap:
		return d.Path + " has active swap"
	case len(d.Holders) > 0:
		return fmt.Sprintf("%s is in use by %s", d.Path, strings.Join(d.Holders, ", "))
	case d.ReadOnly:
		return d.Path + " is read-only"
	case strings.HasPrefix(d.Name, "sr"):
		return d.Path + " is an optical drive"
	case d.SizeBytes == 0:
		return d.Path + " has no medium (size 0)"
	}
	return ""
}

// match is one disk a spec matched; explicit when the spec named exactly
// this disk (an exact path, serial, WWN, by-id, by-path or bus:SERIAL)
// rather than a pattern (glob, bus:ALL).
type match struct {
	disk     int
	explicit bool
	exact    bool // named by its exact /dev path
}

// Select resolves storage_init to the install disk and the app-data disks.
// Every exclusion of DESIGN.md applies; a disk a spec named explicitly but
// that is excluded is an error naming the disk and the reason. Each listed
// spec, before or after ';', must resolve to exactly one disk, and no disk may
// be listed twice; the first is the install disk. A bare storage_init means
// the one eligible disk, and never picks a USB or removable disk by itself.
// There is no fallback disk.
func Select(disks []Disk, spec *cmdline.StorageInit, opts SelectOptions) (Selection, error) {
	if spec == nil {
		c := eligible(disks, opts)
		return Selection{}, selectError("", "no storage_init given: nodeinit never picks a disk by itself", c, c,
			"add storage_init naming the install disk, as below")
	}
	raw := rawSpec(spec)
	// chosen are the disks resolved so far, in list order, and named how each was named.
	var chosen []Disk
	var named []string
	if spec.Bare || len(spec.Disks) == 0 {
		t, err := selectBare(disks, raw, opts)
		if err != nil {
			return Selection{}, err
		}
		chosen, named = append(chosen, t), append(named, "the bare storage_init")
	}
	specs := append(append([]cmdline.DiskSpec(nil), spec.Disks...), spec.Extra...)
	several := len(chosen)+len(specs) > 1
	for _, s := range specs {
		i, err := resolveOne(disks, s, raw, several, opts)
		if err != nil {
			return Selection{}, err
		}
		d := disks[i]
		for k, prev := range chosen {
			if prev.Name == d.Name {
				return Selection{}, &SelectError{Spec: raw, Reason: fmt.Sprintf("%s is listed twice (as %s and as %s)", d.Path, named[k], s.Raw),
					Candidates: []Disk{d}, Hint: "list each disk once: the install disk first, then each app-data disk"}
			}
		}
		chosen, named = append(chosen, d), append(named, s.Raw)
	}
	return Selection{Target: chosen[0], Extra: chosen[1:]}, nil
}

// resolveOne resolves one listed spec to the one disk it must match. When the
// list has several specs (several), the refusal names the spec.
func resolveOne(disks []Disk, s cmdline.DiskSpec, raw string, several bool, opts SelectOptions) (int, error) {
	which := ""
	if several {
		which = s.Raw + " "
	}
	matched, err := resolve(disks, []cmdline.DiskSpec{s}, raw, opts)
	if err == nil {
		switch len(matched) {
		case 1:
			return matched[0], nil
		case 0:
			err = selectError(raw, which+"matches no disk", disks, eligible(disks, opts),
				"name one of the candidates by its serial, WWN, by-id or by-path name")
		default:
			var c []Disk
			for _, i := range matched {
				c = append(c, disks[i])
			}
			err = selectError(raw, fmt.Sprintf("%smatches %d disks where one is needed", which, len(matched)), c, c,
				"name one of them by its serial (a blank disk is suggested); to use several disks, list each by its own name, the install disk first, then the app-data disks")
		}
	}
	// In a list, a storage_init= naming one disk would drop the others.
	if e, ok := err.(*SelectError); ok && several {
		e.Arg = ""
	}
	return 0, err
}

// selectBare is the one eligible fixed disk, for a bare storage_init.
func selectBare(disks []Disk, raw string, opts SelectOptions) (Disk, error) {
	var pick []Disk
	for _, d := range eligible(disks, opts) {
		if d.Transport != "usb" && !d.Removable {
			pick = append(pick, d)
		}
	}
	switch len(pick) {
	case 1:
		return pick[0], nil
	case 0:
		return Disk{}, selectError(raw, "no eligible disk (USB and removable disks are only used when named)", disks, eligible(disks, opts),
			"name the disk; a USB or removable disk is used only when named")
	}
	return Disk{}, selectError(raw, fmt.Sprintf("a bare storage_init needs exactly one eligible disk; there are %d", len(pick)), pick, pick,
		"name one of them by its serial (a blank disk is suggested)")
}

func rawSpec(spec *cmdline.StorageInit) string {
	var a, b []string
	for _, s := range spec.Disks {
		a = append(a, s.Raw)
	}
	for _, s := range spec.Extra {
		b = append(b, s.Raw)
	}
	out := strings.Join(a, ",")
	if len(b) > 0 {
		out += ";" + strings.Join(b, ",")
	}
	return out
}

// resolve returns the indexes of the eligible disks the specs match, in
// disk order without duplicates. An explicitly named but excluded disk is an
// error; pattern matches silently skip excluded disks, unless nothing
// eligible is left, which is an error listing the excluded ones.
func resolve(disks []Disk, specs []cmdline.DiskSpec, raw string, opts SelectOptions) ([]int, error) {
	seen := map[int]bool{}
	var excluded []Disk
	var reasons []string
	for _, s := range specs {
		ms, err := matchSpec(disks, s)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			d := disks[m.disk]
			if r := Ineligible(d, opts, m.exact); r != "" {
				if m.explicit {
					c := eligible(disks, opts)
					return nil, selectError(raw, "cannot be a target: "+r, c, c, "name another disk")
				}
				excluded = append(excluded, d)
				reasons = append(reasons, r)
				continue
			}
			seen[m.disk] = true
		}
	}
	var out []int
	for i := range disks {
		if seen[i] {
			out = append(out, i)
		}
	}
	if len(out) == 0 && len(excluded) > 0 {
		c := eligible(disks, opts)
		return nil, selectError(raw, "matches only disks that cannot be targets: "+strings.Join(Dedup(reasons), "; "), c, c, "name another disk")
	}
	return out, nil
}

// matchSpec returns the disks one spec matches.
func matchSpec(disks []Disk, s cmdline.DiskSpec) ([]match, error) {
	var out []match
	add := func(i int, explicit, exact bool) { out = append(out, match{disk: i, explicit: explicit, exact: exact}) }
	switch s.Kind {
	case cmdline.SpecPath:
		v := s.Value
		if wwid, ok := strings.CutPrefix(v, "/dev/mapper/"); ok && !strings.ContainsAny(wwid, "*?[") {
			return matchMapper(disks, s, wwid)
		}
		if name, ok := strings.CutPrefix(v, "/dev/disk/by-id/"); ok {
			return matchSpec(disks, cmdline.DiskSpec{Kind: cmdline.SpecByID, Value: name, Raw: s.Raw})
		}
		if name, ok := strings.CutPrefix(v, "/dev/disk/by-path/"); ok {
			return matchSpec(disks, cmdline.DiskSpec{Kind: cmdline.SpecByPath, Value: name, Raw: s.Raw})
		}
		glob := strings.ContainsAny(v, "*?[")
		if !glob && !strings.HasPrefix(v, "/dev/") {
			v = "/dev/" + v
		}
		for i, d := range disks {
			if ok, _ := path.Match(v, d.Path); ok {
				add(i, !glob, !glob)
			}
		}
		if len(out) == 0 && !glob {
			for _, d := range disks {
				for _, p := range d.Partitions {
					if p.Path == v {
						return nil, &SelectError{Spec: s.Raw, Reason: fmt.Sprintf("%s is a partition of %s; storage_init takes whole disks", v, d.Path),
							Candidates: []Disk{d}, Arg: stableArg(d),
							Hint: "name the whole disk; the install replaces every partition on it"}
					}
				}
			}
		}
	case cmdline.SpecBus:
		for i, d := range disks {
			if !strings.EqualFold(d.Transport, s.Bus) {
				continue
			}
			if s.All || s.Value == "" {
				// BUS:ALL and a bare BUS are patterns: every disk on the bus; a bare BUS
				// needing one disk is refused as ambiguous when there are several.
				add(i, false, false)
			} else if busSerialMatches(d, s.Value) {
				add(i, true, false)
			}
		}
	case cmdline.SpecSerial:
		for i, d := range disks {
			if d.Serial != "" && strings.EqualFold(d.Serial, s.Value) {
				add(i, true, false)
			}
		}
	case cmdline.SpecWWN:
		for i, d := range disks {
			if d.WWN != "" && sameWWN(d.WWN, s.Value) {
				add(i, true, false)
			}
		}
	case cmdline.SpecByID:
		v := strings.TrimPrefix(s.Value, "/dev/disk/by-id/")
		glob := strings.ContainsAny(v, "*?[")
		for i, d := range disks {
			for _, id := range d.ByID {
				if ok, _ := path.Match(v, id); ok {
					add(i, !glob, false)
					break
				}
			}
		}
	case cmdline.SpecByPath:
		v := strings.TrimPrefix(s.Value, "/dev/disk/by-path/")
		glob := strings.ContainsAny(v, "*?[")
		for i, d := range disks {
			for _, p := range byPathAliases(d) {
				if ok, _ := path.Match(v, p); ok {
					add(i, !glob, false)
					break
				}
			}
		}
	default:
		return nil, &SelectError{Spec: s.Raw, Reason: fmt.Sprintf("unknown disk selector kind %q", s.Kind),
			Hint: "use a /dev path, serial:, wwn:, by-id:, by-path: or ata|scsi|usb|nvme|virtio:SERIAL"}
	}
	return out, nil
}

// busSerialMatches matches oVirt's bus:SERIAL, where SERIAL was udev's
// ID_SERIAL (e.g. usb:SanDisk_Cruzer_Blade_4C53…-0:0, with the instance suffix
// udev's usb_id adds, or without it) or the short serial.
func busSerialMatches(d Disk, v string) bool {
	if d.Serial != "" && strings.EqualFold(d.Serial, v) {
		return true
	}
	for _, id := range d.ByID {
		id = strings.TrimPrefix(id, d.Transport+"-")
		if strings.EqualFold(id, v) {
			return true // the whole ID_SERIAL, -0:0 and all
		}
		if d.Transport == "usb" {
			if i := strings.LastIndex(id, "-"); i > 0 {
				id = id[:i]
			}
		}
		if strings.EqualFold(id, v) {
			return true
		}
	}
	return false
}

// matchMapper resolves /dev/mapper/<WWID>, oVirt's multipath form, to the disks
// with that WWID (see WWIDs). multipath's friendly names (mpatha) exist only once
// multipathd runs, which it never does in the initramfs, so they match nothing and
// the error says what to write instead.
func matchMapper(disks []Disk, s cmdline.DiskSpec, wwid string) ([]match, error) {
	var out []match
	for i, d := range disks {
		for _, w := range WWIDs(d) {
			if strings.EqualFold(w, wwid) {
				out = append(out, match{disk: i, explicit: true})
				break
			}
		}
	}
	if len(out) == 0 {
		var known []Disk
		for _, d := range disks {
			if len(WWIDs(d)) > 0 {
				known = append(known, d)
			}
		}
		e := selectError(s.Raw, fmt.Sprintf("no disk has the WWID %q (multipath names such as mpatha are not known at install time)", wwid),
			known, known, "name the disk by its WWID, /dev/mapper/"+firstWWID(known)+", or by its serial")
		if d := best(known); d != nil {
			e.Arg = "storage_init=/dev/mapper/" + WWIDs(*d)[0] // the form the operator used
		}
		return nil, e
	}
	return out, nil
}

// WWIDs are the names multipath would give d under /dev/mapper: the SCSI
// identifier that scsi_id reports ("3" and the NAA WWN, or the scsi- by-id name
// without its prefix, e.g. SATA_<model>_<serial>), and an NVMe namespace's wwid
// (eui.…, nvme.…).
func WWIDs(d Disk) []string {
	var ids []string
	add := func(id string) {
		for _, x := range ids {
			if strings.EqualFold(x, id) {
				return
			}
		}
		ids = append(ids, id)
	}
	switch {
	case strings.HasPrefix(d.WWN, "0x"):
		add("3" + d.WWN[2:])
	case d.WWN != "":
		add(d.WWN)
	}
	for _, id := range d.ByID {
		if rest, ok := strings.CutPrefix(id, "scsi-"); ok {
			add(rest)
		}
	}
	if d.Transport == "ata" && d.Serial != "" {
		add("SATA_" + JoinID(d.Model, d.Serial))
	}
	return ids
}

func firstWWID(c []Disk) string {
	for _, d := range c {
		if w := WWIDs(d); len(w) > 0 {
			return w[0]
		}
	}
	return "<WWID>"
}

// eligible returns the disks that can be targets.
func eligible(disks []Disk, opts SelectOptions) []Disk {
	var out []Disk
	for _, d := range disks {
		if Ineligible(d, opts, false) == "" {
			out = append(out, d)
		}
	}
	return out
}

// suggest gives the most stable storage_init argument for the best candidate: a blank
// fixed disk first, then a blank one, then a fixed disk holding an install (ours
// or oVirt's), then any disk holding one; never a disk with foreign content,
// because copying the suggestion must not steer an operator towards erasing data.
// "" when there is no candidate, or every candidate holds foreign content.
func suggest(c []Disk) string {
	if d := best(c); d != nil {
		return stableArg(*d)
	}
	return ""
}

// best is the candidate suggest names, or nil.
func best(c []Disk) *Disk {
	fixed := func(x Disk) bool { return x.Transport != "usb" && !x.Removable }
	blank := func(x Disk) bool { return x.Content == ContentBlank || x.Content == "" }
	var d *Disk
	for _, pick := range []func(Disk) bool{
		func(x Disk) bool { return blank(x) && fixed(x) },
		blank,
		func(x Disk) bool { return x.Content != ContentForeign && fixed(x) },
		func(x Disk) bool { return x.Content != ContentForeign },
	} {
		for i := range c {
			if d == nil && pick(c[i]) {
				d = &c[i]
			}
		}
	}
	return d
}

// stableArg is the storage_init argument that names d by its most stable identity.
func stableArg(d Disk) string { return "storage_init=" + StableSpec(d) }

// StableSpec is the storage_init item that names d by its most stable
// identity: serial, WWN, by-id or by-path name, else its path.
func StableSpec(d Disk) string {
	switch {
	case d.Serial != "" && !strings.ContainsAny(d.Serial, " \t,;"):
		return "serial:" + d.Serial
	case d.WWN != "":
		return "wwn:" + d.WWN
	case len(d.ByID) > 0:
		return "/dev/disk/by-id/" + d.ByID[0]
	case d.ByPath != "":
		return "/dev/disk/by-path/" + d.ByPath
	}
	return d.Path
}
