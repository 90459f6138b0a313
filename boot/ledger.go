package boot

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// Ledger file names at the ESP root.
const (
	LedgerFile       = "ledger.json"
	LedgerBackupFile = "ledger.json.bak"
)

// Bounds on the ledger's lists, so the file stays small on the ESP.
const (
	MaxHistory   = 64
	MaxRollbacks = 16
)

// ErrNoLedger means the ESP holds no readable ledger (neither copy).
var ErrNoLedger = errors.New("no install ledger")

// SlotState is where a slot is in its life.
type SlotState string

// Slot states, in the order an upgrade moves through them.
const (
	SlotEmpty   SlotState = "empty"   // never written
	SlotWriting SlotState = "writing" // a write started; the slot is not bootable
	SlotReady   SlotState = "ready"   // written and verified, not yet booted good
	SlotGood    SlotState = "good"    // booted and blessed
	SlotBad     SlotState = "bad"     // ran out of tries or was marked bad
)

// SlotRecord is what the ledger knows about one slot.
type SlotRecord struct {
	State     SlotState `json:"state"`
	Version   string    `json:"version,omitempty"`
	Image     string    `json:"image,omitempty"` // image name or source
	WrittenAt time.Time `json:"written_at,omitzero"`
	// LoaderTrial is the ESP path of the boot loader this slot's upgrade
	// brought (a loader that differs from the one the firmware starts): the
	// slot's first boot must come through it, or the slot is bad.
	LoaderTrial string `json:"loader_trial,omitempty"`
	// Loader is that loader once it started the slot; it becomes the
	// firmware's default when the slot is blessed.
	Loader string `json:"loader,omitempty"`
}

