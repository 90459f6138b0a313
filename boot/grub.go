package boot

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// GRUB for BIOS. A node installed for BIOS (nodeinit.firmware=bios, or an
// install under BIOS whose initramfs carries GRUB) boots through GRUB's
// boot.img in the MBR and its core.img in the BIOS boot partition (see
// WriteBIOSBoot); core.img reads grub/grub.cfg from the ESP. The A/B model is
// the one of systemd-boot, with the boot counters in grub/grubenv instead of
// the entry file names:
//
//	systemd-boot                   GRUB (grubenv)
//	node-b.conf                    node_b_left unset: blessed, not counting
//	node-b+3.conf                  node_b_left=3 node_b_done=0
//	node-b+2-1.conf                node_b_left=2 node_b_done=1
//	node-b+0-3.conf (sorted last)  node_b_left=0 node_b_done=3 (skipped)
//
// grub.cfg holds one menuentry per slot entry, newest generation first, each
// with a "# nodeinit-entry {json}" line that is the entry as nodeinit reads it
// back (Entries), so that one file write (an atomic replace) changes the set
// of entries. At boot grub.cfg picks the first entry whose tries are not used
// up (or the first, when all are, as systemd-boot does), and the entry, when
// counting, moves one try from left to done with save_env before it loads the
// kernel. So the ledger reads the same EntryState either way, and Bless and
// MarkBad set or clear the grubenv counters where systemd-boot's renames the
// file. GRUB script has no arithmetic: the decrement is written out for each
// count the entry's budget allows (nodeinit.tries is at most 9).
const (
	GrubConfigPath = "grub/grub.cfg"
	GrubenvPath    = "grub/grubenv"
	// GrubTimeout is the seconds GRUB's menu shows, for picking the other
	// slot by hand (any key stops the countdown), as systemd-boot's does.
	GrubTimeout = 1

	grubMarker      = "# nodeinit-grub 1"
	grubEntryPrefix = "# nodeinit-entry "
)

// grubRecord is one entry as grub.cfg records it.
type grubRecord struct {
	Slot       string   `json:"slot"`
	Title      string   `json:"title"`
	Version    string   `json:"version"`
	Generation int      `json:"generation"`
	Tries      int      `json:"tries,omitempty"`
	Options    []string `json:"options"`
}

// IsGrub reports whether the ESP boots through nodeinit's GRUB configuration
// (a BIOS install) rather than systemd-boot's entries.
func IsGrub(esp FS) bool {
	data, err := esp.ReadFile(GrubConfigPath)
	return err == nil && bytes.Contains(data, []byte(grubMarker))
}

// InstallGrub writes grub/grub.cfg and grub/grubenv on the ESP for a BIOS
// install, keeping the entries and counters already there (it is
// idempotent); boot.img and core.img go to the disk (WriteBIOSBoot).
func InstallGrub(esp FS) error {
	if err := esp.MkdirAll("grub"); err != nil {
		return fmt.Errorf("install grub: %w", err)
	}
	env, err := readGrubenv(esp)
	if err != nil {
		env = Grubenv{}
	}
	if err := writeGrubenv(esp, env); err != nil {
		return err
	}
	var recs []grubRecord
	if IsGrub(esp) {
		if recs, err = readGrubRecords(esp); err != nil {
			return err
		}
	}
	return writeGrubConfig(esp, recs)
}

func readGrubenv(esp FS) (Grubenv, error) {
	data, err := esp.ReadFile(GrubenvPath)
	if err != nil {
		return nil, err
	}
	return ParseGrubenv(data)
}

func writeGrubenv(esp FS, env Grubenv) error {
	data, err := env.Bytes()
	if err != nil {
		return err
	}
	if old, err := esp.ReadFile(GrubenvPath); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := esp.WriteFile(GrubenvPath, data); err != nil {
		return fmt.Errorf("write %s: %w", GrubenvPath, err)
	}
	return nil
}

func leftVar(slot string) string { return "node_" + slot + "_left" }
func doneVar(slot string) string { return "node_" + slot + "_done" }

