package initproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
	"github.com/nodeinit/nodeinit/tui"
)

// screenWait is how long /init waits for Enter on the consoles before it goes on without
// the installer screen, as if it had not been needed: the line is then planned as given,
// and an open choice refused with the plan's message. Long enough to walk to the machine
// after the menu timed out, short enough that a machine nobody attends does not sit there
// for hours.
const screenWait = 5 * time.Minute

// doneWait is how long the done page waits for Enter before the hand-off goes on.
const doneWait = 5 * time.Minute

// screenPrompt is printed on every console that may show the installer screen.
const screenPrompt = "Press Enter to start the installer on this console"

// opened is a console opened for the screen.
type opened struct {
	early.Terminal
	rw      io.ReadWriteCloser
	restore func()
}

// close puts the console's line back as it was found and closes it.
func (c *opened) close() {
	if c.restore != nil {
		c.restore()
	}
	c.rw.Close()
}

// screen is the installer screen as /init runs it: on the first console where a key
// arrives, from the probe to the hand-off. The consoles' text output is held on that
// console while the screen is up.
type screen struct {
	out  *early.Output
	sink stages.Sink // the engine's events: which console it runs on, or that none answered
	// open opens a console with its input raw (openTerminal; tests give pipes).
	open func(early.Terminal) (io.ReadWriteCloser, func(), error)
	wait time.Duration // screenWait
	done time.Duration // doneWait
	hash func(string) (string, error)
	// quiet keeps the kernel's messages off the consoles while the screen is up
	// (quietKernel); nil for none.
	quiet func() (restore func())

	on      *opened
	sess    *tui.Session
	sshKey  string // the admin SSH key typed on the screen, for the job to seed
	release func() // lets Output (and the kernel) write to the console again
}

// newScreen is the screen for /init's consoles.
func newScreen(env *early.Env, sink stages.Sink) *screen {
	return &screen{out: env.Out, sink: sink, wait: screenWait, done: doneWait, quiet: quietKernel,
		open: func(t early.Terminal) (io.ReadWriteCloser, func(), error) { return openTerminal("/dev", t) }}
}

// info reports what the screen does as an info event of the probe stage (the screen runs
// between the probe and the plan).
func (s *screen) info(format string, args ...any) {
	if s.sink != nil {
		s.sink.Emit(stages.Event{Time: time.Now(), Stage: plan.StageProbe, Kind: stages.EventInfo, Message: fmt.Sprintf(format, args...)})
	}
}

