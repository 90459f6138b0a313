// Package crash enumerates the disk states that a power loss can leave behind,
// from a log of the writes and flushes that reached a disk (device/recorder
// makes such a log), in the manner of CrashMonkey.
//
// The model is the one the Linux block layer promises for a disk with a
// volatile write cache: a write that has completed is durable only once a
// later flush has completed. So a power loss at boundary k (after the first k
// ops of the log) leaves every write before the last flush at or before k, and
// any subset of the writes after it. Writes are logged in the order they
// completed, and a write that is persisted overwrites earlier ones where they
// overlap. The last write may also be torn: only a prefix of its sectors
// reached the medium.
//
// EFI variable changes are logged too. Firmware stores them synchronously, so
// each one is durable once it is logged and belongs to every later state.
//
// Every subset is 2^n states, so the enumeration is bounded; see Options and
// the doc of Enumerator.States for exactly which states are produced.
// Materializing a state costs only the writes that differ from one of two
// scratch images kept up to date as the enumeration walks the log, never a
// copy of the whole disk.
//
// This package does no kernel I/O: it reads and writes ordinary files.
package crash

import (
	"encoding/gob"
	"fmt"
	"io"
)

// OpKind says what an Op is.
type OpKind uint8

const (
	// OpWrite is a completed write of Data at Off (or of Len zero bytes when
	// Data is nil: a discard or a zero-range).
	OpWrite OpKind = iota + 1
	// OpFlush is a completed flush (fsync, a cache flush): every write
	// before it is durable.
	OpFlush
	// OpEFISet sets EFI variable Name to Data with attributes Attrs.
	OpEFISet
	// OpEFIRemove removes EFI variable Name.
	OpEFIRemove
	// OpMark is a note that changes no state (a reboot, a failed write,
	// a stage boundary named by a test). Marks are not crash points.
	OpMark
)

func (k OpKind) String() string {
	switch k {
	case OpWrite:
		return "write"
	case OpFlush:
		return "flush"
	case OpEFISet:
		return "efi-set"
	case OpEFIRemove:
		return "efi-remove"
	case OpMark:
		return "mark"
	}
	return fmt.Sprintf("op(%d)", k)
}

// Op is one logged operation.
type Op struct {
	Kind OpKind
	// Off and Len are the byte range of a write.
	Off, Len int64
	// Data is what a write wrote; nil means Len zero bytes.
	Data []byte
	// Name is the EFI variable of an EFI op, or the text of a mark.
	Name string
	// Attrs are the EFI variable attributes of OpEFISet.
	Attrs uint32
}

// String describes op for a log line or a failure message.
func (op Op) String() string {
	switch op.Kind {
	case OpWrite:
		if op.Data == nil {
			return fmt.Sprintf("zero [%d, +%d)", op.Off, op.Len)
		}
		return fmt.Sprintf("write [%d, +%d)", op.Off, op.Len)
	case OpEFISet, OpEFIRemove, OpMark:
		return fmt.Sprintf("%s %s", op.Kind, op.Name)
	}
	return op.Kind.String()
}

// Log is everything that reached one disk (and the EFI variable store) during
// a recorded run.
type Log struct {
	// Size is the disk size in bytes.
	Size int64
	// EFI is the EFI variable store when recording started.
	EFI map[string]EFIVar
	// Ops are the operations in the order they completed.
	Ops []Op
}

// EFIVar is the value of one EFI variable.
type EFIVar struct {
	Attrs uint32
	Data  []byte
}

// logMagic starts a serialised log, so a truncated or foreign file is refused.
const logMagic = "nodeinit-crash-log-v1"

// WriteTo serialises the log (gob), for `make crashtest` to keep a failing run.
func (l *Log) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	enc := gob.NewEncoder(cw)
	if err := enc.Encode(logMagic); err != nil {
		return cw.n, fmt.Errorf("write crash log: %w", err)
	}
	if err := enc.Encode(l); err != nil {
		return cw.n, fmt.Errorf("write crash log: %w", err)
	}
	return cw.n, nil
}

// ReadLog reads a log written by WriteTo.
func ReadLog(r io.Reader) (*Log, error) {
	dec := gob.NewDecoder(r)
	var magic string
	if err := dec.Decode(&magic); err != nil {
		return nil, fmt.Errorf("read crash log: %w", err)
	}
	if magic != logMagic {
		return nil, fmt.Errorf("read crash log: not a crash log (starts with %q)", magic)
	}
	var l Log
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("read crash log: %w", err)
	}
	return &l, nil
}

// Counts returns how many writes, flushes and EFI changes the log holds.
func (l *Log) Counts() (writes, flushes, efi int) {
	for _, op := range l.Ops {
		switch op.Kind {
		case OpWrite:
			writes++
		case OpFlush:
			flushes++
		case OpEFISet, OpEFIRemove:
			efi++
		}
	}
	return writes, flushes, efi
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