// readGrubRecords reads the entries grub.cfg records, in file order.
func readGrubRecords(esp FS) ([]grubRecord, error) {
	data, err := esp.ReadFile(GrubConfigPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", GrubConfigPath, err)
	}
	var recs []grubRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		js, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), grubEntryPrefix)
		if !ok {
			continue
		}
		var r grubRecord
		if err := json.Unmarshal([]byte(js), &r); err != nil {
			return nil, fmt.Errorf("read %s: entry %q: %w", GrubConfigPath, js, err)
		}
		if ValidSlot(r.Slot) != nil {
			continue
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// grubEntries is Entries on a GRUB ESP: grub.cfg's entries with grubenv's
// counters. A torn or missing grubenv (GRUB rewrites it in place) reads as no
// counters: every entry blessed, which is what GRUB's load_env then sees too.
func grubEntries(esp FS) ([]EntryState, error) {
	recs, err := readGrubRecords(esp)
	if err != nil {
		return nil, err
	}
	env, err := readGrubenv(esp)
	if err != nil {
		env = Grubenv{}
	}
	out := make([]EntryState, 0, len(recs))
	for _, r := range recs {
		s := EntryState{Entry: Entry{Slot: r.Slot, Title: r.Title, Version: r.Version, Options: r.Options, Tries: r.Tries, Generation: r.Generation},
			SortKey: SortKey}
		// A count grub.cfg does not know (not a number as it writes them) is
		// never counted down and never "0": GRUB boots that entry as blessed.
		raw := env[leftVar(r.Slot)]
		if left, err := strconv.Atoi(raw); err == nil && left >= 0 && strconv.Itoa(left) == raw {
			s.Counting, s.TriesLeft = true, left
			s.TriesDone, _ = strconv.Atoi(env[doneVar(r.Slot)])
			s.Tries = s.TriesLeft + s.TriesDone
		}
		s.File = entryFileName(r.Slot, s.Counting, s.TriesLeft, s.TriesDone) + " (grubenv)"
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool { return compareEntries(out[i], out[j]) < 0 })
	return out, nil
}

// writeGrubEntry writes e (checked and completed by WriteEntry, its options
// final) into grub.cfg, replacing the slot's old entry. The counters go first:
// until grub.cfg is replaced the slot's new counters belong to no entry (an
// upgrade removed the slot's old one before writing the slot).
func writeGrubEntry(esp FS, e Entry, opts []string) error {
	env, err := readGrubenv(esp)
	if err != nil {
		env = Grubenv{}
	}
	delete(env, leftVar(e.Slot))
	delete(env, doneVar(e.Slot))
	if e.Tries > 0 {
		env[leftVar(e.Slot)] = strconv.Itoa(e.Tries)
		env[doneVar(e.Slot)] = "0"
	}
	if err := writeGrubenv(esp, env); err != nil {
		return fmt.Errorf("write entry for slot %s: %w", e.Slot, err)
	}
	recs, err := readGrubRecords(esp)
	if err != nil {
		return err
	}
	recs = withoutSlot(recs, e.Slot)
	recs = append(recs, grubRecord{Slot: e.Slot, Title: e.Title, Version: e.Version, Generation: e.Generation, Tries: e.Tries, Options: opts})
	return writeGrubConfig(esp, recs)
}

func withoutSlot(recs []grubRecord, slot string) []grubRecord {
	out := recs[:0:0]
	for _, r := range recs {
		if r.Slot != slot {
			out = append(out, r)
		}
	}
	return out
}

// removeGrubEntry drops the slot's entry from grub.cfg.
func removeGrubEntry(esp FS, slot string) error {
	recs, err := readGrubRecords(esp)
	if err != nil {
		return err
	}
	kept := withoutSlot(recs, slot)
	if len(kept) == len(recs) {
		return nil
	}
	return writeGrubConfig(esp, kept)
}

// setGrubCounters sets the slot's counters in grubenv: counting with left
// and done, or not counting (blessed).
func setGrubCounters(esp FS, slot string, counting bool, left, done int) error {
	env, err := readGrubenv(esp)
	if err != nil {
		env = Grubenv{}
	}
	delete(env, leftVar(slot))
	delete(env, doneVar(slot))
	if counting {
		env[leftVar(slot)] = strconv.Itoa(left)
		env[doneVar(slot)] = strconv.Itoa(done)
	}
	return writeGrubenv(esp, env)
}

// writeGrubConfig renders grub.cfg for recs, newest generation first.
func writeGrubConfig(esp FS, recs []grubRecord) error {
	sort.SliceStable(recs, func(i, j int) bool {
		if recs[i].Generation != recs[j].Generation {
			return recs[i].Generation > recs[j].Generation
		}
		return recs[i].Slot > recs[j].Slot // systemd-boot: file name descending
	})
	data, err := renderGrubConfig(recs)
	if err != nil {
		return err
	}
	if err := esp.WriteFile(GrubConfigPath, data); err != nil {
		return fmt.Errorf("write %s: %w", GrubConfigPath, err)
	}
	return nil
}

// grubQuote quotes s as one word of GRUB script: single quotes, with a
// single quote written as '\”.
func grubQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func renderGrubConfig(recs []grubRecord) ([]byte, error) {
	var b strings.Builder
	b.WriteString("# Written by nodeinit: A/B boot with boot counting in grubenv (see package boot, grub.go).\n")
	b.WriteString(grubMarker + "\n")
	b.WriteString("serial --unit=0 --speed=115200\n")
	b.WriteString("terminal_input console serial\n")
	b.WriteString("terminal_output console serial\n")
	fmt.Fprintf(&b, "set timeout=%d\n", GrubTimeout)
	b.WriteString("load_env\n")
	if len(recs) > 0 {
		// The first entry whose tries are not used up; the first of all when
		// every one is.
		fmt.Fprintf(&b, "set default=%s\n", grubQuote("node-"+recs[0].Slot))
		for i, r := range recs {
			kw := "elif"
			if i == 0 {
				kw = "if"
			}
			fmt.Fprintf(&b, "%s [ \"${%s}\" != \"0\" ]; then\n\tset default=%s\n", kw, leftVar(r.Slot), grubQuote("node-"+r.Slot))
		}
		b.WriteString("fi\n")
	}
	for _, r := range recs {
		js, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		if bytes.ContainsAny(js, "\r\n") {
			return nil, fmt.Errorf("write %s: entry of slot %s has a line break", GrubConfigPath, r.Slot)
		}
		left, done := leftVar(r.Slot), doneVar(r.Slot)
		fmt.Fprintf(&b, "\nmenuentry %s --id %s {\n", grubQuote(r.Title), grubQuote("node-"+r.Slot))
		fmt.Fprintf(&b, "\t%s%s\n", grubEntryPrefix, js)
		if r.Tries > 0 {
			// One try moves from left to done (left+done is the entry's
			// budget), written out for every count: GRUB script cannot subtract.
			fmt.Fprintf(&b, "\tload_env %s %s\n", left, done)
			for n := r.Tries; n >= 1; n-- {
				kw := "elif"
				if n == r.Tries {
					kw = "if"
				}
				fmt.Fprintf(&b, "\t%s [ \"${%s}\" = \"%d\" ]; then\n\t\tset %s=%d\n\t\tset %s=%d\n\t\tsave_env %s %s\n",
					kw, left, n, left, n-1, done, r.Tries-n+1, left, done)
			}
			b.WriteString("\tfi\n")
		}
		fmt.Fprintf(&b, "\techo %s\n", grubQuote(fmt.Sprintf("nodeinit: GRUB boots slot %s (%s)", r.Slot, r.Version)))
		fmt.Fprintf(&b, "\tlinux /%s/%s/%s", SlotDirPrefix, r.Slot, KernelName)
		for _, o := range r.Options {
			b.WriteString(" " + grubQuote(o))
		}
		b.WriteString("\n")
		fmt.Fprintf(&b, "\tinitrd /%s/%s/%s\n}\n", SlotDirPrefix, r.Slot, InitrdName)
	}
	return []byte(b.String()), nil
}
