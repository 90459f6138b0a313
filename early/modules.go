package early

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
)

// ModuleListPath is where the initramfs builder writes the modules /init loads, one a line.
const ModuleListPath = "/etc/nodeinit/modules"

// ModuleReport says which modules were asked for and what happened to each.
type ModuleReport struct {
	Loaded []string          // loaded now, already loaded, or built into the kernel
	Absent []string          // loaded, but found no device or firmware (ENODEV: not this machine)
	Failed map[string]string // module → error
}

// String summarises the report in one line.
func (r ModuleReport) String() string {
	s := fmt.Sprintf("%d loaded", len(r.Loaded))
	if len(r.Absent) > 0 {
		s += fmt.Sprintf(", %d without a device (%s)", len(r.Absent), strings.Join(r.Absent, " "))
	}
	if len(r.Failed) > 0 {
		names := make([]string, 0, len(r.Failed))
		for n := range r.Failed {
			names = append(names, n)
		}
		sort.Strings(names)
		s += fmt.Sprintf(", %d failed: %s", len(names), strings.Join(names, " "))
	}
	return s
}

// ReadModuleList reads module names from path, one a line; '#' starts a comment.
func ReadModuleList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read module list: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			names = append(names, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read module list %s: %w", path, err)
	}
	return names, nil
}
