package spec

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoIO holds the line that lets the planner import this package: nothing it
// depends on does network, process or device I/O, and the only module packages it imports
// are cmdline and itself. (syscall is there through os, which fmt imports; every package
// that formats an error has it.)
func TestImportsNoIO(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) < 10 {
		t.Fatalf("go list printed too little to judge: %q", lines)
	}
	allowed := map[string]bool{"github.com/nodeinit/nodeinit/cmdline": true, "github.com/nodeinit/nodeinit/operr": true, "github.com/nodeinit/nodeinit/nodeconfig/spec": true}
	forbidden := map[string]bool{"net": true, "net/http": true, "os/exec": true, "os/signal": true, "plugin": true}
	for _, l := range lines {
		pkg, std, _ := strings.Cut(l, " ")
		switch {
		case std == "true" && (forbidden[pkg] || strings.HasPrefix(pkg, "net/http/")):
			t.Errorf("spec imports %s", pkg)
		case std != "true" && !allowed[pkg]:
			t.Errorf("spec imports %s (only cmdline and operr are allowed outside the standard library)", pkg)
		}
	}
}
