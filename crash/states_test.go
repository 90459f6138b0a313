package crash

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func fill(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }

func write(off int64, data []byte) Op {
	return Op{Kind: OpWrite, Off: off, Len: int64(len(data)), Data: data}
}

var flush = Op{Kind: OpFlush}

// model computes a state's disk the slow, obvious way: every write before the
// durable point, then the kept unflushed writes in order, then the torn prefix.
func model(t *testing.T, l *Log, base []byte, s *State) []byte {
	t.Helper()
	disk := make([]byte, l.Size)
	copy(disk, base)
	put := func(op Op, n int64) {
		if op.Data == nil {
			clear(disk[op.Off : op.Off+n])
		} else {
			copy(disk[op.Off:], op.Data[:n])
		}
	}
	for i, op := range l.Ops[:s.Point] {
		if op.Kind != OpWrite {
			continue
		}
		keep := i < s.Durable
		if !keep {
			switch s.Kind {
			case Complete:
				keep = true
			case Alone:
				keep = i == s.Write
			case Dropped, Torn:
				keep = i != s.Write
			}
		}
		if keep {
			put(op, op.Len)
		}
	}
	if s.Kind == Torn {
		put(l.Ops[s.Write], s.TornBytes)
	}
	return disk
}

// run enumerates l and checks every state's materialized bytes against model.
func run(t *testing.T, l *Log, base []byte, opts Options) ([]*State, Stats) {
	t.Helper()
	if base != nil {
		opts.Base = filepath.Join(t.TempDir(), "base.img")
		if err := os.WriteFile(opts.Base, base, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts.Dir = t.TempDir()
	e := New(l, opts)
	var states []*State
	for st, err := range e.States() {
		if err != nil {
			t.Fatal(err)
		}
		path, err := st.Materialize()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := model(t, l, base, st); !bytes.Equal(got, want) {
			t.Errorf("%s: materialized disk differs from the model", st)
		}
		cp := *st
		cp.pending = append([]int(nil), st.pending...)
		states = append(states, &cp)
	}
	if left, _ := os.ReadDir(opts.Dir); len(left) != 0 {
		t.Errorf("scratch files left behind: %v", left)
	}
	return states, e.Stats
}

func TestStatesCountsAndContents(t *testing.T) {
	l := &Log{Size: 16 << 10, Ops: []Op{
		write(0, fill('a', 512)),   // 0
		write(512, fill('b', 512)), // 1
		flush,                      // 2
		write(0, fill('c', 1024)),  // 3: overwrites a and b
		write(4096, fill('d', 8192)),
		{Kind: OpEFISet, Name: "Boot0001", Attrs: 7, Data: []byte{1}}, // 5
		{Kind: OpMark, Name: "stage done"},                            // 6: no crash point
		flush,                                                         // 7
	}}
	states, st := run(t, l, nil, Options{})
	// Worked out by hand in the comment of each point:
	//  p0 durable | p1 complete | p2 complete, alone(1) | p3 - | p4 complete, torn 512
	//  p5 complete, 5 torn (512: 512 2560 5120 7680; 4096: 4096), alone(4)
	//  p6 (new EFI) durable, complete, alone(3), alone(4) | p8 -
	want := Stats{Points: 8, States: 17, Duplicates: 19, Omitted: 11, MaxPending: 2}
	want.ByKind = [5]int{Durable: 2, Complete: 5, Alone: 4, Dropped: 0, Torn: 6}
	if st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	var cuts []int64
	for _, s := range states {
		if s.Kind == Torn && s.Point == 5 {
			cuts = append(cuts, s.TornBytes)
		}
		if s.Point == 6 && s.EFIVars()["Boot0001"].Attrs != 7 {
			t.Errorf("%s: EFI store lacks Boot0001", s)
		}
		if s.Point < 6 && len(s.EFIVars()) != 0 {
			t.Errorf("%s: EFI store has %v before it was set", s, s.EFIVars())
		}
	}
	if want := []int64{512, 2560, 5120, 7680, 4096}; !equalInts(cuts, want) {
		t.Errorf("tear points of the 8 KiB write = %v, want %v", cuts, want)
	}
}

func TestStatesTornContents(t *testing.T) {
	l := &Log{Size: 4096, Ops: []Op{write(0, fill('b', 1024)), flush, write(0, fill('c', 1024))}}
	states, _ := run(t, l, nil, Options{})
	var found bool
	for _, s := range states {
		if s.Kind != Torn || s.Write != 2 {
			continue
		}
		found = true
		// run already compared the materialized disk with the model; this
		// pins the model to what a torn overwrite must look like.
		d := model(t, l, nil, s)
		if !bytes.Equal(d[:512], fill('c', 512)) || !bytes.Equal(d[512:1024], fill('b', 512)) {
			t.Errorf("torn state: first KiB is %q…, want 512 c then 512 b", d[:8])
		}
	}
	if !found {
		t.Fatal("no torn state for the 1 KiB overwrite")
	}
}

func TestStatesDropWindow(t *testing.T) {
	l := &Log{Size: 4096, Ops: []Op{write(0, fill('x', 512)), write(1024, fill('y', 512)), write(2048, fill('z', 512))}}
	_, st := run(t, l, nil, Options{})
	// p3 adds dropped(1) = {0,2} and dropped(0) = {1,2}.
	if st.States != 8 || st.Duplicates != 9 || st.ByKind[Dropped] != 2 || st.Omitted != 0 {
		t.Errorf("window 16: stats = %+v, want 8 states, 9 duplicates, 2 dropped", st)
	}
	_, st = run(t, l, nil, Options{DropWindow: 1})
	if st.States != 6 || st.ByKind[Dropped] != 0 || st.Omitted != 3 {
		t.Errorf("window 1: stats = %+v, want 6 states, 0 dropped, 3 omitted", st)
	}
}

func TestStatesBaseAndZeroes(t *testing.T) {
	base := fill('o', 8192)
	l := &Log{Size: 8192, Ops: []Op{
		write(0, fill('n', 4096)),
		{Kind: OpWrite, Off: 4096, Len: 4096}, // a discard reads back as zeroes
		flush,
	}}
	states, _ := run(t, l, base, Options{})
	if len(states) == 0 {
		t.Fatal("no states")
	}
	if states[0].Kind != Durable || states[0].Point != 0 {
		t.Errorf("first state is %s, want the untouched base", states[0])
	}
}

func TestStatesBreakCleansUp(t *testing.T) {
	dir := t.TempDir()
	l := &Log{Size: 4096, Ops: []Op{write(0, fill('x', 512)), write(512, fill('y', 512))}}
	n := 0
	for st, err := range New(l, Options{Dir: dir}).States() {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Materialize(); err != nil {
			t.Fatal(err)
		}
		if n++; n == 2 {
			break
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("scratch files left after break: %v", left)
	}
}

func TestStatesBaseSizeMismatch(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base.img")
	os.WriteFile(base, make([]byte, 100), 0o600)
	for _, err := range New(&Log{Size: 4096}, Options{Base: base, Dir: t.TempDir()}).States() {
		if err == nil {
			t.Fatal("a base of the wrong size was accepted")
		}
		return
	}
	t.Fatal("no error for a base of the wrong size")
}

func TestLogRoundTrip(t *testing.T) {
	l := &Log{Size: 1 << 20, EFI: map[string]EFIVar{"BootOrder": {Attrs: 7, Data: []byte{1, 0}}}, Ops: []Op{
		write(4096, []byte("hello")), {Kind: OpWrite, Off: 0, Len: 512}, flush, {Kind: OpMark, Name: "reboot"},
	}}
	var buf bytes.Buffer
	if _, err := l.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadLog(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if got.Size != l.Size || len(got.Ops) != 4 || string(got.Ops[0].Data) != "hello" || got.Ops[1].Data != nil ||
		got.Ops[3].Name != "reboot" || got.EFI["BootOrder"].Attrs != 7 {
		t.Errorf("round trip = %+v, want %+v", got, l)
	}
	if _, err := ReadLog(bytes.NewReader([]byte("garbage"))); err == nil {
		t.Error("garbage read as a log")
	}
}

func TestTearPoints(t *testing.T) {
	var omitted int
	got := tearPoints(4096, []int{512, 4096}, 4, &omitted)
	// 7 cuts at 512 granularity, 4 taken (1, 3, 5, 7 sectors); none at 4096.
	if want := []int64{512, 1536, 2560, 3584}; !equalInts(got, want) || omitted != 3 {
		t.Errorf("tearPoints = %v (omitted %d), want %v (omitted 3)", got, omitted, want)
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
