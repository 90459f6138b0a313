package stages

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
)

var update = flag.Bool("update", false, "rewrite the golden plans under testdata/plans")

// TestPlanGolden computes the plan for every testdata/plans/*.txt case. A case file names
// its facts fixture on a "# facts: FILE" line; the rest is the kernel command line.
// The expected plan is NAME.json, or NAME.err for a refusal.
func TestPlanGolden(t *testing.T) {
	cases, err := filepath.Glob("../testdata/plans/*.txt")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no plan cases: %v", err)
	}
	for _, c := range cases {
		name := strings.TrimSuffix(filepath.Base(c), ".txt")
		t.Run(name, func(t *testing.T) {
			factsFile, line := readCase(t, c)
			f, err := LoadFacts(filepath.Join("../testdata/facts", factsFile))
			if err != nil {
				t.Fatal(err)
			}
			got, isErr := planOutput(line, f)
			base := strings.TrimSuffix(c, ".txt")
			okFile, errFile := base+".json", base+".err"
			want, other := okFile, errFile
			if isErr {
				want, other = errFile, okFile
			}
			if *update {
				os.Remove(other)
				if err := os.WriteFile(want, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			exp, err := os.ReadFile(want)
			if err != nil {
				if _, err2 := os.Stat(other); err2 == nil {
					t.Fatalf("expected the outcome in %s, got:\n%s", filepath.Base(other), got)
				}
				t.Fatal(err)
			}
			if string(exp) != got {
				t.Fatalf("plan differs from %s\n--- got\n%s\n--- want\n%s", filepath.Base(want), got, exp)
			}
		})
	}
}

func readCase(t *testing.T, path string) (facts, line string) {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var lines []string
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		l := sc.Text()
		if v, ok := strings.CutPrefix(l, "# facts:"); ok {
			facts = strings.TrimSpace(v)
			continue
		}
		if strings.HasPrefix(l, "#") {
			continue
		}
		lines = append(lines, l)
	}
	if facts == "" {
		t.Fatalf("%s: no '# facts:' line", path)
	}
	return facts, strings.TrimSpace(strings.Join(lines, " "))
}

// planOutput is the golden form: the plan as indented JSON, or the refusal text.
func planOutput(line string, f *Facts) (string, bool) {
	p, err := cmdline.Parse(line)
	if err != nil {
		return "cmdline: " + err.Error() + "\n", true
	}
	plan, err := Plan(p, f)
	if err != nil {
		return "plan: " + err.Error() + "\n", true
	}
	b, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return "marshal: " + err.Error() + "\n", true
	}
	return string(b) + "\n", false
}

func TestPlanIsPure(t *testing.T) {
	f, err := LoadFacts("../testdata/facts/one-nvme.json")
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(f)
	p, err := cmdline.Parse("install storage_init=/dev/nvme0n1 BOOTIF=link")
	if err != nil {
		t.Fatal(err)
	}
	a, errA := Plan(p, f)
	b, errB := Plan(p, f)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	after, _ := json.Marshal(f)
	if string(ja) != string(jb) {
		t.Fatal("two plans from the same input differ")
	}
	if string(before) != string(after) {
		t.Fatal("Plan modified its facts")
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"1.0", "1.0", 0}, {"1.10", "1.9", 1}, {"2.0", "10.0", -1}, {"1.0.1", "1.0", 1}, {"1.0-rc1", "1.0-rc2", -1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
