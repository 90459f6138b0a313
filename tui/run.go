package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
)

// ErrCanceled is returned when the person quits the screen: nothing was written.
var ErrCanceled = errors.New("installer screen canceled: nothing was written")

// Result is what the screen chose.
type Result struct {
	// Line is the equivalent kernel command line, with the admin password as
	// its hash: cmdline.Parse reads it, and plan.Plan plans it on the same
	// facts to the plan the person confirmed.
	Line string
	// Params is Line parsed.
	Params *cmdline.Params
	// Plan is the plan the person confirmed (nil for the rescue shell when
	// it could not be planned).
	Plan *plan.Blueprint
	// SSHKey is the SSH public key typed, if any; no kernel argument carries
	// it, so the caller seeds it beside the command line.
	SSHKey string
}

// Session runs the installer screen on one terminal: Choose shows the pages
// up to the plan, Follow the progress and done pages of what was chosen.
type Session struct {
	In   io.Reader // key presses; a terminal is put in raw mode while the screen runs
	Out  io.Writer
	Term string // the TERM of the console: tty1 is "linux", ttyS0 usually "vt100"
	// Facts and Params are the machine and the command line it booted with.
	Facts  *plan.Facts
	Params *cmdline.Params
	Media  ImageInfo
	// Hash replaces HashPassword (tests).
	Hash func(password string) (string, error)

	state *State
}

// Run shows the installer screen on a terminal and returns the kernel
// command line the person chose: the one every install goes through
// (cmdline.Parse, then plan.Plan). Nothing is written; a person who quits
// gets ErrCanceled.
func Run(ctx context.Context, in io.Reader, out io.Writer, term string, f *plan.Facts, p *cmdline.Params, media ImageInfo) (string, error) {
	r, err := (&Session{In: in, Out: out, Term: term, Facts: f, Params: p, Media: media}).Choose(ctx)
	if err != nil {
		return "", err
	}
	return r.Line, nil
}

// Choose shows the pages from the welcome page to the plan and returns what
// the person confirmed.
func (s *Session) Choose(ctx context.Context) (*Result, error) {
	st := NewState(s.Facts, s.Params, s.Media, StyleFor(s.Term))
	st.Hash = s.Hash
	s.state = st
	if err := s.run(ctx, nil); err != nil {
		return nil, err
	}
	if st.Canceled || !st.Finished {
		return nil, ErrCanceled
	}
	p, err := cmdline.Parse(st.Line)
	if err != nil {
		return nil, fmt.Errorf("installer screen: its command line does not parse: %w", err)
	}
	return &Result{Line: st.Line, Params: p, Plan: st.Plan, SSHKey: st.sshKey}, nil
}

// Follow shows the progress page for what Choose returned, fed by events
// until the caller closes the channel, then the done page until the person
// presses Enter (or ctx ends). Keys do nothing while the stages run.
func (s *Session) Follow(ctx context.Context, events <-chan stages.Event) error {
	if s.state == nil || !s.state.Finished {
		return errors.New("installer screen: Follow needs a confirmed Choose first")
	}
	if events == nil {
		return errors.New("installer screen: Follow needs the engine's events")
	}
	s.state.StartProgress()
	return s.run(ctx, events)
}

// run runs the state on the terminal until it is finished or canceled.
func (s *Session) run(ctx context.Context, events <-chan stages.Event) error {
	m := &model{s: s.state}
	opts := []tea.ProgramOption{
		tea.WithContext(ctx), tea.WithInput(s.In), tea.WithEnvironment([]string{"TERM=" + s.Term}),
		// PID 1's signals are the init's, not the screen's: Ctrl-C comes as a key.
		tea.WithoutSignalHandler(),
	}
	if s.state.Style == StylePlain {
		// A dumb terminal cannot move the cursor: frames are printed whole, in
		// order, and bubbletea's renderer (and its terminal queries) draws
		// nowhere. The input is still a terminal in raw mode.
		m.plain = s.Out
		opts = append(opts, tea.WithOutput(io.Discard), tea.WithWindowSize(80, 24))
	} else {
		opts = append(opts, tea.WithOutput(s.Out))
	}
	prog := tea.NewProgram(m, opts...)
	if events != nil {
		go func() {
			for e := range events {
				prog.Send(eventMsg(e))
			}
			prog.Send(eventsClosed{})
		}()
	}
	if _, err := prog.Run(); err != nil {
		if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
			err = ctx.Err()
		}
		if s.state.Page == PageProgress || s.state.Page == PageDone {
			return fmt.Errorf("installer screen: %w", err)
		}
		return fmt.Errorf("installer screen: %w; nothing was written", err)
	}
	return nil
}

// eventMsg carries one engine event into the program.
type eventMsg stages.Event

// eventsClosed says the engine sent its last event.
type eventsClosed struct{}

// model adapts State to bubbletea: key presses and events in, the frame out.
type model struct {
	s     *State
	plain io.Writer // StylePlain: where whole frames are printed
	last  string
}

// Init starts nothing.
func (m *model) Init() tea.Cmd { return nil }

// Update applies a key, a resize or an event, and quits when the state is
// finished or canceled.
func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		m.s.Key(keyOf(msg))
	case tea.WindowSizeMsg:
		if m.plain == nil {
			m.s.Resize(msg.Width, msg.Height)
		}
	case eventMsg:
		m.s.Event(stages.Event(msg))
	case eventsClosed:
		m.s.EventsDone()
	}
	if m.plain != nil {
		if v := m.s.View(); v != m.last {
			m.last = v
			io.WriteString(m.plain, "\r\n"+strings.ReplaceAll(v, "\n", "\r\n")+"\r\n")
		}
	}
	if m.s.Finished || m.s.Canceled {
		return m, tea.Quit
	}
	return m, nil
}

// View is the frame, on the alternate screen where the terminal has one.
func (m *model) View() tea.View {
	if m.plain != nil {
		return tea.NewView("")
	}
	v := tea.NewView(m.s.View())
	v.AltScreen = true
	return v
}

// keyOf is a bubbletea key press as the pages see it. Ctrl-H (what a VT100's
// Backspace sends) is Backspace, Ctrl-J and Ctrl-M are Enter.
func keyOf(msg tea.KeyPressMsg) Key {
	k := msg.Key()
	if k.Text != "" && k.Mod&^tea.ModShift == 0 {
		if k.Text == " " {
			return Key{Name: "space", Text: " "}
		}
		return Key{Text: k.Text}
	}
	name := k.Keystroke()
	switch name {
	case "ctrl+h":
		name = "backspace"
	case "ctrl+j", "ctrl+m":
		name = "enter"
	}
	return Key{Name: name}
}
