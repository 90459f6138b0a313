package cmdline

import (
	"slices"
	"strings"
	"testing"
)

// TestInteractive: nodeinit.interactive has three states, absent, on and off; it is
// written back by Canonical, never copied into the installed boot entry, and a
// value that is not yes/no is refused with a hint.
func TestInteractive(t *testing.T) {
	if p := mustParse(t, "install"); p.Node.Interactive != nil {
		t.Errorf("absent: Interactive = %v, want nil", *p.Node.Interactive)
	}
	for line, want := range map[string]bool{
		"install nodeinit.interactive":                          true,
		"install nodeinit.interactive=1":                        true,
		"install nodeinit.interactive=yes":                      true,
		"install NODEINIT.Interactive=on":                       true,
		"install nodeinit.interactive=0":                        false,
		"install nodeinit.interactive=off":                      false,
		"install nodeinit.interactive=1 nodeinit.interactive=0": false,
	} {
		p := mustParse(t, line)
		if p.Node.Interactive == nil || *p.Node.Interactive != want {
			t.Errorf("%q: Interactive = %v, want %v", line, p.Node.Interactive, want)
			continue
		}
		checkRoundTrip(t, p)
		if got := p.Canonical(false); !strings.Contains(got, map[bool]string{true: "nodeinit.interactive=1", false: "nodeinit.interactive=0"}[want]) {
			t.Errorf("%q: canonical %q lacks nodeinit.interactive", line, got)
		}
		if args := p.BootEntryArgs(); slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "interactive") }) {
			t.Errorf("%q: boot entry args %q carry nodeinit.interactive, which is for the install only", line, args)
		}
	}
	if e := parseErr(t, "install nodeinit.interactive=maybe"); e.Key != "nodeinit.interactive" || !strings.Contains(e.Hint, "nodeinit.interactive=0") {
		t.Errorf("bad value: key %q hint %q", e.Key, e.Hint)
	}
}
