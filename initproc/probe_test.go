package initproc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
)

// TestProbeDisksBootWaitsOnlyForWhatIsMissing: a plain boot probes at once
// when its install is there; when it is not, it probes again as soon as a
// disk appears, and it gives up on the disks' list staying the same.
func TestProbeDisksBootWaitsOnlyForWhatIsMissing(t *testing.T) {
	boot, err := cmdline.Parse("")
	if err != nil {
		t.Fatal(err)
	}
	sys := t.TempDir()
	installed, blank := facts(t, "installed"), facts(t, "one-nvme")
	var notes []string
	note := func(s string) { notes = append(notes, s) }

	probes := 0
	m, err := probeDisks(context.Background(), boot, sys, note, func() (*stages.Machine, error) {
		probes++
		return &stages.Machine{Facts: installed}, nil
	})
	if err != nil || m.Facts != installed || probes != 1 || len(notes) != 0 {
		t.Errorf("install present: %d probes, notes %q (%v); want one probe", probes, notes, err)
	}

	// The install's disk shows up 200 ms after the first probe.
	probes = 0
	go func() {
		time.Sleep(200 * time.Millisecond)
		os.Mkdir(filepath.Join(sys, "nvme0n1"), 0o755)
	}()
	m, err = probeDisks(context.Background(), boot, sys, note, func() (*stages.Machine, error) {
		probes++
		if probes == 1 {
			return &stages.Machine{Facts: blank}, nil
		}
		return &stages.Machine{Facts: installed}, nil
	})
	if err != nil || m.Facts != installed || probes != 2 {
		t.Errorf("late disk: %d probes, facts %v, %v; want the second probe's", probes, m != nil && m.Facts == installed, err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "probing again") {
		t.Errorf("notes %q, want one saying it probes again", notes)
	}
}

// TestProbeDisksDestructiveWaitsForQuiet: an install chooses from the disk
// list only after it has been quiet for disksQuiet.
func TestProbeDisksDestructiveWaitsForQuiet(t *testing.T) {
	install, err := cmdline.Parse("install storage_init=/dev/nvme0n1")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := probeDisks(context.Background(), install, t.TempDir(), func(string) {}, func() (*stages.Machine, error) {
		return &stages.Machine{Facts: facts(t, "one-nvme")}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < disksQuiet {
		t.Errorf("an install probed after %s, before the disk list was quiet for %s", d, disksQuiet)
	}
}

// TestOnlyAPlainBootKeepsTheProbedESP: the probed ESP goes to the job only
// when the plan's first step mounts a slot on disk; a stateless boot, a plan
// that partitions first and a rescue shell (no steps) get it closed.
func TestOnlyAPlainBootKeepsTheProbedESP(t *testing.T) {
	for _, c := range []struct {
		name  string
		steps []plan.Step
		keep  bool
	}{
		{"boot", []plan.Step{{Name: plan.StageMountRoot, Input: plan.MountRoot{Disk: "vda", Slot: "a"}}}, true},
		{"stateless", []plan.Step{{Name: plan.StageMountRoot, Input: plan.MountRoot{Slot: "ram"}}}, false},
		{"install", []plan.Step{{Name: plan.StagePartition, Input: plan.Partition{Disk: "vda"}},
			{Name: plan.StageMountRoot, Input: plan.MountRoot{Disk: "vda", Slot: "a"}}}, false},
		{"rescue", nil, false},
	} {
		if got := startsWithMountRoot(&plan.Blueprint{Steps: c.steps}); got != c.keep {
			t.Errorf("%s: startsWithMountRoot = %v, want %v", c.name, got, c.keep)
		}
	}
}
