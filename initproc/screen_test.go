package initproc

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
	"github.com/nodeinit/nodeinit/tui"
)

// fakeConsole is a console at the syscall edge: keys typed into a pipe, what is written
// kept, and whether the line was restored and closed.
type fakeConsole struct {
	keys     *io.PipeReader
	typeKeys *io.PipeWriter
	mu       sync.Mutex
	out      bytes.Buffer
	restored bool
	closed   bool
}

func newFakeConsole() *fakeConsole {
	r, w := io.Pipe()
	return &fakeConsole{keys: r, typeKeys: w}
}

func (c *fakeConsole) Read(p []byte) (int, error) { return c.keys.Read(p) }

func (c *fakeConsole) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

func (c *fakeConsole) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.keys.Close()
}

func (c *fakeConsole) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *fakeConsole) state() (restored, closed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.restored, c.closed
}

// events collects the screen's info events.
type events struct {
	mu  sync.Mutex
	all []stages.Event
}

func (e *events) Emit(ev stages.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) messages() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var b strings.Builder
	for _, ev := range e.all {
		b.WriteString(ev.Message + "\n")
	}
	return b.String()
}

// testScreen is a screen on the given consoles (by device name); a device without one
// does not open, as a console that is not a terminal.
func testScreen(t *testing.T, out *early.Output, cons map[string]io.ReadWriteCloser) (*screen, *events) {
	t.Helper()
	ev := &events{}
	s := &screen{out: out, sink: ev, wait: time.Minute, done: time.Minute,
		open: func(term early.Terminal) (io.ReadWriteCloser, func(), error) {
			c, ok := cons[term.Dev]
			if !ok {
				return nil, nil, errors.New("not a terminal")
			}
			restore := func() {}
			if fc, ok := c.(*fakeConsole); ok {
				restore = func() { fc.mu.Lock(); fc.restored = true; fc.mu.Unlock() }
			}
			return c, restore, nil
		}}
	return s, ev
}

