package cmdline

import (
	"errors"
	"strings"
	"testing"
)

// TestNodeAdminPW: nodeinit.adminpw=bundle is read, shown in the canonical line and the
// params view, and round-trips; any other value, a bare key, and a line that also carries
// adminpw= are refused with a hint, and a hash written there by mistake is never shown.
func TestNodeAdminPW(t *testing.T) {
	p := mustParse(t, "stateless nodeinit.adminpw=bundle hostname=ram1")
	if p.Node.AdminPWFrom != AdminPWBundle || p.AdminPW != "" {
		t.Fatalf("AdminPWFrom %q, AdminPW set %v", p.Node.AdminPWFrom, p.AdminPW != "")
	}
	if got := p.Canonical(true); !strings.Contains(got, "nodeinit.adminpw=bundle") {
		t.Errorf("canonical line %q lacks nodeinit.adminpw=bundle", got)
	}
	if got := p.Redacted()["nodeinit.adminpw"]; got != "bundle" {
		t.Errorf("params view shows nodeinit.adminpw = %v", got)
	}
	if strings.Contains(strings.Join(p.BootEntryArgs(), " "), "adminpw") {
		t.Errorf("boot entry args carry it: %q", p.BootEntryArgs())
	}

	const hash = "$6$nodeinitsalt$GyB1s3q6Esx33IRI49rK5RM7VdJObU"
	for _, tc := range []struct{ line, problem, hint string }{
		{"stateless nodeinit.adminpw", "needs a value", "nodeinit.adminpw=bundle"},
		{"stateless nodeinit.adminpw=", "needs a value", "nodeinit.adminpw=bundle"},
		{"stateless nodeinit.adminpw=medium", "is not bundle", "--admin-hash-file"},
		{"stateless nodeinit.adminpw=Bundle", "is not bundle", "nodeinit.adminpw=bundle"},
		{"stateless nodeinit.adminpw=" + hash, "value not shown", "adminpw=HASH"},
		{"stateless nodeinit.adminpw=bundle adminpw=" + hash, "both set the admin password", "drop adminpw="},
		{"stateless ovirt_adminpw=" + hash + " nodeinit.adminpw=bundle", "both set the admin password", "drop adminpw="},
	} {
		p, err := Parse(tc.line)
		var e *Error
		if p != nil || !errors.As(err, &e) {
			t.Errorf("Parse(%q) = %v, want an *Error", tc.line, err)
			continue
		}
		if !strings.Contains(e.Problem, tc.problem) || !strings.Contains(e.Hint, tc.hint) {
			t.Errorf("Parse(%q): problem %q, hint %q; want %q and a hint with %q", tc.line, e.Problem, e.Hint, tc.problem, tc.hint)
		}
		if strings.Contains(err.Error(), "GyB1s3q6") || strings.Contains(e.Token, "GyB1s3q6") || strings.Contains(e.Hint, "GyB1s3q6") {
			t.Errorf("Parse(%q): the error shows the hash: %v", tc.line, err)
		}
	}
}

// TestCheckPasswordHash is the one rule for hashes from the line and from a bundle.
func TestCheckPasswordHash(t *testing.T) {
	for h, want := range map[string][2]bool{
		"$6$salt$hash":  {true, false},
		"$1$abcdefgh$x": {true, false},
		"RHhwCLrQXB8zE": {true, true},
		"$9$salt$hash":  {false, false},
		"$6$salt$":      {false, false},
		"$6$sa lt$hash": {false, false},
		"hunter2":       {false, false},
		"":              {false, false},
	} {
		if ok, weak := CheckPasswordHash(h); ok != want[0] || weak != want[1] {
			t.Errorf("CheckPasswordHash(%q) = %v, %v; want %v, %v", h, ok, weak, want[0], want[1])
		}
	}
}
