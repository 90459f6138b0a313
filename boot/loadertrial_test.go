package boot

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"unicode/utf16"
)

// identifier encodes path as systemd-boot writes LoaderImageIdentifier.
func identifier(path string) []byte {
	var b []byte
	for _, c := range append(utf16.Encode([]rune(path)), 0) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// TestLoaderTrial walks a loader trial at the EFI and ESP level: a loader equal
// to the default is not staged; a new one is, under a name of its own, with a
// trial Boot#### entry that BootNext points at and BootOrder does not hold;
// BootedLoader reads systemd-boot's identifier; promotion repoints the
// "nodeinit" entry and removes the trial one; uninstall removes both.
func TestLoaderTrial(t *testing.T) {
	dir := t.TempDir()
	esp := DirFS(dir)
	old := filepath.Join(t.TempDir(), "old.efi")
	newer := filepath.Join(t.TempDir(), "new.efi")
	os.WriteFile(old, []byte("MZ old loader"), 0o644)
	os.WriteFile(newer, []byte("MZ new loader"), 0o644)
	if err := InstallLoader(esp, old); err != nil {
		t.Fatal(err)
	}
	l := NewLedger("trial")
	if p, err := StageTrialLoader(esp, l, old); err != nil || p != "" {
		t.Fatalf("the installed loader was staged for a trial: %q, %v", p, err)
	}
	p, err := StageTrialLoader(esp, l, newer)
	if err != nil || p == "" || SameLoaderPath(p, FallbackLoaderPath) {
		t.Fatalf("StageTrialLoader(new) = %q, %v", p, err)
	}
	if b, _ := esp.ReadFile(FallbackLoaderPath); string(b) != "MZ old loader" {
		t.Fatalf("staging a trial changed the default loader: %q", b)
	}
	if b, _ := esp.ReadFile(p); string(b) != "MZ new loader" {
		t.Fatalf("the trial loader at %s holds %q", p, b)
	}

	v := fakeVars{}
	main, err := InstallBootEntry(v, testLoc)
	if err != nil {
		t.Fatal(err)
	}
	trial, err := InstallTrialBootEntry(v, testLoc, p)
	if err != nil {
		t.Fatal(err)
	}
	if trial == main {
		t.Fatalf("the trial entry reused Boot%04X", main)
	}
	if next, _ := readUint16s(v, "BootNext"); !slices.Equal(next, []uint16{trial}) {
		t.Errorf("BootNext = %v, want %d", next, trial)
	}
	if o := order(t, v); slices.Contains(o, trial) {
		t.Errorf("BootOrder %v holds the trial entry", o)
	}

	if got, err := BootedLoader(v); err != nil || got != "" {
		t.Errorf("BootedLoader with no identifier = %q, %v", got, err)
	}
	v[LoaderImageIdentifierVar] = identifier(`\EFI\NODEINIT\` + filepath.Base(p))
	if got, err := BootedLoader(v); err != nil || !SameLoaderPath(got, p) {
		t.Errorf("BootedLoader = %q, %v; want the trial loader %s", got, err, p)
	}

	if _, err := PromoteLoader(v, testLoc, l, p); err != nil {
		t.Fatal(err)
	}
	if l.DefaultLoader() != p {
		t.Errorf("the ledger's default loader is %s after the promotion", l.DefaultLoader())
	}
	trials, _, _ := bootEntries(v, TrialDescription)
	ours, _, _ := ourBootEntries(v)
	if len(trials) != 0 || len(ours) != 1 {
		t.Errorf("after the promotion: %d trial entries, %d nodeinit entries", len(trials), len(ours))
	}
	if _, ok := v["BootNext"]; ok {
		t.Error("BootNext still set after the promotion")
	}
	for _, data := range ours {
		want, _ := LoadOption(BootDescription, testLoc, p)
		if !slices.Equal(data, want) {
			t.Error("the nodeinit entry does not start the promoted loader")
		}
	}

	if _, err := InstallTrialBootEntry(v, testLoc, p); err != nil {
		t.Fatal(err)
	}
	if _, err := RemoveBootEntries(v); err != nil {
		t.Fatal(err)
	}
	trials, _, _ = bootEntries(v, TrialDescription)
	ours, _, _ = ourBootEntries(v)
	if len(trials)+len(ours) != 0 {
		t.Errorf("uninstall left %d trial and %d nodeinit entries", len(trials), len(ours))
	}
}
