package main

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/nodeinit/nodeinit/internal/benchutil"
)

// TestReportVerdicts: each budget is judged in its own direction, the figure without
// a target gets none, and a figure not recorded is named as missing.
func TestReportVerdicts(t *testing.T) {
	figs := map[string]benchutil.Figure{}
	for _, b := range budgets {
		figs[b.figure] = benchutil.Figure{Name: b.figure, Value: b.limit}
	}
	figs["boot.size_ratio"] = benchutil.Figure{Value: 0.61} // over <= 0.5
	figs["image.write"] = benchutil.Figure{Value: 0.88}     // under >= 0.95
	figs["image.write_sha256"] = benchutil.Figure{Value: 1.02}
	delete(figs, "install.peak_rss")
	var out bytes.Buffer
	missing := report(&out, figs)
	if len(missing) != 1 || missing[0] != "install.peak_rss" {
		t.Errorf("missing = %v, want [install.peak_rss]", missing)
	}
	for _, want := range []string{
		`(?m)^  P4 .* <= 0\.500 +0\.610  FAIL`,
		`(?m)^  P4b .* <= 4\.00 MiB +4\.00 MiB  PASS`, // at the limit is within it
		`(?m)^  W .*default bundle .* >= 0\.950 +0\.880  FAIL`,
		`(?m)^ +slot write.*SHA-256 chunks only +\(report\) +1\.020  -`,
		`(?m)^  P6 .*MISSING`,
		`(?m)^ +kernel start to /init.*\(report\) .* -`,
		`(?m)^  4 PASS, 2 FAIL$`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("no line matching %s in\n%s", want, out.String())
		}
	}
}
