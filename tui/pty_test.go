package tui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/go-crypt/crypt/algorithm/shacrypt"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
)

// console is a pty standing in for ttyS0: the screen runs on its slave side,
// the test types on and reads from its master side.
type console struct {
	t      *testing.T
	master *os.File
	slave  *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan struct{}
}

func newConsole(t *testing.T) *console {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	if err := pty.Setsize(master, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	c := &console{t: t, master: master, slave: slave, done: make(chan struct{})}
	go func() {
		defer close(c.done)
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
	t.Cleanup(func() {
		slave.Close()
		master.Close()
		<-c.done
	})
	return c
}

// output is everything the screen wrote so far.
func (c *console) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.String()
}

// wait waits until the screen has written s.
func (c *console) wait(s string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.output(), s) {
		if time.Now().After(deadline) {
			c.t.Fatalf("the screen never wrote %q; it wrote %q", s, tail(c.output()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

// The keys as a VT100 sends them.
var keyBytes = map[string]string{
	"up": "\x1b[A", "down": "\x1b[B", "right": "\x1b[C", "left": "\x1b[D", "tab": "\t", "shift+tab": "\x1b[Z",
	"enter": "\r", "space": " ", "backspace": "\x7f", "ctrl+c": "\x03",
}

// typeKeys types keys as press does: names, or "=text".
func (c *console) typeKeys(keys ...string) {
	c.t.Helper()
	for _, k := range keys {
		b, ok := keyBytes[k]
		if t, isText := strings.CutPrefix(k, "="); isText {
			b, ok = t, true
		}
		if !ok {
			c.t.Fatalf("no bytes for key %q", k)
		}
		if _, err := io.WriteString(c.master, b); err != nil {
			c.t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// repeat is key n times.
func repeat(key string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = key
	}
	return out
}

// TestPTYInstall types a whole install on a VT100-like console, from the
// welcome page to the plan's Install button, and gets the command line, which
// parses back and plans on the same facts; then shows the progress of events
// fed in and the done page.
func TestPTYInstall(t *testing.T) {
	c := newConsole(t)
	f := facts(t, "several-disks")
	s := &Session{In: c.slave, Out: c.slave, Term: "vt100", Facts: f, Params: parse(t, "install console=ttyS0,115200")}
	type result struct {
		r   *Result
		err error
	}
	got := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		r, err := s.Choose(ctx)
		got <- result{r, err}
	}()
	c.wait("Welcome")
	c.typeKeys("enter")                                              // Install 1.0
	c.typeKeys("down", "enter", "down", "down", "space")             // sdb installs, sdd is app-data disk 1
	c.typeKeys("tab", "=WD-WCC4N0000004", "tab", "enter")            // its serial, Next
	c.typeKeys("tab", "=4096")                                       // Root 4096
	c.typeKeys(append(repeat("tab", 7), "enter")...)                 // Next
	c.typeKeys("=hunter2", "tab", "=hunter2", "tab", "tab", "enter") // password twice, Next
	c.typeKeys("=node1.example.com")                                 // host name
	c.typeKeys(append(repeat("tab", 6), "enter")...)                 // DHCP on eth0, Next
	c.wait("nothing has been written yet")                           // the plan page
	c.typeKeys("shift+tab", "enter")                                 // Install
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		t.Fatalf("the screen did not return; it wrote %q", tail(c.output()))
	}
	if res.err != nil {
		t.Fatalf("Choose: %v", res.err)
	}
	line := res.r.Line
	p, err := cmdline.Parse(line)
	if err != nil {
		t.Fatalf("the line %q does not parse: %v", line, err)
	}
	for _, want := range []string{"install ", "storage_init=serial:WD-WCC4N0000002,serial:WD-WCC4N0000004", "storage_vol=4096,root",
		"nodeinit.wipe=WD-WCC4N0000004", "BOOTIF=52:54:00:12:34:56", "ip=dhcp", "hostname=node1.example.com", "console=ttyS0,115200"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	if d, err := shacrypt.Decode(p.AdminPW.Reveal()); err != nil || !d.Match("hunter2") {
		t.Errorf("adminpw in %q does not verify: %v", line, err)
	}
	bp, err := plan.Plan(p, f)
	if err != nil {
		t.Fatalf("the line %q does not plan: %v", line, err)
	}
	if bp.Action != cmdline.ActionInstall || bp.Target.Name != "sdb" || len(bp.AppData) != 1 || bp.AppData[0].Target.Name != "sdd" {
		t.Errorf("plan: %s on %v, app-data %v", bp.Action, bp.Target, bp.AppData)
	}
	if strings.Contains(c.output(), "hunter2") {
		t.Errorf("the password was echoed")
	}
	if strings.ContainsFunc(c.output(), func(r rune) bool { return r >= 0x80 }) {
		t.Errorf("a VT100 got characters outside ASCII")
	}

	events := make(chan stages.Event)
	followed := make(chan error, 1)
	go func() { followed <- s.Follow(ctx, events) }()
	for i, st := range bp.Steps {
		events <- stages.Event{Time: time.Now(), Stage: st.Name, Kind: stages.EventStart}
		if i == 0 {
			c.wait("Installing demo-node 1.0 on /dev/sdb")
		}
		if st.Name == plan.StageWriteSlot {
			events <- stages.Event{Time: time.Now(), Stage: st.Name, Kind: stages.EventProgress, Done: 100 << 20, Total: 300 << 20, Rate: 50e6}
		}
		events <- stages.Event{Time: time.Now(), Stage: st.Name, Kind: stages.EventDone, Duration: time.Millisecond}
	}
	close(events)
	c.wait("unattended")
	c.typeKeys("enter") // Finish
	select {
	case err := <-followed:
		if err != nil {
			t.Fatalf("Follow: %v", err)
		}
	case <-ctx.Done():
		t.Fatalf("Follow did not return; the screen wrote %q", tail(c.output()))
	}
	for _, want := range []string{"Installed", "WD-WCC4N0000002", "Finish"} {
		if !strings.Contains(c.output(), want) {
			t.Errorf("the screen never wrote %q", want)
		}
	}
}

// TestPTYCancel: Ctrl-C quits with ErrCanceled, which says nothing was written.
func TestPTYCancel(t *testing.T) {
	c := newConsole(t)
	errc := make(chan error, 1)
	go func() {
		_, err := Run(context.Background(), c.slave, c.slave, "linux", facts(t, "one-nvme"), parse(t, "install"), ImageInfo{})
		errc <- err
	}()
	c.wait("Welcome")
	c.typeKeys("enter", "ctrl+c")
	select {
	case err := <-errc:
		if !errors.Is(err, ErrCanceled) {
			t.Errorf("Run: %v, want ErrCanceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestPTYContext: a canceled context ends the screen with its error, saying
// nothing was written.
func TestPTYContext(t *testing.T) {
	c := newConsole(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := Run(ctx, c.slave, c.slave, "linux", facts(t, "one-nvme"), parse(t, "install"), ImageInfo{})
		errc <- err
	}()
	c.wait("Welcome")
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing was written") {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}

// TestPTYDumb: on a dumb terminal every frame is printed whole, with no
// escape sequence at all, and the keys still work.
func TestPTYDumb(t *testing.T) {
	c := newConsole(t)
	linec := make(chan string, 1)
	errc := make(chan error, 1)
	go func() {
		line, err := Run(context.Background(), c.slave, c.slave, "dumb", facts(t, "several-disks"), parse(t, "install console=ttyS0"), ImageInfo{})
		linec <- line
		errc <- err
	}()
	c.wait("Welcome")
	c.typeKeys("tab", "tab", "enter") // Rescue shell
	var line string
	select {
	case line = <-linec:
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	if err := <-errc; err != nil || line != "rescue console=ttyS0" {
		t.Fatalf("Run = %q, %v", line, err)
	}
	out := c.output()
	if strings.Contains(out, "\x1b") {
		t.Errorf("a dumb terminal got escape sequences: %q", tail(out))
	}
	if !strings.Contains(out, "> Rescue shell") || strings.ContainsFunc(out, func(r rune) bool { return r >= 0x80 }) {
		t.Errorf("frames are not plain ASCII with the focus marked: %q", tail(out))
	}
}
