package spec

import (
	"strings"
	"testing"
)

func TestValidMachineID(t *testing.T) {
	for id, want := range map[string]bool{
		"0123456789abcdef0123456789abcdef":   true,
		"4f1d0c2e9a7b4c3d8e6f5a4b3c2d1e0f":   true,
		"0123456789ABCDEF0123456789ABCDEF":   false, // machine-id(5) is lower case
		"00000000000000000000000000000000":   false, // the null ID
		"0123456789abcdef0123456789abcde":    false,
		"0123456789abcdef0123456789abcdef0":  false,
		"0123456789abcdef0123456789abcdeg":   false,
		"01234567-89ab-cdef-0123-456789abcd": false, // UUID form
		"uninitialized":                      false,
		"":                                   false,
	} {
		if got := ValidMachineID(id); got != want {
			t.Errorf("ValidMachineID(%q) = %v, want %v", id, got, want)
		}
	}
}

// TestFilesMachineID: a machine ID is rendered as /etc/machine-id, one line,
// mode 0444; none is rendered without one, and Validate refuses a bad one.
func TestFilesMachineID(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef"
	files := Config{Hostname: "node1", MachineID: id}.Files()
	var found bool
	for _, f := range files {
		if f.Path == MachineIDPath {
			found = true
			if f.Content != id+"\n" || f.Mode != 0o444 {
				t.Errorf("machine-id rendered as %q mode %o", f.Content, f.Mode)
			}
		}
	}
	if !found {
		t.Errorf("no %s in %v", MachineIDPath, files)
	}
	for _, p := range (Config{Hostname: "node1"}).Paths() {
		if p == MachineIDPath {
			t.Errorf("a config without a machine ID renders %s", p)
		}
	}
	if err := (Config{MachineID: strings.ToUpper(id)}).Validate(); err == nil || !strings.Contains(err.Error(), "machine ID") {
		t.Errorf("Validate of an upper-case machine ID: %v", err)
	}
}
