package tui

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
)

// The layout page sizes the storage_vol volumes, with each one's default for
// the chosen disk, and checks on every key press that the layout fits, saying
// how many MiB are missing when it does not. disk.PlanLayout and
// disk.PlanAppDataLayout decide, as they do for plan.Plan.

// volume is one storage_vol field of the layout page.
type volume struct {
	name  string // storage_vol name
	label string
	part  string // the partition that shows its default size
}

var (
	volumes = []volume{
		{cmdline.VolBoot, "Boot (ESP)", disk.LabelESP},
		{cmdline.VolRoot, "Root, per slot", disk.LabelRootA},
		{cmdline.VolConfig, "Config", disk.LabelConfig},
		{cmdline.VolLogging, "Logging", disk.LabelLogging},
		{cmdline.VolSwap, "Swap", disk.LabelSwap},
		{cmdline.VolData, "Data", disk.LabelData},
	}
	appVolumes = []volume{
		{cmdline.VolSwap2, "Swap2 (app-data)", "node-swap2"},
		{cmdline.VolData2, "Data2 (app-data)", disk.AppDataLabel(1)},
	}
)

// pageVolumes are the fields the layout page shows: Swap2 and Data2 only
// with app-data disks.
func (s *State) pageVolumes() []volume {
	if len(s.appData) > 0 {
		return append(append([]volume(nil), volumes...), appVolumes...)
	}
	return volumes
}

func (s *State) layoutItems() []item {
	var it []item
	for _, v := range s.pageVolumes() {
		it = append(it, item{id: "vol:" + v.name, field: s.field("vol:" + v.name)})
	}
	return it
}

