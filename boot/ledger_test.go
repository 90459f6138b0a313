package boot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLedgerRoundTrip(t *testing.T) {
	esp := t.TempDir()
	if _, err := ReadLedger(DirFS(esp)); !errors.Is(err, ErrNoLedger) {
		t.Fatalf("empty ESP: %v, want ErrNoLedger", err)
	}
	l := NewLedger("install-1")
	if err := l.RecordSlot(testTime, "a", SlotWriting, "1.0", "node-1.0"); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordSlot(testTime, "a", SlotReady, "", ""); err != nil {
		t.Fatal(err)
	}
	if err := l.SetActive("a"); err != nil {
		t.Fatal(err)
	}
	l.RecordAction(testTime, "install", "a", "version 1.0")
	if err := l.Write(DirFS(esp)); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLedger(DirFS(esp))
	if err != nil {
		t.Fatal(err)
	}
	a := got.Slots["a"]
	if got.InstallID != "install-1" || got.Active != "a" || a.State != SlotReady || a.Version != "1.0" ||
		a.Image != "node-1.0" || !a.WrittenAt.Equal(testTime) || got.Slots["b"].State != SlotEmpty ||
		got.Last == nil || got.Last.Action != "install" || len(got.History) != 1 || got.FromBackup || got.Seq != 1 {
		t.Errorf("round trip: %+v slot a %+v", got, a)
	}
	if err := l.RecordSlot(testTime, "x", SlotGood, "", ""); err == nil {
		t.Error("slot x accepted")
	}
}

func TestLedgerTornWriteFallsBack(t *testing.T) {
	esp := t.TempDir()
	l := NewLedger("id")
	l.RecordAction(testTime, "install", "a", "")
	if err := l.Write(DirFS(esp)); err != nil {
		t.Fatal(err)
	}
	l.RecordAction(testTime, "upgrade", "b", "")
	if err := l.Write(DirFS(esp)); err != nil {
		t.Fatal(err)
	}
	// A power cut tore ledger.json: half a file.
	main := filepath.Join(esp, LedgerFile)
	data, _ := os.ReadFile(main)
	if err := os.WriteFile(main, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLedger(DirFS(esp))
	if err != nil {
		t.Fatal(err)
	}
	if !got.FromBackup || got.Last.Action != "upgrade" || got.Seq != 2 {
		t.Errorf("fallback: FromBackup=%v last=%+v seq=%d", got.FromBackup, got.Last, got.Seq)
	}
	// Cut between the two copies: .bak holds the newer write, main the older.
	l.RecordAction(testTime, "bless", "b", "")
	if err := l.Write(DirFS(esp)); err != nil { // seq 3 in both
		t.Fatal(err)
	}
	older := strings.Replace(string(mustRead(t, main)), `"seq": 3`, `"seq": 2`, 1)
	if err := os.WriteFile(main, []byte(older), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err = ReadLedger(DirFS(esp))
	if err != nil || got.Seq != 3 || !got.FromBackup {
		t.Errorf("newer backup not preferred: %+v, %v", got, err)
	}
	// Both copies torn: an error naming the ledger, not a silent empty ledger.
	os.WriteFile(main, []byte("{"), 0o644)
	os.WriteFile(filepath.Join(esp, LedgerBackupFile), []byte(""), 0o644)
	if _, err := ReadLedger(DirFS(esp)); !errors.Is(err, ErrNoLedger) {
		t.Errorf("both torn: %v", err)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLedgerBounds(t *testing.T) {
	l := NewLedger("id")
	for i := 0; i < MaxHistory+10; i++ {
		l.RecordAction(testTime, "boot", "a", "")
	}
	for i := 0; i < MaxRollbacks+5; i++ {
		if err := l.RecordRollback(testTime, Rollback{From: "b", To: "a", Reason: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.History) != MaxHistory || len(l.Rollbacks) != MaxRollbacks {
		t.Errorf("history %d rollbacks %d", len(l.History), len(l.Rollbacks))
	}
	if l.Slots["b"].State != SlotBad || l.Active != "a" || l.Last.Action != "rollback" {
		t.Errorf("after rollback: %+v %+v", l.Slots["b"], l.Last)
	}
}

// TestLedgerAppData: the app-data disks' PARTUUIDs survive a write and a
// read, and a ledger written before app-data disks existed reads without any.
func TestLedgerAppData(t *testing.T) {
	esp := t.TempDir()
	l := NewLedger("id")
	l.AppData = []AppDataRecord{{Index: 1, DataPartUUID: "0c0ffee0-0000-4000-8000-000000000002", SwapPartUUID: "0c0ffee0-0000-4000-8000-000000000001", Disk: "WD-1"},
		{Index: 2, DataPartUUID: "0c0ffee0-0000-4000-8000-000000000012"}}
	if err := l.Write(DirFS(esp)); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLedger(DirFS(esp))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.AppData) != 2 || got.AppData[0] != l.AppData[0] || got.AppData[1] != l.AppData[1] {
		t.Errorf("app data %+v, want %+v", got.AppData, l.AppData)
	}
	old := `{"format": 1, "seq": 3, "install_id": "x", "active": "a", "slots": {"a": {"state": "good", "version": "1.0"}}}`
	if err := os.WriteFile(filepath.Join(esp, LedgerFile), []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(esp, LedgerBackupFile))
	if got, err := ReadLedger(DirFS(esp)); err != nil || got.AppData != nil {
		t.Errorf("an older ledger: %+v, %v", got, err)
	}
}
