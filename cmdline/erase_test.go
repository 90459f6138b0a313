package cmdline

import (
	"strings"
	"testing"
)

// TestErase: nodeinit.erase and nodeinit.erase.secure are typed; bad values are refused with a hint.
func TestErase(t *testing.T) {
	p := mustParse(t, "uninstall")
	if p.Node.Erase != "" || p.Node.EraseMode() != EraseSignatures || p.Node.EraseSecure {
		t.Errorf("default erase: %q %q %v", p.Node.Erase, p.Node.EraseMode(), p.Node.EraseSecure)
	}
	for line, want := range map[string]EraseMode{
		"nodeinit.erase=signatures":                      EraseSignatures,
		"nodeinit.erase=discard":                         EraseDiscard,
		"nodeinit.erase=zero nodeinit.erase.secure":      EraseZero,
		"nodeinit.erase=discard nodeinit.erase.secure=1": EraseDiscard,
		"nodeinit.erase=zero nodeinit.erase.secure=0":    EraseZero,
	} {
		p := mustParse(t, line)
		if p.Node.EraseMode() != want || p.Node.EraseSecure != strings.Contains(line, "secure") && !strings.Contains(line, "secure=0") {
			t.Errorf("%q: mode %q secure %v", line, p.Node.EraseMode(), p.Node.EraseSecure)
		}
		checkRoundTrip(t, p)
	}
	for line, hint := range map[string]string{
		"nodeinit.erase=shred":                            "signatures, discard or zero",
		"nodeinit.erase":                                  "signatures, discard or zero",
		"nodeinit.erase=Zero":                             "signatures, discard or zero",
		"nodeinit.erase.secure=perhaps":                   "nodeinit.erase.secure=0",
		"nodeinit.erase.secure":                           "nodeinit.erase=discard",
		"nodeinit.erase=signatures nodeinit.erase.secure": "nodeinit.erase=zero",
	} {
		if e := parseErr(t, line); !strings.Contains(e.Hint, hint) || !strings.HasPrefix(e.Key, "nodeinit.erase") {
			t.Errorf("%q: key %q hint %q, want %q", line, e.Key, e.Hint, hint)
		}
	}
}
