package plan

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
)

// TestPlanShowsMeasurements: with a TPM, the plan text and JSON say what the
// boot measures and where; without one, or with nodeinit.tpm=off, nothing.
func TestPlanShowsMeasurements(t *testing.T) {
	f, err := loadFacts("../testdata/facts/installed-v1.1-image.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tpm  bool
		line string
		want int
	}{{false, "", 0}, {true, "nodeinit.tpm=off", 0}, {true, "", 1}, {true, "nodeinit.tpm=required", 1}} {
		f.TPM = tc.tpm
		p, err := cmdline.Parse(tc.line)
		if err != nil {
			t.Fatal(err)
		}
		bp, err := Plan(p, f)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		bp.WriteText(&b)
		text := b.String()
		has := strings.Contains(text, "measures: PCR 11  enter-initrd") && strings.Contains(text, "measures: PCR 11  leave-initrd") &&
			strings.Contains(text, "measures: PCR 23  step mount-root, before it runs") && strings.Contains(text, "measures: PCR 23  slot ")
		if has != (tc.want == 1) {
			t.Errorf("tpm=%v %q: measurements shown = %v:\n%s", tc.tpm, tc.line, has, text)
		}
		if strings.Contains(text, "nodeinit.tpm=required") != strings.Contains(tc.line, "required") {
			t.Errorf("%q: required not shown as asked:\n%s", tc.line, text)
		}
		js, _ := json.Marshal(bp)
		if strings.Contains(string(js), `"measures"`) != (tc.want == 1) {
			t.Errorf("tpm=%v %q: JSON %s", tc.tpm, tc.line, js)
		}
	}
}
