package boot

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
)

// SortKey is the sort-key of every entry nodeinit writes.
const SortKey = "nodeinit"

// SlotOption is the kernel argument that tells nodeinit which slot to boot.
const SlotOption = "nodeinit.slot"

// ErrNoEntry means the ESP holds no loader entry for the slot asked about.
var ErrNoEntry = errors.New("no loader entry")

// Entry is one Boot Loader Specification Type #1 entry for a slot.
type Entry struct {
	Slot    string   // a or b
	Title   string   // menu title; empty means "Node <Version> (slot <Slot>)"
	Version string   // image version, shown in the menu; no white space
	Options []string // kernel arguments; nodeinit.slot=<Slot> is added first and any other nodeinit.slot removed
	// Tries > 0 turns on automatic boot assessment: the file is named
	// node-<slot>+<Tries>.conf and systemd-boot counts down on every boot until
	// the entry is blessed (Bless) or runs out. 0 writes node-<slot>.conf.
	Tries int
	// Generation orders entries: higher sorts first. 0 means one higher than any
	// entry on the ESP, which puts a new upgrade entry before the running one.
	Generation int
}

// EntryState is an entry as found on the ESP, with its boot counters.
type EntryState struct {
	Entry
	File      string // base name, e.g. node-b+2-1.conf
	Counting  bool   // the name carries +LEFT[-DONE]
	TriesLeft int    // meaningful when Counting
	TriesDone int    // meaningful when Counting
	SortKey   string
}

// Blessed reports an entry without boot counting: a known-good boot.
func (s EntryState) Blessed() bool { return !s.Counting }

// Bad reports an entry that ran out of tries: systemd-boot sorts it last.
func (s EntryState) Bad() bool { return s.Counting && s.TriesLeft == 0 }

// entryFileName is node-<slot>[+left[-done]].conf.
func entryFileName(slot string, counting bool, left, done int) string {
	switch {
	case !counting:
		return "node-" + slot + ".conf"
	case done == 0:
		return fmt.Sprintf("node-%s+%d.conf", slot, left)
	default:
		return fmt.Sprintf("node-%s+%d-%d.conf", slot, left, done)
	}
}

// parseEntryName splits node-b+2-1.conf into its slot and counters, following
// the systemd automatic boot assessment naming.
func parseEntryName(name string) (slot string, counting bool, left, done int, ok bool) {
	base, found := strings.CutSuffix(name, ".conf")
	if !found || !strings.HasPrefix(base, "node-") {
		return "", false, 0, 0, false
	}
	base = strings.TrimPrefix(base, "node-")
	if i := strings.LastIndexByte(base, '+'); i >= 0 {
		counter := base[i+1:]
		base = base[:i]
		l, d, hasDone := strings.Cut(counter, "-")
		var err error
		if left, err = strconv.Atoi(l); err != nil || left < 0 {
			return "", false, 0, 0, false
		}
		if hasDone {
			if done, err = strconv.Atoi(d); err != nil || done < 0 {
				return "", false, 0, 0, false
			}
		}
		counting = true
	}
	if ValidSlot(base) != nil {
		return "", false, 0, 0, false
	}
	return base, counting, left, done, true
}

// WriteEntry writes the loader entry for e.Slot and removes any older entry
// file of that slot (a different counter state). Secrets and line breaks in
// the options are refused.
func WriteEntry(esp FS, e Entry) error {
	if err := ValidSlot(e.Slot); err != nil {
		return fmt.Errorf("write entry: %w", err)
	}
	if e.Tries < 0 {
		return fmt.Errorf("write entry for slot %s: tries %d is negative (hint: nodeinit.tries=3)", e.Slot, e.Tries)
	}
	if e.Version == "" || strings.ContainsAny(e.Version, " \t\r\n") {
		return fmt.Errorf("write entry for slot %s: version %q must be one word", e.Slot, e.Version)
	}
	if strings.ContainsAny(e.Title, "\r\n") {
		return fmt.Errorf("write entry for slot %s: title contains a line break", e.Slot)
	}
	opts, err := entryOptions(e.Slot, e.Options)
	if err != nil {
		return fmt.Errorf("write entry for slot %s: %w", e.Slot, err)
	}
	existing, err := Entries(esp)
	if err != nil {
		return fmt.Errorf("write entry for slot %s: %w", e.Slot, err)
	}
	if e.Generation == 0 {
		for _, x := range existing {
			e.Generation = max(e.Generation, x.Generation)
		}
		e.Generation++
	}
	if e.Title == "" {
		e.Title = fmt.Sprintf("Node %s (slot %s)", e.Version, e.Slot)
	}
	if IsGrub(esp) {
		return writeGrubEntry(esp, e, opts)
	}
	name := entryFileName(e.Slot, e.Tries > 0, e.Tries, 0)
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by nodeinit. Boot counting: https://systemd.io/AUTOMATIC_BOOT_ASSESSMENT/\n")
	fmt.Fprintf(&b, "title %s\n", e.Title)
	fmt.Fprintf(&b, "sort-key %s\n", SortKey)
	fmt.Fprintf(&b, "version %d-%s\n", e.Generation, e.Version)
	fmt.Fprintf(&b, "linux /%s/%s/%s\n", SlotDirPrefix, e.Slot, KernelName)
	fmt.Fprintf(&b, "initrd /%s/%s/%s\n", SlotDirPrefix, e.Slot, InitrdName)
	fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	if err := esp.WriteFile(path.Join(EntriesDir, name), []byte(b.String())); err != nil {
		return fmt.Errorf("write entry %s: %w", name, err)
	}
	for _, x := range existing {
		if x.Slot == e.Slot && x.File != name {
			if err := esp.Remove(path.Join(EntriesDir, x.File)); err != nil {
				return fmt.Errorf("write entry %s: remove old %s: %w", name, x.File, err)
			}
		}
	}
	return nil
}

