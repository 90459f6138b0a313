package early

import (
	"bufio"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/modalias"
)

// ModuleListPath is where the initramfs builder writes the modules /init loads, one a line.
const ModuleListPath = "/etc/nodeinit/modules"

// ModuleReport says which modules were asked for and what happened to each.
type ModuleReport struct {
	Loaded  []string          // loaded now, already loaded, or built into the kernel
	Skipped []string          // drivers that no device or bus here matches (modules.alias)
	Absent  []string          // loaded, but found no device or firmware (ENODEV: not this machine)
	Failed  map[string]string // module → error
	Rounds  int               // sysfs scans: a loaded bus driver (virtio_pci) adds devices to match
	NoAlias string            // why every listed module was loaded without matching, if it was
	// Where the time went: reading the module tables, scanning sysfs, and
	// loading (all rounds together).
	Tables, Scans, Loads time.Duration
}

// Phases says where the time went, e.g. "tables 31ms, 3 scans 62ms, loads 120ms".
func (r ModuleReport) Phases() string {
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("tables %s, %d scan(s) %s, loads %s", ms(r.Tables), r.Rounds, ms(r.Scans), ms(r.Loads))
}

// String summarises the report in one line.
func (r ModuleReport) String() string {
	s := fmt.Sprintf("%d loaded", len(r.Loaded))
	if len(r.Skipped) > 0 {
		s += fmt.Sprintf(", %d skipped without a matching device (%s)", len(r.Skipped), strings.Join(r.Skipped, " "))
	}
	if r.Rounds > 0 {
		s += fmt.Sprintf(", %d sysfs scan(s)", r.Rounds)
	}
	if r.NoAlias != "" {
		s += ", all loaded: " + r.NoAlias
	}
	if len(r.Absent) > 0 {
		s += fmt.Sprintf(", %d found no device (%s)", len(r.Absent), strings.Join(r.Absent, " "))
	}
	if len(r.Failed) > 0 {
		names := make([]string, 0, len(r.Failed))
		for n := range r.Failed {
			names = append(names, n)
		}
		sort.Strings(names)
		s += fmt.Sprintf(", %d failed: %s", len(names), strings.Join(names, " "))
	}
	return s
}

// ForcedModules are the modules the command line asks to load whether or not a
// device matches: systemd's modules-load= and rd.modules-load=, and dracut's
// rd.driver.pre=, each a comma-separated list that may be given more than once.
// They are the way round a driver whose device's modalias its aliases miss.
func ForcedModules(line string) []string {
	var out []string
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if !ok || (k != "modules-load" && k != "rd.modules-load" && k != "rd.driver.pre") {
			continue
		}
		for _, n := range strings.Split(v, ",") {
			if n = modalias.Normalize(strings.TrimSpace(n)); n != "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// maxScanRounds bounds the scan-and-load rounds: PCI, then the virtio devices a
// loaded virtio_pci adds, leave a margin for one more bus level.
const maxScanRounds = 4

// loadForDevices is LoadModules' choice of what to load and when. Modules that
// table says are device-bound wait for a device whose modalias (from scan)
// matches, and drivers of a late bus (modalias.LateBuses: sd_mod, usb_storage)
// wait for their bus to be registered (scan's buses); the rest, and forced, go
// in the first round. Each round is handed to load, then scan runs again for the
// devices and buses the loaded drivers added. It returns the modules nothing
// matched, the scans made, and a scan error, after which every module still
// waiting is loaded. A nil table loads everything at once.
func loadForDevices(names, forced []string, table *modalias.Table, scan func() ([]string, map[string]bool, error), load func([]string)) (skipped []string, rounds int, scanErr error) {
	pending := map[string]bool{}
	round := slices.Clone(forced)
	for _, n := range names {
		if slices.Contains(forced, modalias.Normalize(n)) {
			continue
		}
		if table != nil && (table.DeviceBound(n) || len(table.LateBusesOf(n)) > 0) {
			pending[modalias.Normalize(n)] = true
		} else {
			round = append(round, n)
		}
	}
	take := func(m string) {
		if pending[m] {
			delete(pending, m)
			round = append(round, m)
		}
	}
	for ; rounds < maxScanRounds && len(pending) > 0; rounds++ {
		devices, buses, err := scan()
		if err != nil {
			scanErr = err
			round = append(round, slices.Sorted(maps.Keys(pending))...)
			clear(pending)
		}
		for _, d := range devices {
			for _, m := range table.Match(d) {
				take(m)
			}
			// The virtio device a virtio-pci device becomes is known now: its
			// driver loads in this round, beside virtio_pci, not after a rescan.
			if child, ok := modalias.VirtioChild(d); ok {
				for _, m := range table.Match(child) {
					take(m)
				}
			}
		}
		for _, m := range slices.Sorted(maps.Keys(pending)) {
			if slices.ContainsFunc(table.LateBusesOf(m), func(b string) bool { return buses[b] }) {
				take(m)
			}
		}
		if len(round) == 0 {
			rounds++
			break
		}
		load(round)
		round = nil
	}
	if len(round) > 0 {
		load(round)
	}
	return slices.Sorted(maps.Keys(pending)), rounds, scanErr
}

// ReadModuleList reads module names from path, one a line; '#' starts a comment.
func ReadModuleList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read module list: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read module list %s: %w", path, err)
	}
	return names, nil
}
