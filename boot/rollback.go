package boot

import "fmt"

// DetectRollback decides whether this boot is a rollback. booted is the slot
// from nodeinit.slot on this boot's command line; entries come from Entries;
// ledger may be nil. It returns a Rollback when another slot's entry has run
// out of tries (+0-N) and is newer than the booted slot's entry, and the
// ledger has not recorded that slot as bad yet (so it is reported once).
func DetectRollback(booted string, entries []EntryState, ledger *Ledger) (*Rollback, error) {
	if err := ValidSlot(booted); err != nil {
		return nil, fmt.Errorf("detect rollback: %w", err)
	}
	var mine *EntryState
	for i := range entries {
		if entries[i].Slot == booted {
			mine = &entries[i]
		}
	}
	for _, e := range entries {
		if e.Slot == booted || !e.Bad() {
			continue
		}
		if mine != nil && e.Generation <= mine.Generation {
			continue // an older entry that failed long ago; not this boot's story
		}
		if ledger != nil {
			if r := ledger.Slots[e.Slot]; r != nil && r.State == SlotBad {
				continue // already recorded
			}
		}
		version := e.Version
		if ledger != nil && ledger.Slots[e.Slot] != nil && ledger.Slots[e.Slot].Version != "" {
			version = ledger.Slots[e.Slot].Version
		}
		return &Rollback{
			From: e.Slot,
			To:   booted,
			Reason: fmt.Sprintf("entry %s (version %s) ran out of tries after %d failed boots; booted slot %s instead",
				e.File, version, e.TriesDone, booted),
		}, nil
	}
	return nil, nil
}