// entryOptions puts nodeinit.slot=<slot> first, drops other nodeinit.slot
// values and refuses secrets, which must never reach a boot entry.
func entryOptions(slot string, in []string) ([]string, error) {
	out := []string{SlotOption + "=" + slot}
	for _, o := range in {
		if o == "" {
			continue
		}
		if strings.ContainsAny(o, "\r\n") {
			return nil, fmt.Errorf("kernel option %q contains a line break", o)
		}
		key, _, _ := strings.Cut(o, "=")
		key = strings.ReplaceAll(strings.ToLower(key), "-", "_")
		if key == SlotOption {
			continue
		}
		if IsSecretKey(key) {
			return nil, fmt.Errorf("kernel option %s is a secret and must not be copied into the boot entry", key)
		}
		out = append(out, o)
	}
	return out, nil
}

// IsSecretKey reports kernel command line keys whose values are secrets; it is
// cmdline.IsSecretKey, the one rule.
func IsSecretKey(key string) bool { return cmdline.IsSecretKey(key) }

// Entries reads every nodeinit entry (node-*.conf) on the ESP, in the order
// systemd-boot sorts them: the first one is what "default node-*" boots.
//
// On a GRUB ESP (IsGrub) they are grub.cfg's entries with grubenv's counters, in
// the same order, which is the order grub.cfg boots them in.
func Entries(esp FS) ([]EntryState, error) {
	if IsGrub(esp) {
		return grubEntries(esp)
	}
	des, err := esp.ReadDir(EntriesDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read loader entries: %w", err)
	}
	var out []EntryState
	for _, de := range des {
		slot, counting, left, done, ok := parseEntryName(de.Name())
		if !ok || !de.Type().IsRegular() {
			continue
		}
		data, err := esp.ReadFile(path.Join(EntriesDir, de.Name()))
		if err != nil {
			return nil, fmt.Errorf("read loader entry %s: %w", de.Name(), err)
		}
		s := parseEntryBody(data)
		s.Slot, s.File, s.Counting, s.TriesLeft, s.TriesDone = slot, de.Name(), counting, left, done
		if counting {
			s.Tries = left + done
		}
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return compareEntries(out[i], out[j]) < 0 })
	return out, nil
}

func parseEntryBody(data []byte) EntryState {
	var s EntryState
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, _ := strings.Cut(line, " ")
		val = strings.TrimSpace(val)
		switch key {
		case "title":
			s.Title = val
		case "sort-key":
			s.SortKey = val
		case "version":
			gen, v, found := strings.Cut(val, "-")
			if n, err := strconv.Atoi(gen); err == nil && found {
				s.Generation, s.Version = n, v
			} else {
				s.Version = val
			}
		case "options":
			s.Options = append(s.Options, strings.Fields(val)...)
		}
	}
	return s
}

// compareEntries mirrors systemd-boot's boot_entry_compare for our entries:
// no tries left last; sort-key ascending; version (generation) descending;
// file name descending; more tries left first; fewer tries done first.
func compareEntries(a, b EntryState) int {
	if c := cmpBool(a.Bad(), b.Bad()); c != 0 {
		return c
	}
	if c := cmpBool(a.SortKey == "", b.SortKey == ""); c != 0 {
		return c
	}
	if a.SortKey != "" && b.SortKey != "" {
		if c := strings.Compare(a.SortKey, b.SortKey); c != 0 {
			return c
		}
		if c := -versionCompare(a.versionLine(), b.versionLine()); c != 0 {
			return c
		}
	}
	if c := -versionCompare(a.id(), b.id()); c != 0 {
		return c
	}
	if !a.Counting || !b.Counting {
		return 0
	}
	if a.TriesLeft != b.TriesLeft {
		return b.TriesLeft - a.TriesLeft
	}
	return a.TriesDone - b.TriesDone
}

// id is the entry id systemd-boot compares: the file name without counters.
func (s EntryState) id() string { return entryFileName(s.Slot, false, 0, 0) }

func (s EntryState) versionLine() string {
	if s.Generation == 0 {
		return s.Version
	}
	return fmt.Sprintf("%d-%s", s.Generation, s.Version)
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}

