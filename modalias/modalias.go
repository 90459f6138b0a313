// Package modalias picks the kernel modules that the machine's hardware needs. It
// matches the modalias of every device under /sys against modules.alias with
// fnmatch's rules, as udev and kmod do, so that /init loads the driver of each
// device present and skips the ones for hardware the machine does not have.
package modalias

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ProbedBuses are the buses whose devices all exist once their parent's driver
// has loaded: firmware tables (acpi), PCI, virtio, platform and the hypervisor
// buses. A module with an alias on one of them is loaded only for a device that
// matches. Children on the other buses (SCSI targets, USB devices) appear later,
// when a controller finishes scanning, so their class drivers (sd_mod,
// usb_storage) are loaded whenever they are listed, and the probe waits for the
// target disk instead. The cpu and dmi aliases are not a device's driver but
// optional accelerators and quirks (aesni_intel, crc32c_intel): loading them runs
// the crypto self-tests, seconds under emulation, and the kernel asks for an
// algorithm when something needs it.
var ProbedBuses = map[string]bool{
	"pci": true, "virtio": true, "acpi": true, "platform": true, "vmbus": true, "xen": true, "of": true,
}

// LateBuses are the buses whose devices appear only after their controller's
// driver has scanned for them: SCSI targets behind an HBA, USB devices behind a
// host controller, MMC and SDIO cards. Their drivers (sd_mod, sr_mod,
// usb_storage, uas, usbhid) cannot wait for a device at boot, so /init loads
// them once their bus exists (/sys/bus/scsi appears with the first SCSI host
// driver) and then waits for the target disk instead.
var LateBuses = map[string]bool{"scsi": true, "usb": true, "mmc": true, "sdio": true}

// Alias is one line of modules.alias: a device pattern and the module that
// drives it.
type Alias struct {
	Pattern string
	Module  string
}

// Table is a parsed modules.alias.
type Table struct {
	aliases []Alias
	byBus   map[string][]int    // bus prefix (before the first ':') → indexes into aliases
	bound   map[string]bool     // modules with an alias on a probed bus
	late    map[string][]string // module → the late buses it has aliases on
}

