package crash

import (
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
)

// Options bound and place an enumeration.
type Options struct {
	// Base is the disk image as it was when the log started; empty means a
	// disk of zeroes. It is only read.
	Base string
	// Dir holds the two scratch images; empty means os.TempDir().
	Dir string
	// DropWindow is how many of the most recent unflushed writes are each
	// dropped alone at every crash point (0 means 16; negative means none).
	// Dropping an older write is omitted and counted in Stats.Omitted.
	DropWindow int
	// TearSizes are the granularities at which the last write is torn
	// (nil means 512 and 4096).
	TearSizes []int
	// MaxTears is how many tear points are tried per granularity, spread
	// evenly over the write (0 means 4); the rest are counted as omitted.
	MaxTears int
}

func (o Options) dropWindow() int {
	switch {
	case o.DropWindow == 0:
		return 16
	case o.DropWindow < 0:
		return 0
	}
	return o.DropWindow
}

func (o Options) tearSizes() []int {
	if o.TearSizes == nil {
		return []int{512, 4096}
	}
	return o.TearSizes
}

func (o Options) maxTears() int {
	if o.MaxTears <= 0 {
		return 4
	}
	return o.MaxTears
}

// Kind says which subset of the unflushed writes a State keeps.
type Kind uint8

const (
	// Durable keeps none of the unflushed writes.
	Durable Kind = iota
	// Complete keeps all of them: the disk exactly as it was at the point.
	Complete
	// Alone keeps one unflushed write and drops the others.
	Alone
	// Dropped drops one unflushed write and keeps the others.
	Dropped
	// Torn keeps the others and only a prefix of the last write.
	Torn
)

