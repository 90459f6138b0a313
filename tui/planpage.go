package tui

import (
	"fmt"
	"strings"

	"github.com/nodeinit/nodeinit/internal/lazyre"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

// The plan page shows what plan.Plan makes of the command line, in the words
// `nodeinit plan` prints (Blueprint.WriteText), before anything is written;
// the action starts only from its button.

// computePlan plans the command line chosen so far.
func (s *State) computePlan() {
	s.Plan, s.planErr, s.planText, s.scroll = nil, nil, nil, 0
	p, line, err := s.compose()
	var bp *plan.Blueprint
	if err == nil {
		bp, err = plan.Plan(p, s.Facts)
	}
	if err != nil {
		s.Line, s.planErr = "", err
		return
	}
	var b strings.Builder
	if err := bp.WriteText(&b); err != nil {
		s.planErr = err
		return
	}
	s.Line, s.Plan = line, bp
	s.planText = strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
}

func (s *State) planItems() []item {
	if s.Plan == nil {
		return []item{{id: "back"}} // a refused plan cannot be started
	}
	return []item{{id: "go"}, {id: "back"}}
}

// goLabel is the plan page's button that starts the action.
func (s *State) goLabel() string {
	return map[OfferKind]string{
		OfferInstall: "Install", OfferReinstallWipe: "Reinstall", OfferUpgrade: "Upgrade", OfferDowngrade: "Downgrade",
		OfferReinstallKeep: "Reinstall", OfferUninstall: "Uninstall", OfferStateless: "Run stateless", OfferRescue: "Rescue shell",
	}[s.offer.Kind]
}

// planHang finds where the text of a plan line starts: after a step's number
// and name, or after a field's name.
var planHang = lazyre.New(`^ *\d+\. +\S+ +|^[a-zA-Z-]+: +`)

// planRows is the plan text wrapped to the screen's width.
func (s *State) planRows(w int) []string {
	var rows []string
	for _, l := range s.planText {
		// A step's or a field's continuation lines up under its text.
		hang := 4
		if m := planHang().FindString(l); m != "" {
			hang = len(m) - (len(l) - len(strings.TrimLeft(l, " ")))
		}
		rows = append(rows, wrap(clean(l), w-2, hang)...)
	}
	return rows
}

// planView is how many plan rows the page shows at once.
func (s *State) planView() int {
	_, h := s.size()
	return max(3, h-5-2)
}

// scrollKey scrolls the plan text; it reports whether the key was one.
func (s *State) scrollKey(k Key) bool {
	w, _ := s.size()
	n := len(s.planRows(w))
	view := s.planView()
	switch k.Name {
	case "up", "ctrl+p":
		s.scroll--
	case "down", "ctrl+n":
		s.scroll++
	case "pgup":
		s.scroll -= view - 1
	case "pgdown":
		s.scroll += view - 1
	case "home":
		s.scroll = 0
	case "end":
		s.scroll = n
	default:
		return false
	}
	s.scroll = max(0, min(s.scroll, n-view))
	return true
}

func (s *State) planBody(b *body, w int) {
	if s.planErr != nil {
		d := operr.Describe(s.planErr)
		b.nl()
		b.para(attrBold, w, 1, "This is refused, and nothing will be written:")
		b.para(0, w, 3, d.Message)
		if d.Fix != "" {
			b.nl()
			b.para(0, w, 1, "Fix: "+d.Fix)
		}
		b.nl()
		b.para(0, w, 1, "Go back and change what you chose.")
		b.nl()
		s.buttons(b, "back")
		return
	}
	rows := s.planRows(w)
	view := s.planView()
	for i := 0; i < view; i++ {
		if j := s.scroll + i; j < len(rows) {
			b.text(" %s", rows[j])
		}
		b.nl()
	}
	more := "all of the plan is shown"
	if len(rows) > view {
		more = fmt.Sprintf("lines %d-%d of %d: %s%s and PgUp/PgDn scroll", s.scroll+1, min(s.scroll+view, len(rows)), len(rows),
			s.Style.glyphs().up, s.Style.glyphs().down)
	}
	b.add(attrFaint, " (%s; nothing has been written yet)", more)
	b.nl()
	s.buttons(b, "go", "back")
}
