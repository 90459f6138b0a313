package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/stages"
)

// The progress page lists the plan's stages as the engine's events
// (stages.Event) report them: a bar with MB/s and the time left for the
// running stage, the time each finished one took. The done page says what
// was installed where and the kernel command line that repeats it unattended.

// progress is what the events have said so far.
type progress struct {
	rows   []stageRow
	info   string        // the last remark
	failed *stages.Event // the failure, if one came
	closed bool          // the event stream ended
}

// stageRow is one stage of the progress page.
type stageRow struct {
	name        string
	disk        string           // the disk the step writes, when the plan writes several
	kind        stages.EventKind // "" until it starts
	done, total int64
	rate        float64
	took        time.Duration
	msg         string
}

// StartProgress shows the progress page for the plan the person confirmed;
// Event then feeds it.
func (s *State) StartProgress() {
	s.Finished, s.Canceled = false, false
	s.prog = progress{}
	if s.Plan != nil {
		several := len(s.Plan.Disks) > 1
		for _, st := range s.Plan.Steps {
			r := stageRow{name: st.Name}
			if several && st.Input != nil {
				r.disk = st.Input.Target()
			}
			s.prog.rows = append(s.prog.rows, r)
		}
	}
	s.enter(PageProgress)
}

// Event applies one event of the engine to the progress page.
func (s *State) Event(e stages.Event) {
	p := &s.prog
	if e.Kind == stages.EventPlan {
		return
	}
	if e.Kind == stages.EventInfo {
		p.info = e.Message
		return
	}
	// A stage name can come more than once (partition of the install disk,
	// then of an app-data disk); events come in plan order, so a start is the
	// first row of that name not started yet, and anything else is for the
	// first one running.
	i := -1
	for j := range p.rows {
		r := p.rows[j]
		if r.name == e.Stage && i < 0 && (r.kind == "" && e.Kind == stages.EventStart || r.kind == stages.EventStart && e.Kind != stages.EventStart) {
			i = j
		}
	}
	for j := range p.rows {
		if i < 0 && p.rows[j].name == e.Stage && p.rows[j].kind == "" {
			i = j // an end without its start
		}
	}
	if i < 0 {
		p.rows = append(p.rows, stageRow{name: e.Stage})
		i = len(p.rows) - 1
	}
	r := &p.rows[i]
	switch e.Kind {
	case stages.EventProgress:
		r.kind, r.done, r.total, r.rate = stages.EventStart, e.Done, e.Total, e.Rate
		if e.Message != "" {
			r.msg = e.Message
		}
	case stages.EventStart:
		r.kind, r.msg = e.Kind, e.Message
	case stages.EventFailed:
		r.kind, r.msg = e.Kind, e.Error
		p.failed = &e
	default: // done, skipped, break
		r.kind, r.took = e.Kind, e.Duration
		if e.Message != "" {
			r.msg = e.Message
		}
	}
}

// EventsDone ends the progress page: the engine sent its last event. The done
// page follows.
func (s *State) EventsDone() {
	s.prog.closed = true
	s.enter(PageDone)
}

// what is the action's subject for the pages: "demo-node 1.0 on /dev/sda".
func (s *State) what() string {
	bp := s.Plan
	if bp == nil {
		return ""
	}
	var out string
	if bp.Image != nil {
		out = clean(bp.Image.Name + " " + bp.Image.Version)
	}
	if bp.Target != nil && bp.Action != cmdline.ActionStateless {
		out = strings.TrimSpace(out + " on " + bp.Target.Path)
	}
	return out
}

func (s *State) progressBody(b *body, w int) {
	g := s.Style.glyphs()
	verb := "Running"
	if s.Plan != nil {
		verb = map[cmdline.Action]string{cmdline.ActionInstall: "Installing", cmdline.ActionReinstall: "Reinstalling",
			cmdline.ActionUpgrade: "Writing", cmdline.ActionUninstall: "Uninstalling", cmdline.ActionStateless: "Starting"}[s.Plan.Action]
	}
	b.nl()
	b.add(attrBold, " %s %s", verb, s.what())
	b.nl()
	b.nl()
	running, finished := 0, 0
	for i, r := range s.prog.rows {
		mark := " "
		detail := ""
		a := attr(0)
		switch r.kind {
		case stages.EventStart:
			mark, a, running = g.run, attrBold, i+1
			if r.total > 0 {
				detail = fmt.Sprintf("%s %d/%d MiB %d%%", bar(g, r.done, r.total, 14), r.done>>20, r.total>>20, r.done*100/r.total)
				if r.rate > 0 {
					detail += fmt.Sprintf("  %.1f MB/s", r.rate/1e6)
					if r.total > r.done {
						detail += "  ETA " + (time.Duration(float64(r.total-r.done) / r.rate * float64(time.Second))).Round(time.Second).String()
					}
				}
			} else {
				detail = clean(r.msg)
			}
		case stages.EventDone:
			mark, finished = g.ok, finished+1
			detail = r.took.Round(time.Millisecond).String()
		case stages.EventSkipped:
			mark, detail, finished = g.dot, "skipped", finished+1
		case stages.EventBreak:
			mark, detail = g.dot, "stopped for the rescue shell"
		case stages.EventFailed:
			mark, a, detail = g.fail, attrBold, "failed"
		}
		b.text("  %s ", mark)
		b.add(a, "%s %s", pad(r.name, 16), pad(r.disk, 8))
		b.text(" %s", cut(detail, w-30))
		b.nl()
	}
	b.nl()
	status := fmt.Sprintf(" %d of %d stages done", finished, len(s.prog.rows))
	if running > 0 {
		status += fmt.Sprintf("; stage %d running", running)
	}
	b.text("%s", status)
	b.nl()
	if f := s.prog.failed; f != nil {
		b.para(attrBold, w, 1, fmt.Sprintf("%s failed: %s", f.Stage, f.Error))
		if f.Hint != "" {
			b.para(0, w, 1, "Fix: "+f.Hint)
		}
	} else if s.prog.info != "" {
		b.para(attrFaint, w, 1, clean(s.prog.info))
	}
}

