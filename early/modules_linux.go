package early

import (
	"errors"
	"sort"
	"sync"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// LoadModules loads each named module with its dependencies through u-root's kmodule, which
// reads modules.dep and modules.builtin under root/lib/modules/<running kernel>. Built-in and
// already loaded modules count as loaded; a module whose init says ENODEV (efivarfs without
// EFI, a Hyper-V driver outside Hyper-V) is Absent, not failed. The modules are probed in parallel; kmodule loads
// each shared dependency once.
func LoadModules(root string, names []string) ModuleReport {
	report := ModuleReport{Failed: map[string]string{}}
	prober, err := kmodule.NewProber(kmodule.ProbeOpts{RootDir: root})
	if err != nil {
		for _, n := range names {
			report.Failed[n] = err.Error()
		}
		return report
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := prober.Probe(n, "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, unix.ENODEV):
				report.Absent = append(report.Absent, n)
				return
			case err != nil:
				report.Failed[n] = err.Error()
				return
			}
			report.Loaded = append(report.Loaded, n)
		}()
	}
	wg.Wait()
	sort.Strings(report.Loaded)
	sort.Strings(report.Absent)
	return report
}
