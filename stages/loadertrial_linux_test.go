package stages

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/plan"
)

// memEFI is an in-memory EFI variable store.
type memEFI map[string][]byte

func (m memEFI) Get(name string) (uint32, []byte, error) {
	d, ok := m[name]
	if !ok {
		return 0, nil, os.ErrNotExist
	}
	return 7, d, nil
}
func (m memEFI) Set(name string, _ uint32, data []byte) error { m[name] = data; return nil }
func (m memEFI) Remove(name string) error                     { delete(m, name); return nil }
func (m memEFI) List() ([]string, error) {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out, nil
}

// efiMachine is noMounts with EFI variables.
type efiMachine struct {
	noMounts
	vars memEFI
}

func (m efiMachine) EFIVars() (device.EFIVars, error) { return m.vars, nil }

func loaderID(path string) []byte {
	var b []byte
	for _, c := range append(utf16.Encode([]rune(path)), 0) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

// TestLoaderTrialVerdicts boots slot b, upgraded with a new loader, twice
// over: once started by that loader (the trial confirms it), once by the old
// one (the firmware could not start the new loader): then slot b is bad, its
// entry is gone, the config 1.0 expects is back, the ledger names the loader,
// and the boot asks to reboot instead of switching root.
func TestLoaderTrialVerdicts(t *testing.T) {
	const trial = "EFI/nodeinit/loader-0123456789ab.efi"
	for _, started := range []string{`\EFI\nodeinit\loader-0123456789ab.efi`, `\EFI\BOOT\BOOTX64.EFI`} {
		confirmed := strings.Contains(started, "nodeinit")
		t.Run(map[bool]string{true: "started", false: "fell-back"}[confirmed], func(t *testing.T) {
			esp, config := t.TempDir(), t.TempDir()
			at := time.Unix(1700000000, 0)
			l := boot.NewLedger("id")
			l.RecordSlot(at, "a", boot.SlotGood, "1.0", "node")
			l.RecordSlot(at, "b", boot.SlotReady, "2.0", "node")
			l.Slot("b").LoaderTrial = trial
			l.SetActive("a")
			l.Write(boot.DirFS(esp))
			boot.WriteEntry(boot.DirFS(esp), boot.Entry{Slot: "a", Version: "1.0"})
			boot.WriteEntry(boot.DirFS(esp), boot.Entry{Slot: "b", Version: "2.0", Tries: 3})
			nodeconfig.Seed(config, nodeconfig.Config{Hostname: "old"})
			nodeconfig.Snapshot(config, "1.0")
			nodeconfig.Replace(config, nodeconfig.Config{Hostname: "migrated"})

			vars := memEFI{boot.LoaderImageIdentifierVar: loaderID(started)}
			j := &Job{Dev: efiMachine{noMounts{t: t}, vars}, RunDir: t.TempDir(), Now: func() time.Time { return at }}
			var lines []string
			r := &Reporter{stage: plan.StageMountRoot, now: time.Now, sink: SinkFunc(func(e Event) { lines = append(lines, e.Message) })}
			if err := j.recordBoot(boot.DirFS(esp), config, "b", r); err != nil {
				t.Fatal(err)
			}
			got, _ := boot.ReadLedger(boot.DirFS(esp))
			host, _ := os.ReadFile(filepath.Join(config, "etc/hostname"))
			entries, _ := boot.Entries(boot.DirFS(esp))
			if confirmed {
				if j.RebootReason() != "" || got.Slots["b"].Loader != trial || got.Slots["b"].LoaderTrial != "" || got.Active != "b" {
					t.Errorf("a trial the new loader started: reboot %q, slot b %+v, active %s", j.RebootReason(), got.Slots["b"], got.Active)
				}
				return
			}
			if !strings.Contains(j.RebootReason(), "did not start") || got.Slots["b"].State != boot.SlotBad || got.Active != "a" {
				t.Errorf("a trial the firmware fell back from: reboot %q, slot b %+v, active %s", j.RebootReason(), got.Slots["b"], got.Active)
			}
			if len(got.Rollbacks) != 1 || !strings.Contains(got.Rollbacks[0].Reason, trial) || got.Last.Action != ActionLoaderTrialFailed {
				t.Errorf("the ledger does not say why: rollbacks %+v, last %+v", got.Rollbacks, got.Last)
			}
			if len(entries) != 1 || entries[0].Slot != "a" {
				t.Errorf("entries after the failed trial: %+v", entries)
			}
			if string(host) != "old\n" {
				t.Errorf("the config 1.0 expects was not restored: hostname %q", host)
			}
		})
	}
}
