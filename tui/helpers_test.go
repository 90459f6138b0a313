package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-crypt/crypt/algorithm/shacrypt"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/plan"
)

// facts reads a facts fixture of testdata/facts.
func facts(t testing.TB, name string) *plan.Facts {
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

// parse parses a command line that must parse.
func parse(t testing.TB, line string) *cmdline.Params {
	t.Helper()
	p, err := cmdline.Parse(line)
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	return p
}

// fixedHash hashes with a fixed salt, so that goldens stay the same.
func fixedHash(pw string) (string, error) {
	h, err := shacrypt.New(shacrypt.WithSHA512(), shacrypt.WithIterations(shacrypt.IterationsDefaultOmitted))
	if err != nil {
		return "", err
	}
	d, err := h.HashWithSalt(pw, []byte("tuigoldensalt"))
	if err != nil {
		return "", err
	}
	return d.Encode(), nil
}

// newState is a screen on facts fixture name for the command line.
func newState(t testing.TB, name, line string) *State {
	t.Helper()
	s := NewState(facts(t, name), parse(t, line), ImageInfo{}, StyleUnicode)
	s.Hash = fixedHash
	return s
}

// press applies keys: a key name ("down", "enter", "tab", …) or "=text" to type text.
func press(s *State, keys ...string) {
	for _, k := range keys {
		if t, ok := strings.CutPrefix(k, "="); ok {
			s.Key(Key{Text: t})
			continue
		}
		if k == "space" {
			s.Key(Key{Name: "space", Text: " "})
			continue
		}
		s.Key(Key{Name: k})
	}
}

// focusOn moves the focus to the item id with Tab, failing when it is not on the page.
func focusOn(t testing.TB, s *State, id string) {
	t.Helper()
	for range s.items() {
		if s.focus == id {
			return
		}
		press(s, "tab")
	}
	if s.focus != id {
		t.Fatalf("no item %q on page %s (items %v)", id, s.Page, s.items())
	}
}

// choose picks the welcome page's offer of kind k.
func choose(t testing.TB, s *State, k OfferKind) {
	t.Helper()
	for i, o := range s.offers {
		if o.Kind == k {
			focusOn(t, s, fmt.Sprintf("offer:%d", i))
			press(s, "enter")
			return
		}
	}
	t.Fatalf("no offer %s among %v (notes %q)", k, s.offers, s.notes)
}

// next presses the page's Next button.
func next(t testing.TB, s *State) {
	t.Helper()
	focusOn(t, s, "next")
	press(s, "enter")
}

// installTo drives an install flow from the disk page to the plan page: the
// install disk, app-data disks, consent typed for each, a password and a
// host name. It fails unless the plan page shows a plan.
func installTo(t testing.TB, s *State, target string, appData []string, consent map[string]string) {
	t.Helper()
	if s.Page != PageDisk {
		t.Fatalf("on page %s, want the disk page", s.Page)
	}
	focusOn(t, s, "disk:"+target)
	press(s, "enter")
	for _, a := range appData {
		focusOn(t, s, "disk:"+a)
		press(s, "space")
	}
	for name, v := range consent {
		focusOn(t, s, "consent:"+name)
		press(s, "ctrl+u", "="+v)
	}
	next(t, s)
	if s.Page != PageLayout {
		t.Fatalf("disk page refused: %s", s.msg)
	}
	next(t, s)
	passwordAndNetwork(t, s)
}

// passwordAndNetwork fills the password and network pages with defaults and
// goes on to the plan page.
func passwordAndNetwork(t testing.TB, s *State) {
	t.Helper()
	if s.Page != PagePassword {
		t.Fatalf("on page %s (%s), want the password page", s.Page, s.msg)
	}
	press(s, "=hunter2", "tab", "=hunter2")
	next(t, s)
	if s.Page != PageNetwork {
		t.Fatalf("password page refused: %s", s.msg)
	}
	focusOn(t, s, "hostname")
	press(s, "ctrl+u", "=node1.example.com")
	next(t, s)
	if s.Page != PagePlan {
		t.Fatalf("network page refused: %s", s.msg)
	}
	if s.Plan == nil {
		t.Fatalf("plan refused: %v", s.planErr)
	}
}

// confirm presses the plan page's action button.
func confirm(t testing.TB, s *State) {
	t.Helper()
	focusOn(t, s, "go")
	press(s, "enter")
	if !s.Finished {
		t.Fatalf("not finished after the plan's button")
	}
}

// bodyText is the whole body of the page, however long, as text.
func bodyText(s *State) string {
	w, _ := s.size()
	lines, _ := s.lines(w)
	var b strings.Builder
	for _, l := range lines {
		for _, sg := range l {
			b.WriteString(sg.text)
		}
		b.WriteString("\n")
	}
	return b.String()
}