// Parse reads modules.alias ("alias PATTERN MODULE" lines; others are ignored).
// Module names are normalised to underscores.
func Parse(r io.Reader) (*Table, error) {
	t := &Table{byBus: map[string][]int{}, bound: map[string]bool{}, late: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "alias" {
			continue
		}
		a := Alias{Pattern: f[1], Module: Normalize(f[2])}
		bus := busOf(a.Pattern)
		t.byBus[bus] = append(t.byBus[bus], len(t.aliases))
		t.aliases = append(t.aliases, a)
		if ProbedBuses[strings.TrimRight(bus, "*")] {
			t.bound[a.Module] = true
		}
		if LateBuses[bus] && !slices.Contains(t.late[a.Module], bus) {
			t.late[a.Module] = append(t.late[a.Module], bus)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules.alias: %w", err)
	}
	return t, nil
}

// ReadFile parses the modules.alias at path.
func ReadFile(path string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Len is how many aliases the table holds.
func (t *Table) Len() int { return len(t.aliases) }

// DeviceBound reports whether module drives devices on a probed bus, so that it
// is only needed when such a device is present.
func (t *Table) DeviceBound(module string) bool { return t.bound[Normalize(module)] }

// LateBusesOf returns the LateBuses that module has aliases on, whose devices
// appear after boot's scan of the probed buses; none for most modules.
func (t *Table) LateBusesOf(module string) []string { return t.late[Normalize(module)] }

// Match returns the modules whose alias patterns match modalias, each once, in
// the order modules.alias lists them.
func (t *Table) Match(modalias string) []string {
	var out []string
	seen := map[string]bool{}
	try := func(idx []int) {
		for _, i := range idx {
			a := t.aliases[i]
			if !seen[a.Module] && Glob(a.Pattern, modalias) {
				seen[a.Module] = true
				out = append(out, a.Module)
			}
		}
	}
	try(t.byBus[busOf(modalias)])
	for bus, idx := range t.byBus { // patterns whose bus part is itself a wildcard ("acpi*:…")
		if strings.ContainsAny(bus, "*?[") {
			try(idx)
		}
	}
	return out
}

// busOf is the part of a modalias or pattern before its first ':'.
func busOf(s string) string {
	bus, _, _ := strings.Cut(s, ":")
	return bus
}

// Normalize writes a module name the way the kernel does, with '_' for '-'.
func Normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

// Scan returns the modalias of every device under sys (normally /sys), each once:
// the devices of each bus (sys/bus/*/devices/*, the list udev's coldplug walks),
// then the CPU and the firmware's DMI identity, which belong to no bus. Unreadable
// files are skipped: a device that goes away during the scan has nothing to load.
func Scan(sys string) ([]string, error) {
	return NewScanner(sys).Scan()
}

// Scanner scans sysfs again and again, as /init does after each round of
// drivers, reading the modalias file only of devices it has not seen: a
// device's modalias does not change, and under emulation each read costs.
type Scanner struct {
	sys   string
	seen  map[string]string // modalias file → its content ("" when unreadable)
	buses map[string]bool
}

// Buses returns the names of the buses the last Scan found registered: a bus
// type appears under sys/bus when its core driver loads (scsi with the first
// SCSI host driver, usb with a host controller's).
func (s *Scanner) Buses() map[string]bool { return s.buses }

// NewScanner returns a Scanner of sys.
func NewScanner(sys string) *Scanner { return &Scanner{sys: sys, seen: map[string]string{}} }

// Scan returns what the package's Scan does, reading only new devices.
func (s *Scanner) Scan() ([]string, error) {
	buses, err := os.ReadDir(filepath.Join(s.sys, "bus"))
	if err != nil {
		return nil, fmt.Errorf("scan %s for modalias: %w", s.sys, err)
	}
	s.buses = make(map[string]bool, len(buses))
	var files []string
	for _, b := range buses {
		s.buses[b.Name()] = true
		devs, _ := os.ReadDir(filepath.Join(s.sys, "bus", b.Name(), "devices"))
		for _, d := range devs {
			files = append(files, filepath.Join(s.sys, "bus", b.Name(), "devices", d.Name(), "modalias"))
		}
	}
	files = append(files, filepath.Join(s.sys, "devices/system/cpu/modalias"), filepath.Join(s.sys, "devices/virtual/dmi/id/modalias"))
	var out []string
	seen := map[string]bool{}
	for _, f := range files {
		m, ok := s.seen[f]
		if !ok {
			if b, err := os.ReadFile(f); err == nil {
				m = strings.TrimSpace(string(b))
				s.seen[f] = m
			}
		}
		if m != "" && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// Glob reports whether name matches the fnmatch(3) pattern without flags, as kmod
// matches modules.alias: '*' matches any run, '?' one byte, and '[…]' a class,
// negated by '!' or '^', with ranges; '\' quotes the next byte.
func Glob(pattern, name string) bool {
	p, n := 0, 0
	starP, starN := -1, 0
	for n < len(name) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				starP, starN = p, n
				p++
				continue
			case '?':
				p++
				n++
				continue
			case '[':
				if ok, next, valid := matchClass(pattern, p, name[n]); valid {
					if ok {
						p, n = next, n+1
						continue
					}
				} else if name[n] == '[' { // an unclosed '[' is literal
					p, n = p+1, n+1
					continue
				}
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == name[n] {
					p, n = p+2, n+1
					continue
				}
			default:
				if c == name[n] {
					p, n = p+1, n+1
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starN++
		p, n = starP+1, starN
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

// matchClass matches c against the class that starts at pattern[p] ('['). It
// returns whether c is in it, the index after the class, and whether the class
// is closed at all.
func matchClass(pattern string, p int, c byte) (ok bool, next int, valid bool) {
	i := p + 1
	negate := false
	if i < len(pattern) && (pattern[i] == '!' || pattern[i] == '^') {
		negate = true
		i++
	}
	first := true
	for i < len(pattern) && (first || pattern[i] != ']') {
		first = false
		lo := pattern[i]
		if lo == '\\' && i+1 < len(pattern) {
			i++
			lo = pattern[i]
		}
		hi := lo
		if i+2 < len(pattern) && pattern[i+1] == '-' && pattern[i+2] != ']' {
			hi = pattern[i+2]
			i += 2
		}
		if lo <= c && c <= hi {
			ok = true
		}
		i++
	}
	if i >= len(pattern) {
		return false, 0, false
	}
	return ok != negate, i + 1, true
}