// TestPickFirstToAnswer: the prompt goes to every console that opens; Enter on the second
// wins, the others say where the screen runs and are restored and closed; the winner is
// restored (the screen sets its own mode) and left open.
func TestPickFirstToAnswer(t *testing.T) {
	s0, s1, vga := newFakeConsole(), newFakeConsole(), newFakeConsole()
	s, ev := testScreen(t, early.NewOutput(nil), map[string]io.ReadWriteCloser{"ttyS0": s0, "ttyS1": s1, "tty1": vga})
	terms := early.Terminals("console=ttyS0,115200 console=ttyS1 console=tty0 console=ttyS9")
	got := make(chan *opened, 1)
	go func() { got <- s.pick(context.Background(), terms) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(s1.output(), screenPrompt) {
		if time.Now().After(deadline) {
			t.Fatal("no prompt on ttyS1")
		}
		time.Sleep(time.Millisecond)
	}
	io.WriteString(s0.typeKeys, "x") // not Enter: not an answer
	io.WriteString(s1.typeKeys, "\r")
	var won *opened
	select {
	case won = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("pick did not return after Enter")
	}
	if won == nil || won.Dev != "ttyS1" || won.Term != "vt100" {
		t.Fatalf("pick = %+v, want ttyS1", won)
	}
	for name, c := range map[string]*fakeConsole{"ttyS0": s0, "tty1": vga} {
		if !strings.Contains(c.output(), screenPrompt) {
			t.Errorf("%s got no prompt: %q", name, c.output())
		}
		if !strings.Contains(c.output(), "the installer runs on ttyS1") {
			t.Errorf("%s does not say where the screen runs: %q", name, c.output())
		}
		if restored, closed := c.state(); !restored || !closed {
			t.Errorf("%s: restored %v, closed %v; want both", name, restored, closed)
		}
	}
	if restored, closed := s1.state(); !restored || closed {
		t.Errorf("the winner: restored %v, closed %v; want restored and open", restored, closed)
	}
	if m := ev.messages(); !strings.Contains(m, "installer screen on ttyS1") || !strings.Contains(m, "waiting up to 1m0s for Enter on [ttyS0 ttyS1 tty1]") {
		t.Errorf("events say:\n%s", m)
	}
}

// TestPickNobodyAnswers: without Enter within the wait, pick gives up and every console
// says so and is closed.
func TestPickNobodyAnswers(t *testing.T) {
	c := newFakeConsole()
	s, ev := testScreen(t, early.NewOutput(nil), map[string]io.ReadWriteCloser{"ttyS0": c})
	s.wait = 50 * time.Millisecond
	if won := s.pick(context.Background(), early.Terminals("console=ttyS0")); won != nil {
		t.Fatalf("pick = %+v, want none", won)
	}
	if !strings.Contains(c.output(), "no console answered") {
		t.Errorf("the console does not say nobody answered: %q", c.output())
	}
	if restored, closed := c.state(); !restored || !closed {
		t.Errorf("restored %v, closed %v; want both", restored, closed)
	}
	if !strings.Contains(ev.messages(), "no console answered within 50ms") {
		t.Errorf("events say:\n%s", ev.messages())
	}
}

// TestPickNoTerminalDoesNotWait: when no console opens as a terminal there is no one to
// wait for.
func TestPickNoTerminalDoesNotWait(t *testing.T) {
	s, _ := testScreen(t, early.NewOutput(nil), nil)
	s.wait = time.Hour
	start := time.Now()
	if won := s.pick(context.Background(), early.Terminals("console=ttyS0 console=tty0")); won != nil {
		t.Fatalf("pick = %+v", won)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("pick waited %s with no terminal", d)
	}
}

// facts reads a facts fixture of testdata/facts.
func facts(t *testing.T, name string) *plan.Facts {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "facts", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := plan.ParseFacts(name, b)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func parse(t *testing.T, line string) *cmdline.Params {
	t.Helper()
	p, err := cmdline.Parse(line)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func same(p *cmdline.Params) *cmdline.Params { return p }

// TestDecideCompleteLineNeverOpens: a line that leaves nothing open, or says
// nodeinit.interactive=0, is planned at once; no console is opened or waited for.
func TestDecideCompleteLineNeverOpens(t *testing.T) {
	s := &screen{out: early.NewOutput(nil), wait: time.Hour, open: func(early.Terminal) (io.ReadWriteCloser, func(), error) {
		t.Error("a console was opened for a line that needs no screen")
		return nil, nil, errors.New("no")
	}}
	for _, tc := range []struct{ facts, line string }{
		{"one-nvme", "install storage_init=serial:S5GXNF0R100001 console=ttyS0"},
		{"several-disks", "install nodeinit.interactive=0 console=ttyS0"},
		{"installed", "console=ttyS0"},
	} {
		bp, p, err := decide(context.Background(), s, parse(t, tc.line), facts(t, tc.facts), same, early.Terminals(tc.line))
		if tc.line == "install nodeinit.interactive=0 console=ttyS0" {
			// The open choice is refused by the plan, as without a console.
			if err == nil || !strings.Contains(err.Error(), "nothing was written") {
				t.Errorf("%s: %v, want the plan's refusal", tc.line, err)
			}
			continue
		}
		if err != nil || bp == nil || p == nil {
			t.Errorf("%s: %v", tc.line, err)
		}
	}
}

// ptyConsole is a pty standing in for ttyS0: the screen runs on its slave side, the test
// types on its master side.
type ptyConsole struct {
	t      *testing.T
	master *os.File
	slave  *os.File
	mu     sync.Mutex
	out    bytes.Buffer
}

func newPTY(t *testing.T) *ptyConsole {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	pty.Setsize(master, &pty.Winsize{Rows: 24, Cols: 80})
	c := &ptyConsole{t: t, master: master, slave: slave}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			c.mu.Lock()
			c.out.Write(buf[:n])
			c.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { slave.Close(); master.Close(); <-done })
	return c
}

// textOut is the console as the text output opens it: a second file on the same terminal.
func (c *ptyConsole) textOut() *os.File {
	f, err := os.OpenFile(c.slave.Name(), os.O_WRONLY, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { f.Close() })
	return f
}

func (c *ptyConsole) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

func (c *ptyConsole) wait(s string) {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(c.output(), s) {
		if time.Now().After(deadline) {
			out := c.output()
			if len(out) > 2000 {
				out = out[len(out)-2000:]
			}
			c.t.Fatalf("the console never showed %q; it shows %q", s, out)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The keys as a VT100 sends them.
var keyBytes = map[string]string{"down": "\x1b[B", "tab": "\t", "shift+tab": "\x1b[Z", "enter": "\r", "space": " ", "ctrl+c": "\x03"}

func (c *ptyConsole) typeKeys(keys ...string) {
	for _, k := range keys {
		b, ok := keyBytes[k]
		if text, isText := strings.CutPrefix(k, "="); isText {
			b, ok = text, true
		}
		if !ok {
			c.t.Fatalf("no bytes for %q", k)
		}
		io.WriteString(c.master, b)
		time.Sleep(5 * time.Millisecond)
	}
}

func tabs(n int) []string { return strings.Split(strings.Repeat("tab ", n), " ")[:n] }

// TestDecideCancel: the person quits the screen: decide returns tui.ErrCanceled (nothing
// was written, and no plan to run), and the console gets the text output back.
func TestDecideCancel(t *testing.T) {
	c := newPTY(t)
	var other bytes.Buffer
	out := early.NewNamedOutput(nil, []string{"ttyS0", "tty0"}, []io.Writer{c.textOut(), &other})
	s, _ := testScreen(t, out, map[string]io.ReadWriteCloser{"ttyS0": c.slave})
	type decided struct {
		bp  *plan.Blueprint
		err error
	}
	got := make(chan decided, 1)
	line := "install console=ttyS0,115200 console=tty0"
	go func() {
		bp, _, err := decide(context.Background(), s, parse(t, line), facts(t, "several-disks"), same, early.Terminals(line))
		got <- decided{bp, err}
	}()
	c.wait(screenPrompt)
	c.typeKeys("enter")
	c.wait("Welcome")
	out.Write([]byte("engine text while the screen is up\n"))
	c.typeKeys("ctrl+c")
	var d decided
	select {
	case d = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("decide did not return after Ctrl-C")
	}
	if !errors.Is(d.err, tui.ErrCanceled) || d.bp != nil || !strings.Contains(d.err.Error(), "nothing was written") {
		t.Fatalf("decide = %v, %v; want tui.ErrCanceled and no plan", d.bp, d.err)
	}
	if strings.Contains(c.output(), "engine text while the screen is up") {
		t.Error("the text output reached the console the screen was on")
	}
	if !strings.Contains(other.String(), "engine text while the screen is up") {
		t.Error("the other console lost the text output")
	}
	out.Write([]byte("after the screen\n"))
	c.wait("after the screen")
}

// TestDecideInstallAndFollow types an install on the screen: decide returns the plan of
// the screen's line on the same facts, the progress page follows the events of the run,
// and the done page's Enter ends it; the console is held from the prompt's answer to the
// done page.
func TestDecideInstallAndFollow(t *testing.T) {
	c := newPTY(t)
	var other bytes.Buffer
	out := early.NewNamedOutput(nil, []string{"ttyS0", "tty0"}, []io.Writer{c.textOut(), &other})
	s, _ := testScreen(t, out, map[string]io.ReadWriteCloser{"ttyS0": c.slave})
	f := facts(t, "several-disks")
	type decided struct {
		bp  *plan.Blueprint
		p   *cmdline.Params
		err error
	}
	got := make(chan decided, 1)
	line := "install console=ttyS0,115200 console=tty0"
	adjusted := false
	adjust := func(p *cmdline.Params) *cmdline.Params { adjusted = true; return p }
	go func() {
		bp, p, err := decide(context.Background(), s, parse(t, line), f, adjust, early.Terminals(line))
		got <- decided{bp, p, err}
	}()
	c.wait(screenPrompt)
	c.typeKeys("enter")
	c.wait("Welcome")
	c.typeKeys("enter")                                              // Install
	c.typeKeys("down", "enter", "tab", "tab", "tab", "enter")        // sdb, Next
	c.typeKeys(append(tabs(6), "enter")...)                          // the layout's Next
	c.typeKeys("=hunter2", "tab", "=hunter2", "tab", "tab", "enter") // password twice, Next
	c.typeKeys("=node7")                                             // host name
	c.typeKeys(append(tabs(6), "enter")...)                          // DHCP, Next
	c.wait("nothing has been written yet")
	c.typeKeys("shift+tab", "enter") // Install
	var d decided
	select {
	case d = <-got:
	case <-time.After(30 * time.Second):
		t.Fatalf("decide did not return; the screen shows %q", c.output())
	}
	if d.err != nil {
		t.Fatalf("decide: %v", d.err)
	}
	if d.bp.Action != cmdline.ActionInstall || d.bp.Target == nil || d.bp.Target.Name != "sdb" || d.p.Hostname != "node7" || d.p.AdminPW == "" {
		t.Fatalf("decide planned %s on %+v for hostname %q", d.bp.Action, d.bp.Target, d.p.Hostname)
	}
	if !adjusted {
		t.Error("the screen's params did not go through the probe's Machine.Params")
	}

	sink, finish := s.follow(context.Background())
	for _, st := range d.bp.Steps {
		out.Write([]byte("text line of " + st.Name + "\n"))
		sink.Emit(stages.Event{Time: time.Now(), Stage: st.Name, Kind: stages.EventStart})
		sink.Emit(stages.Event{Time: time.Now(), Stage: st.Name, Kind: stages.EventDone, Duration: time.Millisecond})
	}
	finished := make(chan struct{})
	go func() { finish(); close(finished) }()
	c.wait("unattended")
	c.typeKeys("enter") // the done page's Finish
	select {
	case <-finished:
	case <-time.After(20 * time.Second):
		t.Fatal("finish did not return after the done page's Enter")
	}
	sink.Emit(stages.Event{Stage: "reboot", Kind: stages.EventStart}) // after the screen: dropped, not blocking
	if strings.Contains(c.output(), "text line of") {
		t.Error("the text output reached the console while the screen was up")
	}
	if !strings.Contains(other.String(), "text line of partition") {
		t.Error("the other console lost the text output")
	}
	out.Write([]byte("rebooting\n"))
	c.wait("rebooting")
}

// TestPlanChosen: the screen's line is planned again on the same facts and must give the
// plan the person confirmed.
func TestPlanChosen(t *testing.T) {
	f := facts(t, "several-disks")
	line := "install storage_init=serial:WD-WCC4N0000002 hostname=n1 console=ttyS0"
	p := parse(t, line)
	confirmed, err := plan.Plan(p, f)
	if err != nil {
		t.Fatal(err)
	}
	q, bp, err := planChosen(&tui.Result{Line: line, Params: p, Plan: confirmed}, f, same)
	if err != nil || bp.Target.Name != "sdb" || q.Hostname != "n1" {
		t.Fatalf("planChosen = %v, %v", bp, err)
	}
	// Another plan than the one confirmed (here: another disk's) is refused.
	other, err := plan.Plan(parse(t, "install storage_init=serial:WD-WCC4N0000003 hostname=n1 console=ttyS0"), f)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := planChosen(&tui.Result{Line: line, Params: p, Plan: other}, f, same); err == nil || !strings.Contains(err.Error(), "not the plan confirmed") {
		t.Errorf("a different plan: %v", err)
	}
	// A line the plan refuses is refused, nothing written.
	if _, _, err := planChosen(&tui.Result{Line: "install", Params: parse(t, "install")}, f, same); err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Errorf("a refused line: %v", err)
	}
}