// pick prints the prompt on every console in terms that opens as a terminal and returns the
// first one where Enter is pressed; the others say where the screen runs and are closed. It
// returns nil when no console opens (at once) or none answers within s.wait or before ctx
// ends.
func (s *screen) pick(ctx context.Context, terms []early.Terminal) *opened {
	var cons []*opened
	for _, t := range terms {
		rw, restore, err := s.open(t)
		if err != nil {
			s.out.Detailf("nodeinit: installer screen: console %s: %v", t.Name, err)
			continue
		}
		cons = append(cons, &opened{Terminal: t, rw: rw, restore: restore})
	}
	if len(cons) == 0 {
		s.info("installer screen: no console is a terminal; going on without it")
		return nil
	}
	var names []string
	for _, c := range cons {
		names = append(names, c.Dev)
		fmt.Fprintf(c.rw, "\r\nnodeinit: %s (%s); without it the boot goes on in %s\r\n", screenPrompt, c.Dev, s.wait)
	}
	s.info("installer screen: waiting up to %s for Enter on %v", s.wait, names)
	answered := make(chan int, len(cons))
	for i, c := range cons {
		go func() {
			buf := make([]byte, 64)
			for {
				n, err := c.rw.Read(buf)
				if bytes.ContainsAny(buf[:n], "\r\n") {
					answered <- i
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	timer := time.NewTimer(s.wait)
	defer timer.Stop()
	var won *opened
	select {
	case i := <-answered:
		won = cons[i]
	case <-timer.C:
	case <-ctx.Done():
	}
	for _, c := range cons {
		switch {
		case c == won:
			c.restore() // the screen sets its own mode, and restores this one
			c.restore = nil
		case won != nil:
			fmt.Fprintf(c.rw, "nodeinit: the installer runs on %s; this console shows the log\r\n", won.Dev)
			c.close()
		default:
			fmt.Fprintf(c.rw, "nodeinit: no console answered within %s; going on without the installer screen\r\n", s.wait)
			c.close()
		}
	}
	if won == nil {
		s.info("installer screen: no console answered within %s; going on without it", s.wait)
		return nil
	}
	s.info("installer screen on %s", won.Dev)
	return won
}

// choose runs the screen's pages on the console that answered, from the welcome page to
// the plan the person confirmed, for the command line p on the machine f. It returns nil
// and no error when no console answered: the caller goes on as if the screen were not
// needed. An error means nothing was written (tui.ErrCanceled when the person quit).
func (s *screen) choose(ctx context.Context, terms []early.Terminal, p *cmdline.Params, f *plan.Facts) (*tui.Result, error) {
	s.on = s.pick(ctx, terms)
	if s.on == nil {
		return nil, nil
	}
	release := s.out.Hold(s.on.Name)
	loud := func() {}
	if s.quiet != nil {
		loud = s.quiet()
	}
	var once sync.Once
	s.release = func() { once.Do(func() { release(); loud() }) }
	s.sess = &tui.Session{In: s.on.rw, Out: s.on.rw, Term: s.on.Term, Facts: f, Params: p, Hash: s.hash}
	res, err := s.sess.Choose(ctx)
	if err != nil {
		s.close()
		if errors.Is(err, tui.ErrCanceled) {
			return nil, operr.Wrap(err, "the installer screen on /dev/"+s.on.Dev+" was left",
				"Boot again and go through the installer screen to its plan's button, or give the choice on the kernel command line (storage_init=, then nodeinit.interactive=0 to skip the screen).", "")
		}
		return nil, err
	}
	return res, nil
}

// follow shows the progress page on the screen's console, fed by the events of the sink it
// returns (add it to the engine's); finish closes the events after the run, waits for the
// done page's Enter (or s.done), and gives the console back to the text output.
func (s *screen) follow(ctx context.Context) (sink stages.Sink, finish func()) {
	cs := &chanSink{ch: make(chan stages.Event, 64), gone: make(chan struct{})}
	fctx, cancel := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() {
		err := s.sess.Follow(fctx, cs.ch)
		close(cs.gone)
		if err != nil && fctx.Err() == nil {
			// The screen broke: the console shows the text from now on.
			s.release()
			fmt.Fprintf(s.out, "nodeinit: %v; this console shows the log from here\n", err)
		}
		followed <- err
	}()
	return cs, func() {
		cs.close()
		t := time.AfterFunc(s.done, cancel)
		<-followed
		t.Stop()
		cancel()
		s.close()
	}
}

// close gives the console back to the text output and closes it.
func (s *screen) close() {
	if s.release != nil {
		s.release()
	}
	if s.on != nil && s.on.rw != nil {
		s.on.close()
	}
}

// chanSink sends events to the screen until it is closed; once the screen has gone
// (gone closed), events are dropped instead of blocking the engine.
type chanSink struct {
	mu     sync.Mutex
	ch     chan stages.Event
	gone   chan struct{}
	closed bool
}

// Emit sends e to the screen.
func (c *chanSink) Emit(e stages.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	select {
	case c.ch <- e:
	case <-c.gone:
	}
}

// close ends the events: the screen goes to its done page.
func (c *chanSink) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.closed = true
		close(c.ch)
	}
}

// planChosen plans what the screen returned on the same facts: res.Params through adjust
// (the probe's Machine.Params, which adds the bundle's admin hash) and plan.Plan. The plan
// must be the one the person confirmed; any difference is refused before anything is
// written.
func planChosen(res *tui.Result, f *plan.Facts, adjust func(*cmdline.Params) *cmdline.Params) (*cmdline.Params, *plan.Blueprint, error) {
	p := res.Params
	if p == nil {
		var err error
		if p, err = cmdline.Parse(res.Line); err != nil {
			return nil, nil, fmt.Errorf("nothing was written: the installer screen's command line: %w", err)
		}
	}
	if adjust != nil {
		p = adjust(p)
	}
	bp, err := plan.Plan(p, f)
	if err != nil {
		return nil, nil, fmt.Errorf("nothing was written: the installer screen's command line: %w", err)
	}
	if res.Plan == nil {
		if bp.Handoff != plan.HandoffShell {
			return nil, nil, errors.New("nothing was written: the installer screen returned no plan to confirm")
		}
		return p, bp, nil
	}
	got, err1 := json.Marshal(bp)
	want, err2 := json.Marshal(res.Plan)
	if err := errors.Join(err1, err2); err != nil {
		return nil, nil, fmt.Errorf("nothing was written: compare the plans: %w", err)
	}
	if !bytes.Equal(got, want) {
		return nil, nil, operr.New("nothing was written: the plan of the installer screen's command line is not the plan confirmed on the screen",
			"the machine or the command line changed while the screen was up", "Boot again and confirm the plan on the screen once more.", "")
	}
	return p, bp, nil
}
