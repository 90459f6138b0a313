package boot

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseEntryName(t *testing.T) {
	tests := []struct {
		name         string
		slot         string
		counting     bool
		left, done   int
		ok           bool
		blessed, bad bool
	}{
		{"node-b+3.conf", "b", true, 3, 0, true, false, false},
		{"node-b+2-1.conf", "b", true, 2, 1, true, false, false},
		{"node-a.conf", "a", false, 0, 0, true, true, false},
		{"node-b+0-3.conf", "b", true, 0, 3, true, false, true},
		{"node-c.conf", "", false, 0, 0, false, false, false},
		{"node-a+x.conf", "", false, 0, 0, false, false, false},
		{"node-a+1--1.conf", "", false, 0, 0, false, false, false},
		{"other.conf", "", false, 0, 0, false, false, false},
		{"node-a.conf~", "", false, 0, 0, false, false, false},
	}
	for _, tc := range tests {
		slot, counting, left, done, ok := parseEntryName(tc.name)
		if slot != tc.slot || counting != tc.counting || left != tc.left || done != tc.done || ok != tc.ok {
			t.Errorf("parseEntryName(%q) = %q %v %d %d %v, want %q %v %d %d %v", tc.name,
				slot, counting, left, done, ok, tc.slot, tc.counting, tc.left, tc.done, tc.ok)
		}
		if !ok {
			continue
		}
		s := EntryState{Counting: counting, TriesLeft: left, TriesDone: done}
		if s.Blessed() != tc.blessed || s.Bad() != tc.bad {
			t.Errorf("%s: blessed=%v bad=%v, want %v %v", tc.name, s.Blessed(), s.Bad(), tc.blessed, tc.bad)
		}
	}
}

func entryFiles(t *testing.T, esp string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(esp, EntriesDir))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func TestWriteEntryContentAndOptions(t *testing.T) {
	esp := t.TempDir()
	err := WriteEntry(DirFS(esp), Entry{Slot: "a", Version: "1.0", Options: []string{"console=ttyS0", "nodeinit.slot=b", "quiet"}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(esp, EntriesDir, "node-a.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"title Node 1.0 (slot a)\n", "sort-key nodeinit\n", "version 1-1.0\n",
		"linux /node/a/vmlinuz\n", "initrd /node/a/initrd.img\n",
		"options nodeinit.slot=a console=ttyS0 quiet\n",
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("entry lacks %q:\n%s", want, data)
		}
	}
	got, err := Entries(DirFS(esp))
	if err != nil || len(got) != 1 {
		t.Fatalf("Entries = %v, %v", got, err)
	}
	if got[0].Generation != 1 || got[0].Version != "1.0" || !got[0].Blessed() ||
		!slices.Equal(got[0].Options, []string{"nodeinit.slot=a", "console=ttyS0", "quiet"}) {
		t.Errorf("parsed entry = %+v", got[0])
	}
}

func TestWriteEntryRefusesBadInput(t *testing.T) {
	tests := []struct {
		e    Entry
		want string
	}{
		{Entry{Slot: "c", Version: "1"}, "slot"},
		{Entry{Slot: "a", Version: ""}, "version"},
		{Entry{Slot: "a", Version: "1 2"}, "version"},
		{Entry{Slot: "a", Version: "1", Tries: -1}, "tries"},
		{Entry{Slot: "a", Version: "1", Options: []string{"adminpw=$6$x$y"}}, "secret"},
		{Entry{Slot: "a", Version: "1", Options: []string{"engine-admin-password=x"}}, "secret"},
		{Entry{Slot: "a", Version: "1", Options: []string{"foo\nbar"}}, "line break"},
	}
	for _, tc := range tests {
		esp := t.TempDir()
		err := WriteEntry(DirFS(esp), tc.e)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("WriteEntry(%+v) = %v, want error with %q", tc.e, err, tc.want)
		}
		if _, err := os.Stat(filepath.Join(esp, EntriesDir)); !os.IsNotExist(err) {
			t.Errorf("WriteEntry(%+v) wrote something despite the error", tc.e)
		}
	}
}