// versionCompare compares version strings the way strverscmp does for the
// forms we write: runs of digits compare numerically, other runs bytewise.
func versionCompare(a, b string) int {
	for a != "" && b != "" {
		ra, restA := leadingRun(a)
		rb, restB := leadingRun(b)
		da, db := isDigit(ra[0]), isDigit(rb[0])
		var c int
		switch {
		case da && db:
			na, nb := strings.TrimLeft(ra, "0"), strings.TrimLeft(rb, "0")
			if c = len(na) - len(nb); c == 0 {
				c = strings.Compare(na, nb)
			}
		case da != db:
			// systemd: a digit run sorts after a non-digit run.
			if da {
				c = 1
			} else {
				c = -1
			}
		default:
			c = strings.Compare(ra, rb)
		}
		if c != 0 {
			if c < 0 {
				return -1
			}
			return 1
		}
		a, b = restA, restB
	}
	return strings.Compare(a, b)
}

func leadingRun(s string) (run, rest string) {
	d := isDigit(s[0])
	i := 1
	for i < len(s) && isDigit(s[i]) == d {
		i++
	}
	return s[:i], s[i:]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// EntryFor returns the slot's entry, or ErrNoEntry.
func EntryFor(esp FS, slot string) (EntryState, error) {
	all, err := Entries(esp)
	if err != nil {
		return EntryState{}, err
	}
	for _, e := range all {
		if e.Slot == slot {
			return e, nil
		}
	}
	return EntryState{}, fmt.Errorf("slot %s: %w on the ESP (hint: run an install or upgrade first)", slot, ErrNoEntry)
}

// Bless marks the slot's entry good by renaming node-<slot>+L-D.conf to
// node-<slot>.conf, which is what systemd-bless-boot does. An entry that is
// already blessed is left alone.
func Bless(esp FS, slot string) error {
	return renameCounted(esp, slot, func(EntryState) string { return entryFileName(slot, false, 0, 0) })
}

// MarkBad renames the slot's entry to node-<slot>+0-N.conf (what
// "systemd-bless-boot bad" does), so systemd-boot sorts it last.
func MarkBad(esp FS, slot string) error {
	return renameCounted(esp, slot, func(e EntryState) string {
		done := e.TriesDone
		if done == 0 {
			done = max(e.Tries, 1)
		}
		return entryFileName(slot, true, 0, done)
	})
}

func renameCounted(esp FS, slot string, newName func(EntryState) string) error {
	if err := ValidSlot(slot); err != nil {
		return fmt.Errorf("bless: %w", err)
	}
	e, err := EntryFor(esp, slot)
	if err != nil {
		return fmt.Errorf("bless: %w", err)
	}
	to := newName(e)
	if IsGrub(esp) {
		// The same verdict, in grubenv's counters instead of the file name.
		slot, counting, left, done, _ := parseEntryName(to)
		return setGrubCounters(esp, slot, counting, left, done)
	}
	if to == e.File {
		return nil
	}
	if err := esp.Rename(path.Join(EntriesDir, e.File), path.Join(EntriesDir, to)); err != nil {
		return fmt.Errorf("bless slot %s: rename %s to %s: %w", slot, e.File, to, err)
	}
	return nil
}

// RemoveSlotEntry deletes every entry file of the slot. No entry is not an error.
func RemoveSlotEntry(esp FS, slot string) error {
	if err := ValidSlot(slot); err != nil {
		return fmt.Errorf("remove entry: %w", err)
	}
	if IsGrub(esp) {
		return removeGrubEntry(esp, slot)
	}
	all, err := Entries(esp)
	if err != nil {
		return fmt.Errorf("remove entry for slot %s: %w", slot, err)
	}
	for _, e := range all {
		if e.Slot == slot {
			if err := esp.Remove(path.Join(EntriesDir, e.File)); err != nil {
				return fmt.Errorf("remove entry %s: %w", e.File, err)
			}
		}
	}
	return nil
}

// MarkSlot is `nodeinit bless` (and `bless --bad`): it renames the slot's entry
// as systemd-bless-boot does, then records the verdict in the ledger, so the
// ledger learns what boot counting decided. The entry goes first: it is what
// the firmware acts on, and the ledger follows it on the next boot anyway.
func MarkSlot(esp FS, slot string, good bool, at time.Time) error {
	mark, state, action := Bless, SlotGood, "bless"
	if !good {
		mark, state, action = MarkBad, SlotBad, "mark-bad"
	}
	if err := mark(esp, slot); err != nil {
		return err
	}
	l, err := ReadLedger(esp)
	if err != nil {
		return fmt.Errorf("%s slot %s: the entry is updated, but not the ledger: %w", action, slot, err)
	}
	if err := l.RecordSlot(at, slot, state, "", ""); err != nil {
		return err
	}
	if good {
		if err := l.SetActive(slot); err != nil {
			return err
		}
	}
	l.RecordAction(at, action, slot, "")
	return l.Write(esp)
}