var kindNames = [...]string{"durable", "complete", "alone", "dropped", "torn"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Stats counts what an enumeration produced.
type Stats struct {
	// Points is the number of crash points (boundaries after a write,
	// flush or EFI change, plus the start).
	Points int
	// States is the number of states yielded, by kind in ByKind.
	States int
	ByKind [len(kindNames)]int
	// Duplicates is the number of candidate states skipped because an
	// earlier state had the same writes and EFI variables.
	Duplicates int
	// Omitted is the number of states the bounds left out (older writes
	// not dropped, tear points not tried).
	Omitted int
	// MaxPending is the most unflushed writes at any point.
	MaxPending int
}

// State is one disk (and EFI store) that a power loss can leave. It is valid
// only until the loop that yielded it goes on.
type State struct {
	// Point is the crash point: the ops before it happened (Log.Ops[:Point]).
	Point int
	// Durable is where the durable prefix ends: Log.Ops[:Durable] are on the
	// disk whatever the state.
	Durable int
	Kind    Kind
	// Write is the index in Log.Ops of the write that Alone keeps, Dropped
	// drops or Torn tears; -1 otherwise.
	Write int
	// TornBytes is how much of a torn write reached the disk.
	TornBytes int64

	e       *Enumerator
	pending []int // unflushed writes at Point, shared; do not keep
	efi     map[string]EFIVar
	undo    []undoRange
	path    string
}

// String names the state for a failure message.
func (s *State) String() string {
	at := "start"
	if s.Point > 0 {
		at = "after op " + fmt.Sprint(s.Point-1) + " (" + s.e.log.Ops[s.Point-1].String() + ")"
	}
	switch s.Kind {
	case Alone, Dropped:
		return fmt.Sprintf("crash %s, %d unflushed: %s op %d (%s)", at, len(s.pending), s.Kind, s.Write, s.e.log.Ops[s.Write])
	case Torn:
		return fmt.Sprintf("crash %s, %d unflushed: op %d torn after %d bytes", at, len(s.pending), s.Write, s.TornBytes)
	}
	return fmt.Sprintf("crash %s, %d unflushed: %s", at, len(s.pending), s.Kind)
}

// Persisted lists the indices in Log.Ops of the unflushed writes that reached
// the disk in this state (a torn write not among them).
func (s *State) Persisted() []int {
	var out []int
	for _, w := range s.pending {
		if s.keeps(w) {
			out = append(out, w)
		}
	}
	return out
}

func (s *State) keeps(w int) bool {
	switch s.Kind {
	case Durable:
		return false
	case Alone:
		return w == s.Write
	case Dropped, Torn:
		return w != s.Write
	}
	return true
}

// EFIVars is the EFI variable store in this state. Do not modify it.
func (s *State) EFIVars() map[string]EFIVar { return s.efi }

// Materialize makes the state's disk image and returns its path. The file is
// a scratch image shared between states: read it, do not write it (copy it
// with CopySparse first when a checker must, e.g. to replay a journal), and do
// not use it once the loop goes on.
func (s *State) Materialize() (string, error) {
	if s.path != "" {
		return s.path, nil
	}
	e := s.e
	var err error
	switch s.Kind {
	case Durable:
		s.path = e.durable.path
	case Complete:
		s.path = e.current.path
	case Alone:
		// One write on top of the durable image.
		err = s.applyTo(e.durable, e.log.Ops[s.Write], e.log.Ops[s.Write].Len)
		s.path = e.durable.path
	case Dropped:
		op := e.log.Ops[s.Write]
		err = s.rebuild(op.Off, op.Len)
		s.path = e.current.path
	case Torn:
		op := e.log.Ops[s.Write]
		err = s.rebuild(op.Off+s.TornBytes, op.Len-s.TornBytes)
		s.path = e.current.path
	}
	if err != nil {
		s.path = ""
		return "", fmt.Errorf("materialize %s: %w", s, errors.Join(err, s.restore()))
	}
	return s.path, nil
}

// applyTo writes the first n bytes of op to img, saving what was there.
func (s *State) applyTo(img *image, op Op, n int64) error {
	old := make([]byte, n)
	if err := img.readAt(old, op.Off); err != nil {
		return err
	}
	s.undo = append(s.undo, undoRange{img: img, off: op.Off, data: old})
	return img.writeOp(op, n)
}

// rebuild rewrites [off, off+n) of the current image as the state has it: the
// durable bytes with every kept unflushed write laid over them in order.
func (s *State) rebuild(off, n int64) error {
	e := s.e
	buf := make([]byte, n)
	if err := e.durable.readAt(buf, off); err != nil {
		return err
	}
	for _, w := range s.pending {
		if s.keeps(w) {
			overlay(buf, off, e.log.Ops[w])
		}
	}
	old := make([]byte, n)
	if err := e.current.readAt(old, off); err != nil {
		return err
	}
	s.undo = append(s.undo, undoRange{img: e.current, off: off, data: old})
	return e.current.writeAt(buf, off)
}

// restore puts the scratch images back as they were before Materialize.
func (s *State) restore() error {
	var errs []error
	for i := len(s.undo) - 1; i >= 0; i-- {
		u := s.undo[i]
		errs = append(errs, u.img.writeAt(u.data, u.off))
	}
	s.undo, s.path = nil, ""
	return errors.Join(errs...)
}

type undoRange struct {
	img  *image
	off  int64
	data []byte
}

// overlay copies the part of op that falls in [off, off+len(buf)) into buf.
func overlay(buf []byte, off int64, op Op) {
	lo, hi := max(off, op.Off), min(off+int64(len(buf)), op.Off+op.Len)
	if lo >= hi {
		return
	}
	dst := buf[lo-off : hi-off]
	if op.Data == nil {
		clear(dst)
		return
	}
	copy(dst, op.Data[lo-op.Off:hi-op.Off])
}

// Enumerator walks the crash states of one log.
type Enumerator struct {
	log  *Log
	opts Options
	// Stats is filled in as States runs.
	Stats Stats

	durable, current *image
}

// New returns an enumerator for l.
func New(l *Log, opts Options) *Enumerator {
	return &Enumerator{log: l, opts: opts}
}

// States yields, for every crash point k from 0 (nothing happened) to
// len(Log.Ops), these states, skipping any with the same writes and EFI
// variables as one already yielded:
//   - Durable: none of the unflushed writes;
//   - Complete: all of them;
//   - Alone: each unflushed write with none of the others;
//   - Dropped: all but one, for each of the DropWindow most recent unflushed
//     writes;
//   - Torn: all of them but the last write (when the op before k is a write)
//     cut after a multiple of each TearSizes granularity, at up to MaxTears
//     evenly spread cuts.
//
// Persisting the unflushed writes in order (a prefix) is the Complete state
// of an earlier point, so prefixes need no states of their own. An error
// (scratch file I/O) ends the sequence.
func (e *Enumerator) States() iter.Seq2[*State, error] {
	return func(yield func(*State, error) bool) {
		e.Stats = Stats{}
		if err := e.open(); err != nil {
			yield(nil, err)
			return
		}
		defer e.close()
		if err := e.walk(yield); err != nil {
			yield(nil, err)
		}
	}
}

func (e *Enumerator) open() error {
	dir := e.opts.Dir
	if dir == "" {
		dir = os.TempDir()
	}
	tmp, err := os.MkdirTemp(dir, "crash-")
	if err != nil {
		return fmt.Errorf("crash states: %w", err)
	}
	e.durable, e.current = &image{path: filepath.Join(tmp, "durable.img")}, &image{path: filepath.Join(tmp, "current.img")}
	for _, img := range []*image{e.durable, e.current} {
		if err := makeImage(img.path, e.opts.Base, e.log.Size); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("crash states: %w", err)
		}
		if img.f, err = os.OpenFile(img.path, os.O_RDWR, 0); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("crash states: %w", err)
		}
	}
	return nil
}

