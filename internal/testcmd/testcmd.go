// Package testcmd runs the standard tools tests check their results with
// (sgdisk, blkid, mkfs, e2fsck, …).
package testcmd

import (
	"os/exec"
	"strings"
	"testing"
)

// Run runs name with args and returns its combined output; a failure fails
// the test with the command line and what it printed.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
