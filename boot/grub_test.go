package boot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGrubEntriesLifecycle walks a BIOS install through the states of an
// upgrade as Entries reports them: the install's uncounted entry, a counted
// upgrade entry sorted first, GRUB's boot attempts (simulated on grubenv),
// the rollback once its tries are used up, and a blessing.
func TestGrubEntriesLifecycle(t *testing.T) {
	esp := DirFS(t.TempDir())
	if err := InstallGrub(esp); err != nil {
		t.Fatal(err)
	}
	if !IsGrub(esp) {
		t.Fatal("IsGrub is false after InstallGrub")
	}
	if err := WriteEntry(esp, Entry{Slot: "a", Version: "1.0", Options: []string{"console=ttyS0", `hostname="a b"`, "x='y'"}}); err != nil {
		t.Fatal(err)
	}
	if err := WriteEntry(esp, Entry{Slot: "b", Version: "2.0", Tries: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(string(esp), EntriesDir)); err == nil {
		t.Error("a GRUB ESP got systemd-boot entry files")
	}
	es := mustEntries(t, esp)
	if es[0].Slot != "b" || !es[0].Counting || es[0].TriesLeft != 2 || es[1].Slot != "a" || !es[1].Blessed() {
		t.Fatalf("entries after the upgrade: %+v", es)
	}
	if got := es[1].Options; strings.Join(got, " ") != `nodeinit.slot=a console=ttyS0 hostname="a b" x='y'` {
		t.Errorf("slot a's options read back as %q", got)
	}
	// Two failed boots of b: GRUB moves a try from left to done each time.
	for i := 0; i < 2; i++ {
		grubBoot(t, esp, "b")
	}
	es = mustEntries(t, esp)
	if es[0].Slot != "a" || es[1].Slot != "b" || !es[1].Bad() || es[1].TriesDone != 2 {
		t.Fatalf("entries after b used its tries: %+v", es)
	}
	rb, err := DetectRollback("a", es, nil)
	if err != nil || rb == nil || rb.From != "b" {
		t.Fatalf("rollback: %+v, %v", rb, err)
	}
	// A new upgrade of b, blessed after one boot.
	if err := RemoveSlotEntry(esp, "b"); err != nil {
		t.Fatal(err)
	}
	if es := mustEntries(t, esp); len(es) != 1 {
		t.Fatalf("entries after removing b: %+v", es)
	}
	if err := WriteEntry(esp, Entry{Slot: "b", Version: "2.1", Tries: 3}); err != nil {
		t.Fatal(err)
	}
	grubBoot(t, esp, "b")
	if e, _ := EntryFor(esp, "b"); e.TriesLeft != 2 || e.TriesDone != 1 {
		t.Fatalf("b after one boot: %+v", e)
	}
	if err := Bless(esp, "b"); err != nil {
		t.Fatal(err)
	}
	if e, _ := EntryFor(esp, "b"); !e.Blessed() || e.Version != "2.1" {
		t.Fatalf("b after the blessing: %+v", e)
	}
	if err := MarkBad(esp, "a"); err != nil {
		t.Fatal(err)
	}
	if e, _ := EntryFor(esp, "a"); !e.Bad() {
		t.Fatalf("a after mark-bad: %+v", e)
	}
	if path, err := exec.LookPath("grub-script-check"); err == nil {
		if out, err := exec.Command(path, filepath.Join(string(esp), GrubConfigPath)).CombinedOutput(); err != nil {
			t.Errorf("grub-script-check: %v\n%s", err, out)
		}
	}
}

// grubBoot does to grubenv what grub.cfg's menuentry for slot does at boot.
func grubBoot(t *testing.T, esp FS, slot string) {
	t.Helper()
	e, err := EntryFor(esp, slot)
	if err != nil {
		t.Fatal(err)
	}
	if e.Counting && e.TriesLeft > 0 {
		if err := setGrubCounters(esp, slot, true, e.TriesLeft-1, e.TriesDone+1); err != nil {
			t.Fatal(err)
		}
	}
}

func mustEntries(t *testing.T, esp FS) []EntryState {
	t.Helper()
	es, err := Entries(esp)
	if err != nil {
		t.Fatal(err)
	}
	return es
}
