package stages

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
)

func TestDetectInterruptedUpgrade(t *testing.T) {
	at := time.Unix(1700000000, 0)
	ledger := func(state boot.SlotState, last string) *boot.Ledger {
		l := boot.NewLedger("id")
		l.RecordSlot(at, "a", boot.SlotGood, "1.0", "n")
		l.RecordSlot(at, "b", state, "2.0", "n")
		l.SetActive("a")
		if last != "" {
			l.RecordAction(at, last, "b", "")
		}
		return l
	}
	entryA := boot.EntryState{Entry: boot.Entry{Slot: "a", Version: "1.0", Generation: 1}, File: "node-a.conf"}
	entryB := boot.EntryState{Entry: boot.Entry{Slot: "b", Version: "2.0", Generation: 2}, File: "node-b+3.conf", Counting: true, TriesLeft: 3}
	for _, tc := range []struct {
		name     string
		l        *boot.Ledger
		entries  []boot.EntryState
		want     bool
		migrated bool
	}{
		{"cut during the slot write", ledger(boot.SlotWriting, "upgrade"), []boot.EntryState{entryA}, true, false},
		{"cut during migration", ledger(boot.SlotReady, ActionMigrating), []boot.EntryState{entryA}, true, true},
		{"entry written: boot counting decides", ledger(boot.SlotReady, "upgrade"), []boot.EntryState{entryA, entryB}, false, false},
		{"other slot good", ledger(boot.SlotGood, "upgrade"), []boot.EntryState{entryA}, false, false},
		{"already recorded", ledger(boot.SlotBad, ActionInterrupted), []boot.EntryState{entryA}, false, false},
		{"no ledger", nil, []boot.EntryState{entryA}, false, false},
	} {
		got := DetectInterruptedUpgrade("a", tc.entries, tc.l)
		if (got != nil) != tc.want {
			t.Errorf("%s: got %+v, want interrupted=%v", tc.name, got, tc.want)
			continue
		}
		if got != nil && (got.Slot != "b" || got.Version != "2.0" || got.Migrated != tc.migrated) {
			t.Errorf("%s: got %+v, want slot b 2.0 migrated=%v", tc.name, got, tc.migrated)
		}
	}
}

func TestLocalBootTriggerURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://cobbler/cblr/svc/op/nopxe/system/@HOSTNAME@": "http://cobbler/cblr/svc/op/nopxe/system/node1.example.com",
		"cobbler:8080/nopxe/@HOSTNAME@":                      "http://cobbler:8080/nopxe/node1.example.com",
		"https://x/done":                                     "https://x/done",
	} {
		if got := LocalBootTriggerURL(in, "node1.example.com"); got != want {
			t.Errorf("LocalBootTriggerURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFetchLocalBootTrigger(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.URL.Path != "/nopxe/node1" {
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	if err := FetchLocalBootTrigger(context.Background(), srv.Client(), srv.URL+"/nopxe/node1", 3); err != nil {
		t.Fatalf("trigger after one failure: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("server called %d times, want 2 (one retry)", n)
	}
	if err := FetchLocalBootTrigger(context.Background(), srv.Client(), srv.URL+"/wrong", 2); err == nil {
		t.Errorf("a 404 was accepted")
	}
}

func TestSlotFromCmdline(t *testing.T) {
	if got := SlotFromCmdline("console=ttyS0 nodeinit.slot=a quiet nodeinit.slot=b"); got != "b" {
		t.Errorf("slot = %q, want b (last wins)", got)
	}
	if got := SlotFromCmdline("console=ttyS0"); got != "" {
		t.Errorf("slot = %q, want none", got)
	}
}