func (s *State) doneBody(b *body, w int) {
	bp := s.Plan
	if f := s.prog.failed; f != nil {
		b.para(attrBold, w, 1, fmt.Sprintf("It stopped at %s: %s", f.Stage, f.Error))
		if f.Hint != "" {
			b.para(0, w, 1, "Fix: "+f.Hint)
		}
		if f.Arg != "" {
			b.para(0, w, 1, "Kernel argument to add: "+f.Arg)
		}
	} else if n, all := s.finished(); n < all {
		b.para(attrBold, w, 1, fmt.Sprintf("The engine stopped reporting after %d of %d stages; look at the console log for why.", n, all))
	} else if bp != nil {
		b.para(attrBold, w, 1, s.doneText())
		for _, a := range bp.AppData {
			b.para(0, w, 1, fmt.Sprintf("App-data disk %d on %s: %s (serial %s).", a.Index, a.Mount, a.Target.Path, orDash(a.Target.Serial)))
		}
	}
	if s.hash != "" || s.Base.AdminPW != "" {
		b.para(0, w, 1, "The admin password is set from its SHA-512 crypt hash.")
	}
	if s.sshKey != "" {
		b.para(0, w, 1, "The SSH key is not on the command line: no kernel argument carries one.")
	}
	if p, err := cmdline.Parse(s.Line); err == nil && bp != nil && bp.Action != cmdline.ActionBoot {
		b.nl()
		b.para(0, w, 1, "To repeat this unattended, boot with this kernel command line:")
		b.para(attrBold, w, 3, p.String())
		if p.AdminPW != "" {
			b.para(0, w, 1, "adminpw=<redacted> stands for the password's hash, not shown because consoles are logged: put the output of `openssl passwd -6` there.")
		}
	}
	b.nl()
	s.buttons(b, "finish")
}

// finished counts the plan's stages that are done or skipped.
func (s *State) finished() (n, all int) {
	if s.Plan == nil {
		return 0, 0
	}
	for _, st := range s.Plan.Steps {
		for _, r := range s.prog.rows {
			if r.name == st.Name && (r.kind == stages.EventDone || r.kind == stages.EventSkipped) {
				n++
			}
		}
	}
	return n, len(s.Plan.Steps)
}

// doneText says what was done where.
func (s *State) doneText() string {
	bp := s.Plan
	t := bp.Target
	where := ""
	if t != nil {
		where = fmt.Sprintf(" on %s (%s, serial %s)", t.Path, strings.TrimSpace(clean(t.Model)), orDash(clean(t.Serial)))
	}
	img := ""
	if bp.Image != nil {
		img = clean(bp.Image.Name + " " + bp.Image.Version)
	}
	switch bp.Action {
	case cmdline.ActionInstall, cmdline.ActionReinstall:
		return fmt.Sprintf("%s %s%s, slot %s.", map[bool]string{true: "Reinstalled", false: "Installed"}[bp.Action == cmdline.ActionReinstall], img, where, bp.Slot)
	case cmdline.ActionUpgrade:
		return fmt.Sprintf("Wrote %s into slot %s%s; it boots next, on trial, and the other slot stays the fallback.", img, bp.Slot, where)
	case cmdline.ActionUninstall:
		var paths []string
		for _, d := range bp.Disks {
			paths = append(paths, d.Path)
		}
		return "Uninstalled: erased " + strings.Join(paths, ", ") + "."
	case cmdline.ActionStateless:
		return fmt.Sprintf("%s runs from RAM; no disk was written.", img)
	}
	return "Done."
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
