package plan

import (
	"bufio"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/operr"
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
			f, err := loadFacts(filepath.Join("../testdata/facts", factsFile))
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
				if !isErr && strings.HasPrefix(name, "appdata-") {
					checkTextGolden(t, base+".text", line, f)
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
			if !isErr && strings.HasPrefix(name, "appdata-") {
				checkTextGolden(t, base+".text", line, f)
			}
		})
	}
}

// checkTextGolden compares the plan's text, as `nodeinit plan` prints it, with
// the golden file (the app-data cases: their disks and partitions in the text).
func checkTextGolden(t *testing.T, golden, line string, f *Facts) {
	t.Helper()
	bp, err := planLine(t, line, f)
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	if err := bp.WriteText(&got); err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	exp, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(exp) != got.String() {
		t.Fatalf("plan text differs from %s\n--- got\n%s\n--- want\n%s", filepath.Base(golden), got.String(), exp)
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
		return "cmdline: " + refusalText(err)[len("plan: "):], true
	}
	plan, err := Plan(p, f)
	if err != nil {
		return refusalText(err), true
	}
	b, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return "marshal: " + err.Error() + "\n", true
	}
	return string(b) + "\n", false
}

// refusalText is the golden form of a refusal: the message, and the fix and the
// kernel argument the failure screen would show.
func refusalText(err error) string {
	d := operr.Describe(err)
	out := "plan: " + d.Message + "\n"
	if d.Fix != "" {
		out += "fix: " + d.Fix + "\n"
	}
	if d.Arg != "" {
		out += "kernel argument: " + d.Arg + "\n"
	}
	return out
}

func loadFacts(path string) (*Facts, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseFacts(path, b)
}

// TestPlanningImportsNoIO holds the line between planning and effects: the
// planning packages, and everything they import, do no process, device or
// network I/O.
func TestPlanningImportsNoIO(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/nodeinit/nodeinit/plan", "github.com/nodeinit/nodeinit/cmdline").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list printed too little to judge: %q", deps)
	}
	// os (and through it syscall) is allowed: fmt needs it. What is not is a
	// way to run a process, a device ioctl, the network, or our effectful code.
	forbidden := []string{"os/exec", "golang.org/x/sys/unix", "net/http", "net",
		"github.com/nodeinit/nodeinit/device/linuxdev", "github.com/nodeinit/nodeinit/stages", "github.com/nodeinit/nodeinit/image",
		"github.com/nodeinit/nodeinit/boot", "github.com/diskfs/go-diskfs"}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") && f != "net" {
				t.Errorf("planning imports %s", d)
			}
		}
	}
}

func TestPlanIsPure(t *testing.T) {
	f, err := loadFacts("../testdata/facts/one-nvme.json")
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