// Event is one action in the ledger's history.
type Event struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"` // install, upgrade, boot, bless, rollback, uninstall, …
	Slot   string    `json:"slot,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Rollback is a boot that fell back from a slot whose entry ran out of tries.
type Rollback struct {
	Time   time.Time `json:"time,omitzero"`
	From   string    `json:"from"`
	To     string    `json:"to"`
	Reason string    `json:"reason"`
}

// Ledger is the install's record on the ESP: versions per slot, the active
// slot, the last action, a bounded history and the rollbacks with reasons.
type Ledger struct {
	Format    int                    `json:"format"`
	Seq       uint64                 `json:"seq"` // bumped on every Write; the higher valid copy wins
	InstallID string                 `json:"install_id"`
	Active    string                 `json:"active,omitempty"`
	Slots     map[string]*SlotRecord `json:"slots"`
	Last      *Event                 `json:"last_action,omitempty"`
	History   []Event                `json:"history,omitempty"`
	Rollbacks []Rollback             `json:"rollbacks,omitempty"`
	// Erase is how the disk was erased before this install was written
	// (nodeinit.erase), with what the device said about discarded blocks.
	Erase *EraseRecord `json:"erase,omitempty"`
	// Loader is the ESP path the "nodeinit" Boot#### entry starts; empty
	// means FallbackLoaderPath, the install's.
	Loader string `json:"loader,omitempty"`
	// AppData are the install's app-data disks, by the UUIDs of their
	// partitions: the only partitions a boot mounts on /data/app<N>, so that
	// another machine's disk carrying the same names is never mounted.
	AppData []AppDataRecord `json:"app_data,omitempty"`

	// FromBackup is set by ReadLedger when the main copy was torn or missing
	// and the .bak copy was used.
	FromBackup bool `json:"-"`
}

// EraseRecord is the wipe that preceded an install.
type EraseRecord struct {
	Time time.Time `json:"time"`
	// Mode is signatures, discard or zero.
	Mode string `json:"mode"`
	// Discarded says the disk was discarded, and DiscardZeroes whether the
	// device guarantees that discarded blocks read back as zeroes.
	Discarded     bool   `json:"discarded,omitempty"`
	DiscardZeroes string `json:"discard_zeroes,omitempty"`
	// ErasedBytes is what discard or zero covered; signature regions are counted
	// in Bytes.
	ErasedBytes int64 `json:"erased_bytes,omitempty"`
	Bytes       int64 `json:"bytes"`
}

// AppDataRecord is one app-data disk of the install.
type AppDataRecord struct {
	// Index is N of node-app<N> and /data/app<N>.
	Index int `json:"index"`
	// DataPartUUID and SwapPartUUID are the PARTUUIDs (lower case) of its
	// node-app<N> and node-swap2 partitions; the swap's is empty without one.
	DataPartUUID string `json:"data_partuuid"`
	SwapPartUUID string `json:"swap_partuuid,omitempty"`
	// Disk names the disk as it was at the install (its serial, else its
	// path), for an operator reading the ledger; the boot does not use it.
	Disk string `json:"disk,omitempty"`
}

// NewLedger starts a ledger for a fresh install with both slots empty.
func NewLedger(installID string) *Ledger {
	return &Ledger{
		Format:    1,
		InstallID: installID,
		Slots:     map[string]*SlotRecord{"a": {State: SlotEmpty}, "b": {State: SlotEmpty}},
	}
}

// ReadLedger reads the ledger from the ESP. Of ledger.json and its .bak copy
// it returns the valid one with the higher sequence number, so a write torn by
// a power cut falls back to the other copy.
func ReadLedger(esp FS) (*Ledger, error) {
	main, errMain := readLedgerFile(esp, LedgerFile)
	bak, errBak := readLedgerFile(esp, LedgerBackupFile)
	switch {
	case main != nil && (bak == nil || bak.Seq <= main.Seq):
		return main, nil
	case bak != nil:
		bak.FromBackup = true
		return bak, nil
	case errors.Is(errMain, fs.ErrNotExist) && errors.Is(errBak, fs.ErrNotExist):
		return nil, fmt.Errorf("read ledger: %w", ErrNoLedger)
	default:
		return nil, fmt.Errorf("read ledger: %w: %v; backup: %v", ErrNoLedger, errMain, errBak)
	}
}

func readLedgerFile(esp FS, path string) (*Ledger, error) {
	data, err := esp.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var l Ledger
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	if l.Format == 0 || l.Slots == nil {
		return nil, fmt.Errorf("%s: not a nodeinit ledger", filepath.Base(path))
	}
	return &l, nil
}

// Write stores the ledger: first the .bak copy, then ledger.json, each by
// temp file + fsync + rename + directory fsync. At any instant at least one
// complete copy exists.
func (l *Ledger) Write(esp FS) error {
	l.Seq++
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(l); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	data := buf.Bytes()
	for _, name := range []string{LedgerBackupFile, LedgerFile} {
		if err := esp.WriteFile(name, data); err != nil {
			return fmt.Errorf("write ledger %s: %w", name, err)
		}
	}
	return nil
}

// Slot returns the record of a slot, creating an empty one if needed.
func (l *Ledger) Slot(slot string) *SlotRecord {
	if l.Slots == nil {
		l.Slots = map[string]*SlotRecord{}
	}
	r := l.Slots[slot]
	if r == nil {
		r = &SlotRecord{State: SlotEmpty}
		l.Slots[slot] = r
	}
	return r
}

// RecordSlot moves a slot to state. Version and image are updated when not
// empty; reaching SlotReady stamps WrittenAt.
func (l *Ledger) RecordSlot(at time.Time, slot string, state SlotState, version, image string) error {
	if err := ValidSlot(slot); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	r := l.Slot(slot)
	r.State = state
	if version != "" {
		r.Version = version
	}
	if image != "" {
		r.Image = image
	}
	if state == SlotReady {
		r.WrittenAt = at.UTC()
	}
	return nil
}

// RecordAction sets the last action and appends it to the bounded history.
func (l *Ledger) RecordAction(at time.Time, action, slot, detail string) {
	e := Event{Time: at.UTC(), Action: action, Slot: slot, Detail: detail}
	l.Last = &e
	l.History = append(l.History, e)
	if n := len(l.History); n > MaxHistory {
		l.History = append([]Event(nil), l.History[n-MaxHistory:]...)
	}
}

// SetActive records the slot that booted (or will boot) as active.
func (l *Ledger) SetActive(slot string) error {
	if err := ValidSlot(slot); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	l.Active = slot
	return nil
}

// RecordRollback records a fall-back: r.From becomes bad, r.To active, and the
// event goes to the rollback list and the history.
func (l *Ledger) RecordRollback(at time.Time, r Rollback) error {
	if err := ValidSlot(r.From); err != nil {
		return fmt.Errorf("ledger rollback: %w", err)
	}
	if err := ValidSlot(r.To); err != nil {
		return fmt.Errorf("ledger rollback: %w", err)
	}
	r.Time = at.UTC()
	l.Slot(r.From).State = SlotBad
	l.Active = r.To
	l.Rollbacks = append(l.Rollbacks, r)
	if n := len(l.Rollbacks); n > MaxRollbacks {
		l.Rollbacks = append([]Rollback(nil), l.Rollbacks[n-MaxRollbacks:]...)
	}
	l.RecordAction(at, "rollback", r.To, fmt.Sprintf("from slot %s: %s", r.From, r.Reason))
	return nil
}
