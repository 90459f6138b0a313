package early

import (
	"errors"
	"path/filepath"
	"slices"
	"sync"

	"github.com/nodeinit/nodeinit/modalias"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// LoadModules loads the listed modules the hardware needs, with their dependencies,
// through u-root's kmodule (modules.dep and modules.builtin under
// root/lib/modules/<running kernel>). A module that drives devices on a probed bus
// (modalias.ProbedBuses: PCI, virtio, ACPI, …) is loaded only when the modalias of a
// device under root/sys matches one of its aliases in modules.alias; the others
// (filesystems, SCSI and USB class drivers, device-mapper) are always loaded. Each
// round loads its modules in parallel, then sysfs is scanned again for the devices
// those drivers added, until a round adds nothing. Without modules.alias (an
// initramfs from before it was written) every listed module is loaded.
//
// forced (ForcedModules) are loaded in the first round whatever the devices.
//
// Built-in and already loaded modules count as loaded; a module whose init says
// ENODEV (efivarfs without EFI) is Absent, not failed. kmodule loads each shared
// dependency once.
func LoadModules(root string, names, forced []string) ModuleReport {
	report := ModuleReport{Failed: map[string]string{}}
	prober, err := kmodule.NewProber(kmodule.ProbeOpts{RootDir: root})
	if err != nil {
		for _, n := range names {
			report.Failed[n] = err.Error()
		}
		return report
	}
	var table *modalias.Table
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		report.NoAlias = "uname: " + err.Error()
	} else if table, err = modalias.ReadFile(filepath.Join(root, "lib/modules", unix.ByteSliceToString(uts.Release[:]), "modules.alias")); err != nil {
		report.NoAlias = err.Error()
		table = nil
	}

	scan := func() ([]string, error) { return modalias.Scan(filepath.Join(root, "sys")) }
	load := func(names []string) { loadRound(prober, names, &report) }
	var scanErr error
	report.Skipped, report.Rounds, scanErr = loadForDevices(names, forced, table, scan, load)
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