// vols are the sizes typed, by storage_vol name; an empty field is absent.
func (s *State) vols() (map[string]int64, error) {
	out := map[string]int64{}
	for _, v := range append(volumes, appVolumes...) {
		t := strings.TrimSpace(s.field("vol:" + v.name).String())
		if t == "" {
			continue
		}
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("%s: %q is not a size in MiB (a whole number, 0 for none or -1 for the rest)", v.label, t)
		}
		out[v.name] = n
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// layoutTokens is storage_vol in the named form, for the sizes typed.
func (s *State) layoutTokens() []string {
	vols, err := s.vols()
	if err != nil || len(vols) == 0 {
		return nil
	}
	var f []string
	for _, v := range append(volumes, appVolumes...) {
		if n, ok := vols[v.name]; ok && (len(s.appData) > 0 || !isAppVol(v.name)) {
			f = append(f, fmt.Sprintf("%d,%s", n, v.name))
		}
	}
	if len(f) == 0 {
		return nil
	}
	return []string{"storage_vol=" + strings.Join(f, ":")}
}

func isAppVol(name string) bool { return name == cmdline.VolSwap2 || name == cmdline.VolData2 }

// defaults are the default sizes on d, as text by storage_vol name.
func defaults(d disk.Disk) map[string]string {
	out := map[string]string{cmdline.VolData: "the rest", cmdline.VolSwap2: "0: none", cmdline.VolData2: "the rest"}
	if l, err := disk.PlanLayout(d.SizeBytes, d.LogicalSectorSize, nil); err == nil {
		for _, v := range volumes {
			if p, ok := l.Find(v.part); ok && v.name != cmdline.VolData {
				out[v.name] = strconv.FormatInt(p.Size>>20, 10)
			}
		}
	}
	return out
}

// fit checks the layout typed on the chosen disks: whether it fits, and a
// line per disk saying how (the sizes) or by how many MiB it does not.
func (s *State) fit() (bool, []string) {
	vols, err := s.vols()
	if err != nil {
		return false, []string{err.Error()}
	}
	d, ok := s.Facts.Disk(s.target)
	if !ok {
		return false, []string{"no install disk is chosen"}
	}
	l, err := disk.PlanLayout(d.SizeBytes, d.LogicalSectorSize, vols)
	fits, out := fitLine(*d, d.Path, l, err, disk.MinDiskBytes, vols)
	if fits {
		out = append(out, l.Notices...)
		if img := s.Facts.Image; img != nil && img.RootSize > 0 {
			if a, ok := l.Find(disk.LabelRootA); ok && a.Size < img.RootSize {
				out = append(out, fmt.Sprintf("The root slot (%d MiB) is smaller than the image (%d MiB): raise Root", a.Size>>20, (img.RootSize+disk.MiB-1)>>20))
				fits = false
			}
		}
	}
	for i, name := range s.appData {
		a, ok := s.Facts.Disk(name)
		if !ok {
			continue
		}
		l, err := disk.PlanAppDataLayout(a.SizeBytes, a.LogicalSectorSize, i+1, vols)
		ok, lines := fitLine(*a, fmt.Sprintf("%s (app-data %d)", a.Path, i+1), l, err, disk.MinAppDataDiskBytes, vols)
		fits = fits && ok
		out = append(out, lines...)
	}
	return fits, out
}

// fitLine says how layout l (or its error) fits d, named name; min is the
// smallest disk for vols, for the MiB missing.
func fitLine(d disk.Disk, name string, l disk.Layout, err error, min func(int, map[string]int64) (int64, error), vols map[string]int64) (bool, []string) {
	switch {
	case errors.Is(err, disk.ErrDiskTooSmall):
		need, _ := min(d.LogicalSectorSize, vols)
		return false, []string{missing(name, need, d.SizeBytes)}
	case err != nil:
		return false, []string{name + ": " + refusal(err)}
	}
	return true, []string{"Fits " + name + ": " + summary(l)}
}

// missing says by how many MiB a layout does not fit a disk.
func missing(path string, need, have int64) string {
	return fmt.Sprintf("Does not fit %s: %d MiB missing (this layout needs %d MiB; the disk has %d MiB)",
		path, need>>20-have>>20, need>>20, have>>20)
}

// summary lists a layout's sizes in MiB, e.g. "ESP 512, root 2 x 2048, …".
func summary(l disk.Layout) string {
	sizes := map[string][]int64{}
	var order []string
	for _, p := range l.Partitions {
		name := p.Volume
		switch {
		case p.Name == disk.LabelESP:
			name = "ESP"
		case strings.HasPrefix(p.Name, "node-app"):
			name = "data"
		case p.Name == "node-swap2":
			name = "swap"
		}
		if _, ok := sizes[name]; !ok {
			order = append(order, name)
		}
		sizes[name] = append(sizes[name], p.Size>>20)
	}
	var f []string
	for _, name := range order {
		if n := sizes[name]; len(n) > 1 {
			f = append(f, fmt.Sprintf("%s %d x %d", name, len(n), n[0]))
		} else {
			f = append(f, fmt.Sprintf("%s %d", name, n[0]))
		}
	}
	return strings.Join(f, ", ") + " MiB"
}

// layoutDone lets the layout through only when it fits every chosen disk.
func (s *State) layoutDone() error {
	if ok, lines := s.fit(); !ok {
		for _, l := range lines {
			if !strings.HasPrefix(l, "Fits ") {
				return errors.New(l)
			}
		}
		return errors.New(lines[0])
	}
	return nil
}

func (s *State) layoutBody(b *body, w int) {
	d, _ := s.Facts.Disk(s.target)
	if d == nil {
		return
	}
	def := defaults(*d)
	b.para(0, w, 1, fmt.Sprintf("Partitions of %s (%s, %d-byte sectors), in MiB. An empty field takes the default, 0 leaves the volume out, -1 gives it the rest of the disk.",
		d.Path, sizeText(d.SizeBytes), d.LogicalSectorSize))
	b.nl()
	for i, v := range s.pageVolumes() {
		if i == len(volumes) {
			var paths []string
			for _, name := range s.appData {
				paths = append(paths, "/dev/"+name)
			}
			b.nl()
			b.para(0, w, 1, "Every app-data disk ("+strings.Join(paths, ", ")+"):")
		}
		id := "vol:" + v.name
		b.text(" %s %s", s.marker(id), pad(v.label, 18))
		b.add(s.focusAttr(id), "[%s]", pad(s.field(id).show(8), 8))
		note := "default " + def[v.name]
		if v.name == cmdline.VolRoot {
			note += " (two slots, a and b)"
		}
		b.text("  %s", note)
		b.nl()
	}
	b.nl()
	ok, lines := s.fit()
	for _, l := range lines {
		a := attr(0)
		if !ok && !strings.HasPrefix(l, "Fits ") {
			a = attrBold
		}
		b.para(a, w, 1, l)
	}
	b.nl()
	s.buttons(b, "next", "back")
}
