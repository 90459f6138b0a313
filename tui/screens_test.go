package tui

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
)

var update = flag.Bool("update", false, "rewrite testdata/tui screenshots (review every change by hand)")

const screensDir = "../testdata/tui"

// screens walks the pages of an install at 80×24 and returns each page's
// screen by name, in style st.
func screens(t *testing.T, st Style) map[string]string {
	out := map[string]string{}
	shot := func(name string, s *State) { out[name] = s.Screen() }
	for name, fx := range map[string]string{"1-welcome": "several-disks", "1-welcome-upgrade": "installed-v1.1-image", "1-welcome-major-jump": "installed-v2-image"} {
		s := newState(t, fx, "install")
		s.Style = st
		shot(name, s)
	}

	s := newState(t, "several-disks", "install console=ttyS0,115200")
	s.Style = st
	choose(t, s, OfferInstall)
	focusOn(t, s, "disk:sdb")
	press(s, "enter")
	focusOn(t, s, "disk:sdd")
	press(s, "space")
	focusOn(t, s, "consent:sdd")
	press(s, "=WD-WCC4N0000004")
	shot("2-disk", s)
	next(t, s)
	focusOn(t, s, "vol:root")
	press(s, "=4096")
	focusOn(t, s, "vol:data")
	press(s, "=200000")
	shot("3-layout-too-small", s)
	press(s, "ctrl+u")
	shot("3-layout", s)
	next(t, s)
	press(s, "=hunter2", "tab", "=hunter2", "tab", "=ssh-ed25519 "+sshBlob("ssh-ed25519")+" admin@example.com")
	shot("4-password", s)
	next(t, s)
	press(s, "=node1.example.com")
	focusOn(t, s, "ip:static")
	press(s, "enter")
	for _, f := range [][2]string{{"addr", "192.0.2.10"}, {"prefix", "24"}, {"gw", "192.0.2.1"}, {"dns", "192.0.2.53"}, {"mgmt", "engine.example.com"}} {
		focusOn(t, s, f[0])
		press(s, "="+f[1])
	}
	shot("5-network", s)
	next(t, s)
	if s.Plan == nil {
		t.Fatalf("plan refused: %v", s.planErr)
	}
	shot("6-plan", s)
	confirm(t, s)
	s.StartProgress()
	for _, e := range progressEvents(s) {
		s.Event(e)
	}
	shot("7-progress", s)
	for _, e := range restEvents(s) {
		s.Event(e)
	}
	s.EventsDone()
	shot("8-done", s)
	return out
}

// progressEvents are the events of the plan's steps up to the middle of
// write-slot.
func progressEvents(s *State) []stages.Event {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	took := []time.Duration{412 * time.Millisecond, 121 * time.Millisecond, 2310 * time.Millisecond, 38 * time.Millisecond, 97 * time.Millisecond, 1840 * time.Millisecond}
	var out []stages.Event
	for i, st := range s.Plan.Steps {
		out = append(out, stages.Event{Time: t0, Stage: st.Name, Kind: stages.EventStart})
		if st.Name == plan.StageWriteSlot {
			return append(out,
				stages.Event{Time: t0, Stage: st.Name, Kind: stages.EventProgress, Done: 180 << 20, Total: 300 << 20, Rate: 85.3e6},
				stages.Event{Time: t0, Stage: st.Name, Kind: stages.EventInfo, Message: "checking BLAKE3 chunk digests on 2 cores"})
		}
		out = append(out, stages.Event{Time: t0, Stage: st.Name, Kind: stages.EventDone, Duration: took[i%len(took)]})
	}
	return out
}

// restEvents finish the stages that have not finished.
func restEvents(s *State) []stages.Event {
	var out []stages.Event
	for _, r := range s.prog.rows {
		switch r.kind {
		case "":
			out = append(out, stages.Event{Stage: r.name, Kind: stages.EventStart}, stages.Event{Stage: r.name, Kind: stages.EventDone, Duration: 250 * time.Millisecond})
		case stages.EventStart:
			out = append(out, stages.Event{Stage: r.name, Kind: stages.EventDone, Duration: 3520 * time.Millisecond})
		}
	}
	return out
}

// TestScreens: each page at 80×24, on the Linux console and in ASCII, is its
// golden screenshot (testdata/tui; go test ./tui -update rewrites them).
func TestScreens(t *testing.T) {
	for _, st := range []Style{StyleUnicode, StyleASCII} {
		for name, got := range screens(t, st) {
			if st == StyleASCII {
				name += ".ascii"
			}
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if len(lines) != 24 {
				t.Errorf("%s: %d lines, want 24", name, len(lines))
			}
			for i, l := range lines {
				if n := utf8.RuneCountInString(l); n > 80 {
					t.Errorf("%s line %d: %d columns", name, i+1, n)
				}
				if st == StyleASCII && strings.ContainsFunc(l, func(r rune) bool { return r >= 0x80 }) {
					t.Errorf("%s line %d is not ASCII: %q", name, i+1, l)
				}
			}
			path := filepath.Join(screensDir, name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./tui -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s:\n%s", name, path, got)
			}
		}
	}
}

// TestREADMEShowsThePages: the README's usage section shows each page as its
// screenshot file has it, so the two cannot drift apart.
func TestREADMEShowsThePages(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"1-welcome", "1-welcome-upgrade", "2-disk", "3-layout", "3-layout-too-small",
		"4-password", "5-network", "6-plan", "7-progress", "8-done"} {
		b, err := os.ReadFile(filepath.Join(screensDir, name+".txt"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), "```\n"+strings.TrimRight(string(b), "\n")+"\n```") {
			t.Errorf("README.md does not show %s.txt as it is now: copy it into the installer screen section", name)
		}
	}
}
