package stages

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/plan"
)

// countingOpens is the real device edge, counting the partitions opened for
// writing.
type countingOpens struct {
	*linuxdev.Machine
	writable int
	refuse   error // returned by OpenBlock instead of opening, when set
}

func (c *countingOpens) OpenBlock(path string, sectorSize int) (device.Block, error) {
	c.writable++
	if c.refuse != nil {
		return nil, c.refuse
	}
	return c.Machine.OpenBlock(path, sectorSize)
}

// probedNode makes an ESP image (dev/vda1 under a temporary directory) as an
// install leaves it: slot a of version 1.0 active, its entry blessed, and
// the slot good in the ledger unless good is false (the first boot after
// the install). It returns the job's /dev and the disk.
func probedNode(t *testing.T, good bool) (string, *disk.Disk) {
	t.Helper()
	devDir := t.TempDir()
	img := filepath.Join(devDir, "vda1")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.vfat", "-F", "32", "-n", "NODE-ESP", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat (dosfstools): %v\n%s", err, out)
	}
	b, err := (&linuxdev.Machine{}).OpenBlock(img, 512)
	if err != nil {
		t.Fatal(err)
	}
	esp, err := boot.OpenFAT(b)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0)
	l := boot.NewLedger("id")
	state := boot.SlotGood
	if !good {
		state = boot.SlotReady
	}
	l.RecordSlot(at, "a", state, "1.0", "node")
	l.SetActive("a")
	if err := l.Write(esp); err != nil {
		t.Fatal(err)
	}
	if err := boot.WriteEntry(esp, boot.Entry{Slot: "a", Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	return devDir, &disk.Disk{Name: "vda", Path: "/dev/vda", LogicalSectorSize: 512,
		Partitions: []disk.Partition{{Number: 1, Name: "vda1", PartLabel: disk.LabelESP}}}
}

// probe opens the ESP read-only as the probe does with KeepESP.
func probe(t *testing.T, devDir string, d *disk.Disk) *ProbedESP {
	t.Helper()
	b, err := (&linuxdev.Machine{}).OpenBlockReadOnly(filepath.Join(devDir, "vda1"), 512)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := boot.OpenFAT(b)
	if err != nil {
		t.Fatal(err)
	}
	return &ProbedESP{Disk: d.Name, FS: fs, b: b}
}

// TestPlainBootReadsTheProbedESP: recording a plain boot of the slot the
// ledger has active and good changes nothing, so mount-root's ESP step reads
// through the probe's FAT and opens no partition for writing; a first boot
// after an install, which marks the slot good, opens it once and writes the
// ledger, which a fresh read of the partition and fsck.vfat then see.
func TestPlainBootReadsTheProbedESP(t *testing.T) {
	for _, good := range []bool{true, false} {
		t.Run(map[bool]string{true: "plain", false: "first-boot"}[good], func(t *testing.T) {
			devDir, d := probedNode(t, good)
			dev := &countingOpens{Machine: &linuxdev.Machine{}}
			pe := probe(t, devDir, d)
			j := &Job{Dev: dev, DevDir: devDir, RunDir: t.TempDir(), Plan: &plan.Blueprint{}, ProbedESP: pe,
				Now: func() time.Time { return time.Unix(1700000100, 0) }}
			r := &Reporter{stage: plan.StageMountRoot, now: time.Now, sink: SinkFunc(func(Event) {})}
			config := t.TempDir()
			if err := j.withESP(d, func(esp boot.FS) error { return j.recordBoot(esp, config, "a", r) }); err != nil {
				t.Fatal(err)
			}
			if j.ProbedESP != nil || pe.b != nil {
				t.Errorf("the probed ESP is still open after its one use")
			}
			want := map[bool]int{true: 0, false: 1}[good]
			if dev.writable != want {
				t.Errorf("partitions opened for writing: %d, want %d", dev.writable, want)
			}
			// mtools, not go-diskfs, reads the ledger back.
			cmd := exec.Command("mtype", "-i", filepath.Join(devDir, "vda1"), "::/"+boot.LedgerFile)
			cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("mtype %s: %v\n%s", boot.LedgerFile, err, out)
			}
			var l boot.Ledger
			if err := json.Unmarshal(out, &l); err != nil {
				t.Fatalf("ledger as mtools reads it: %v\n%s", err, out)
			}
			if s := l.Slots["a"]; s == nil || s.State != boot.SlotGood || l.Active != "a" {
				t.Errorf("ledger after the boot: active %q, slot a %+v; want a, good", l.Active, s)
			}
		})
	}
}

// TestProbedESPOfAnotherDiskIsClosed: a job whose ESP use is on another
// disk than the probed one closes the probed ESP and opens its own.
func TestProbedESPOfAnotherDiskIsClosed(t *testing.T) {
	devDir, d := probedNode(t, true)
	pe := probe(t, devDir, d)
	pe.Disk = "vdb"
	dev := &countingOpens{Machine: &linuxdev.Machine{}}
	j := &Job{Dev: dev, DevDir: devDir, RunDir: t.TempDir(), Plan: &plan.Blueprint{}, ProbedESP: pe}
	if err := j.withESP(d, func(esp boot.FS) error { _, err := boot.ReadLedger(esp); return err }); err != nil {
		t.Fatal(err)
	}
	if pe.b != nil || dev.writable != 1 {
		t.Errorf("probed ESP of vdb open: %v; partitions opened for writing: %d, want 1", pe.b != nil, dev.writable)
	}
}

// TestProbedESPChangeThatCannotOpenTheESP: when the first change cannot open
// the partition for writing, the boot record fails with that error and the
// ESP stays as the probe read it.
func TestProbedESPChangeThatCannotOpenTheESP(t *testing.T) {
	devDir, d := probedNode(t, false) // a first boot: marking the slot good is a change
	refused := errors.New("partition busy")
	dev := &countingOpens{Machine: &linuxdev.Machine{}, refuse: refused}
	pe := probe(t, devDir, d)
	j := &Job{Dev: dev, DevDir: devDir, RunDir: t.TempDir(), Plan: &plan.Blueprint{}, ProbedESP: pe,
		Now: func() time.Time { return time.Unix(1700000100, 0) }}
	r := &Reporter{stage: plan.StageMountRoot, now: time.Now, sink: SinkFunc(func(Event) {})}
	err := j.withESP(d, func(esp boot.FS) error { return j.recordBoot(esp, t.TempDir(), "a", r) })
	if !errors.Is(err, refused) {
		t.Fatalf("withESP: %v, want the refused open", err)
	}
	if pe.b != nil {
		t.Errorf("the probed ESP is still open after the failed change")
	}
	again := probe(t, devDir, d)
	defer again.Close()
	l, err := boot.ReadLedger(again.FS)
	if err != nil {
		t.Fatal(err)
	}
	if s := l.Slots["a"]; s == nil || s.State != boot.SlotReady {
		t.Errorf("slot a after the failed change: %+v, want it still ready", s)
	}
}
