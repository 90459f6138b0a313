package early

import (
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/kmod"
	"github.com/nodeinit/nodeinit/modalias"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// LoadModules loads the listed modules the hardware needs, with their dependencies,
// through kmod's Loader of root (u-root's kmodule over modules.dep and
// modules.builtin under root/lib/modules/<running kernel>). A module that drives
// devices on a probed bus (modalias.ProbedBuses: PCI, virtio, ACPI, …) is loaded
// only when the modalias of a device under root/sys matches one of its aliases in
// modules.alias; a driver of a late bus (modalias.LateBuses: SCSI, USB, MMC) only
// when that bus is registered; others the list names are always loaded. Each
// round loads its modules in parallel, then sysfs is scanned again for the
// devices and buses those drivers added, until a round adds nothing. Without
// modules.alias (an initramfs from before it was written) every listed module is
// loaded.
//
// forced (ForcedModules) are loaded in the first round whatever the devices.
//
// Built-in and already loaded modules count as loaded; a module whose init says
// ENODEV (efivarfs without EFI) is Absent, not failed. kmodule loads each shared
// dependency once.
func LoadModules(root string, names, forced []string) ModuleReport {
	report := ModuleReport{Failed: map[string]string{}}
	start := time.Now()
	loader, err := kmod.Open(root)
	report.Tables = time.Since(start)
	if err != nil {
		for _, n := range names {
			report.Failed[n] = err.Error()
		}
		return report
	}
	if loader.NoAlias != nil {
		report.NoAlias = loader.NoAlias.Error()
	}
	sys := filepath.Join(root, "sys")
	scanner := modalias.NewScanner(sys)
	scan := func() ([]string, map[string]bool, error) {
		start := time.Now()
		defer func() { report.Scans += time.Since(start) }()
		devices, err := scanner.Scan()
		return devices, scanner.Buses(), err
	}
	load := func(names []string) {
		start := time.Now()
		loadRound(loader.Prober, names, &report)
		report.Loads += time.Since(start)
	}
	var scanErr error
	report.Skipped, report.Rounds, scanErr = loadForDevices(names, forced, loader.Table, scan, load)
	if scanErr != nil {
		report.NoAlias = scanErr.Error()
	}
	slices.Sort(report.Loaded)
	slices.Sort(report.Absent)
	return report
}

// loadRound probes names in parallel and records each outcome in report.
func loadRound(prober *kmodule.Prober, names []string, report *ModuleReport) {
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
			case err != nil:
				report.Failed[n] = err.Error()
			default:
				report.Loaded = append(report.Loaded, n)
			}
		}()
	}
	wg.Wait()
}
