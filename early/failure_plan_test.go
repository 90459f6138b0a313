package early_test

import (
	"os"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/plan"
)

// TestFailureScreenShowsTheArgumentToAdd computes real refusals with the
// planner (a foreign disk without consent, an ambiguous storage_init) and checks
// that the failure screen's "Kernel argument to add" is the exact argument,
// and that "What went wrong" does not repeat the fix.
func TestFailureScreenShowsTheArgumentToAdd(t *testing.T) {
	for _, tc := range []struct {
		facts, line, arg string
	}{
		{"foreign.json", "install storage_init=/dev/nvme0n1", "nodeinit.wipe=S5GXNF0R100001"},
		{"two-identical.json", "install storage_init=nvme:ALL", "storage_init=serial:S5GXNF0R100001"},
	} {
		b, err := os.ReadFile("../testdata/facts/" + tc.facts)
		if err != nil {
			t.Fatal(err)
		}
		f, err := plan.ParseFacts(tc.facts, b)
		if err != nil {
			t.Fatal(err)
		}
		p, err := cmdline.Parse(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		_, err = plan.Plan(p, f)
		if err == nil {
			t.Fatalf("%s: %q was not refused", tc.facts, tc.line)
		}
		screen := early.FailureScreen(err, early.OnFailHalt, "")
		_, after, ok := strings.Cut(screen, "Kernel argument to add:\n")
		if !ok || strings.TrimSpace(strings.SplitN(after, "\n", 2)[0]) != tc.arg {
			t.Errorf("%s: the screen does not give %s as the argument to add:\n%s", tc.facts, tc.arg, screen)
		}
		what, _, _ := strings.Cut(screen, "How to fix:")
		if strings.Contains(what, tc.arg) && !strings.Contains(tc.line, tc.arg) {
			t.Errorf("%s: 'What went wrong' repeats the fix:\n%s", tc.facts, what)
		}
	}
}