func (e *Enumerator) close() {
	for _, img := range []*image{e.durable, e.current} {
		if img != nil && img.f != nil {
			img.f.Close()
		}
	}
	if e.durable != nil {
		os.RemoveAll(filepath.Dir(e.durable.path))
	}
}

// stateKey identifies a state by the set of writes on its disk (as two
// independent order-free sums of per-write hashes), its EFI store and its
// tear, so duplicates cost O(1) to find.
type stateKey struct {
	a, b      uint64
	efi       int
	torn      int
	tornBytes int64
}

func writeHash(i int) (uint64, uint64) {
	return splitmix(uint64(i)*2 + 1), splitmix(uint64(i)*2 + 0x9e3779b97f4a7c15)
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func (e *Enumerator) walk(yield func(*State, error) bool) error {
	ops := e.log.Ops
	seen := map[stateKey]bool{}
	var (
		pending        []int
		dA, dB, pA, pB uint64 // hashes of the durable and the unflushed writes
		durable        int
		efiVersion     int
		efi            = e.log.EFI
		lastEFI        = -1
		lastDurable    = -1
	)
	for k := 0; k <= len(ops); k++ {
		if k > 0 {
			op := ops[k-1]
			switch op.Kind {
			case OpWrite:
				if op.Len == 0 {
					continue
				}
				if err := e.current.writeOp(op, op.Len); err != nil {
					return fmt.Errorf("crash states: apply op %d: %w", k-1, err)
				}
				pending = append(pending, k-1)
				a, b := writeHash(k - 1)
				pA, pB = pA+a, pB+b
			case OpFlush:
				for _, w := range pending {
					if err := e.durable.writeOp(ops[w], ops[w].Len); err != nil {
						return fmt.Errorf("crash states: apply op %d: %w", w, err)
					}
				}
				pending, durable = nil, k
				dA, dB, pA, pB = dA+pA, dB+pB, 0, 0
			case OpEFISet, OpEFIRemove:
				efi = applyEFI(efi, op)
				efiVersion++
			default:
				continue // marks change nothing
			}
		}
		e.Stats.Points++
		e.Stats.MaxPending = max(e.Stats.MaxPending, len(pending))
		base := State{Point: k, Durable: durable, Write: -1, e: e, pending: pending, efi: efi}
		emit := func(s State, a, b uint64) bool {
			key := stateKey{a: a, b: b, efi: efiVersion, torn: -1}
			if s.Kind == Torn {
				key.torn, key.tornBytes = s.Write, s.TornBytes
			}
			if seen[key] {
				e.Stats.Duplicates++
				return true
			}
			seen[key] = true
			e.Stats.States++
			e.Stats.ByKind[s.Kind]++
			st := &s
			ok := yield(st, nil)
			if err := st.restore(); err != nil {
				yield(nil, fmt.Errorf("crash states: restore scratch after %s: %w", st, err))
				return false
			}
			return ok
		}
		with := func(kind Kind, w int) State { s := base; s.Kind, s.Write = kind, w; return s }
		if !emit(with(Durable, -1), dA, dB) || !emit(with(Complete, -1), dA+pA, dB+pB) {
			return nil
		}
		// Torn: the op just before the point is the last write.
		if n := len(pending); n > 0 && pending[n-1] == k-1 {
			last := ops[k-1]
			a, b := writeHash(k - 1)
			for _, cut := range tearPoints(last.Len, e.opts.tearSizes(), e.opts.maxTears(), &e.Stats.Omitted) {
				s := with(Torn, k-1)
				s.TornBytes = cut
				if !emit(s, dA+pA-a, dB+pB-b) {
					return nil
				}
			}
		}
		// Alone: a write alone is the same state at every later point of
		// its epoch, so only the newest is new unless the durable prefix
		// or the EFI store changed since the last point.
		alone := pending
		if durable == lastDurable && efiVersion == lastEFI && len(pending) > 0 {
			alone = pending[len(pending)-1:]
		}
		for _, w := range alone {
			a, b := writeHash(w)
			if !emit(with(Alone, w), dA+a, dB+b) {
				return nil
			}
		}
		window := e.opts.dropWindow()
		for i := len(pending) - 1; i >= 0; i-- {
			if len(pending)-1-i >= window {
				e.Stats.Omitted += i + 1
				break
			}
			a, b := writeHash(pending[i])
			if !emit(with(Dropped, pending[i]), dA+pA-a, dB+pB-b) {
				return nil
			}
		}
		lastDurable, lastEFI = durable, efiVersion
	}
	return nil
}

// tearPoints returns where a write of n bytes is cut: multiples of each
// granularity strictly inside it, at most max per granularity spread evenly
// (always the first and the last), without repeats.
func tearPoints(n int64, sizes []int, maxCuts int, omitted *int) []int64 {
	var out []int64
	have := map[int64]bool{}
	for _, g := range sizes {
		cuts := n / int64(g)
		if n%int64(g) == 0 {
			cuts-- // a cut at the end is the whole write
		}
		if cuts <= 0 {
			continue
		}
		take := min(cuts, int64(maxCuts))
		*omitted += int(cuts - take)
		for j := int64(0); j < take; j++ {
			// Spread take cuts over 1..cuts, always including both ends.
			c := int64(1)
			if take > 1 {
				c = 1 + j*(cuts-1)/(take-1)
			}
			if cut := c * int64(g); !have[cut] {
				have[cut] = true
				out = append(out, cut)
			}
		}
	}
	return out
}

// applyEFI returns the store after op, copying it so earlier states keep
// theirs.
func applyEFI(in map[string]EFIVar, op Op) map[string]EFIVar {
	out := make(map[string]EFIVar, len(in)+1)
	for k, v := range in {
		out[k] = v
	}
	if op.Kind == OpEFISet {
		out[op.Name] = EFIVar{Attrs: op.Attrs, Data: op.Data}
	} else {
		delete(out, op.Name)
	}
	return out
}