// TestUpgradeOrderBlessAndRollback walks an install, an upgrade with boot
// counting, a bless, a second upgrade that runs out of tries, and checks the
// order systemd-boot would use at each point.
func TestUpgradeOrderBlessAndRollback(t *testing.T) {
	esp := t.TempDir()
	first := func() EntryState {
		t.Helper()
		all, err := Entries(DirFS(esp))
		if err != nil || len(all) == 0 {
			t.Fatalf("Entries = %v, %v", all, err)
		}
		return all[0]
	}
	if err := WriteEntry(DirFS(esp), Entry{Slot: "a", Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteEntry(DirFS(esp), Entry{Slot: "b", Version: "2.0", Tries: 3}); err != nil {
		t.Fatal(err)
	}
	if e := first(); e.Slot != "b" || e.File != "node-b+3.conf" || e.Generation != 2 {
		t.Fatalf("after upgrade the default is %+v, want node-b+3.conf generation 2", e)
	}
	// systemd-boot counts one boot.
	dir := filepath.Join(esp, EntriesDir)
	if err := os.Rename(filepath.Join(dir, "node-b+3.conf"), filepath.Join(dir, "node-b+2-1.conf")); err != nil {
		t.Fatal(err)
	}
	if e := first(); e.Slot != "b" || e.TriesLeft != 2 || e.TriesDone != 1 {
		t.Fatalf("after one boot the default is %+v", e)
	}
	if err := Bless(DirFS(esp), "b"); err != nil {
		t.Fatal(err)
	}
	if got := entryFiles(t, esp); !slices.Equal(got, []string{"node-a.conf", "node-b.conf"}) {
		t.Fatalf("after bless: %v", got)
	}
	if err := Bless(DirFS(esp), "b"); err != nil {
		t.Fatalf("second bless: %v", err)
	}
	// Upgrade slot a to 3.0; it must sort before the running b even though
	// "node-a" < "node-b" by name.
	if err := WriteEntry(DirFS(esp), Entry{Slot: "a", Version: "3.0", Tries: 2}); err != nil {
		t.Fatal(err)
	}
	if got := entryFiles(t, esp); !slices.Equal(got, []string{"node-a+2.conf", "node-b.conf"}) {
		t.Fatalf("old slot-a entry not replaced: %v", got)
	}
	if e := first(); e.Slot != "a" || e.Generation != 3 {
		t.Fatalf("after second upgrade the default is %+v, want slot a generation 3", e)
	}
	// Two failed boots: +0-2 sorts last, b is the default again.
	if err := os.Rename(filepath.Join(dir, "node-a+2.conf"), filepath.Join(dir, "node-a+0-2.conf")); err != nil {
		t.Fatal(err)
	}
	if e := first(); e.Slot != "b" {
		t.Fatalf("after running out of tries the default is %+v, want slot b", e)
	}
	all, _ := Entries(DirFS(esp))
	rb, err := DetectRollback("b", all, nil)
	if err != nil || rb == nil || rb.From != "a" || rb.To != "b" || !strings.Contains(rb.Reason, "node-a+0-2.conf") {
		t.Fatalf("DetectRollback = %+v, %v", rb, err)
	}
	// Recorded once: the ledger marks a bad and the next boot reports nothing.
	l := NewLedger("id")
	if err := l.RecordRollback(testTime, *rb); err != nil {
		t.Fatal(err)
	}
	if rb2, _ := DetectRollback("b", all, l); rb2 != nil {
		t.Errorf("rollback reported twice: %+v", rb2)
	}
	// Booting the bad slot by hand (menu) is not a rollback.
	if rb3, _ := DetectRollback("a", all, nil); rb3 != nil {
		t.Errorf("booting slot a reported rollback %+v", rb3)
	}
	if err := RemoveSlotEntry(DirFS(esp), "a"); err != nil {
		t.Fatal(err)
	}
	if got := entryFiles(t, esp); !slices.Equal(got, []string{"node-b.conf"}) {
		t.Fatalf("after RemoveSlotEntry: %v", got)
	}
	if err := Bless(DirFS(esp), "a"); !errors.Is(err, ErrNoEntry) {
		t.Errorf("Bless without entry = %v, want ErrNoEntry", err)
	}
}

func TestMarkBad(t *testing.T) {
	esp := t.TempDir()
	if err := WriteEntry(DirFS(esp), Entry{Slot: "b", Version: "2", Tries: 3}); err != nil {
		t.Fatal(err)
	}
	if err := MarkBad(DirFS(esp), "b"); err != nil {
		t.Fatal(err)
	}
	if got := entryFiles(t, esp); !slices.Equal(got, []string{"node-b+0-3.conf"}) {
		t.Fatalf("after MarkBad: %v", got)
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"10-1.0", "9-2.0", 1},
		{"2-1.0", "2-1.0", 0},
		{"2-1.10", "2-1.9", 1},
		{"1-a", "1-b", -1},
		{"007", "7", 0},
	}
	for _, tc := range tests {
		if got := versionCompare(tc.a, tc.b); got != tc.want {
			t.Errorf("versionCompare(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestCompareSameIDMoreTriesFirst(t *testing.T) {
	a := EntryState{Entry: Entry{Slot: "b"}, Counting: true, TriesLeft: 2, TriesDone: 1}
	b := EntryState{Entry: Entry{Slot: "b"}, Counting: true, TriesLeft: 1, TriesDone: 2}
	if compareEntries(a, b) >= 0 || compareEntries(b, a) <= 0 {
		t.Error("entry with more tries left must sort first")
	}
}
