package stages

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/plan"
)

// recordMeasure logs the engine's measurement calls into the same list as the
// step runs, so their order shows; refuse fails BeforeStep for one stage.
type recordMeasure struct {
	log    *[]string
	refuse string
}

func (m *recordMeasure) BeforeStep(_ context.Context, stage string) error {
	*m.log = append(*m.log, "measure:"+stage)
	if stage == m.refuse {
		return errors.New("TPM failed")
	}
	return nil
}

func (m *recordMeasure) StepFailed(stage string) { *m.log = append(*m.log, "failed:"+stage) }

// TestMeasureBeforeEachStep: each step is measured before it runs, and a
// failing stage is measured as failed.
func TestMeasureBeforeEachStep(t *testing.T) {
	var log []string
	e := &Engine{Sink: &Collector{}, Measure: &recordMeasure{log: &log}}
	err := e.Run(context.Background(), testPlan(plan.Partition{Disk: "a"}, plan.WriteSlot{Disk: "a", Slot: "a"}, plan.Filesystems{Disk: "a"}),
		recordRuns(&log, map[string]error{"write-slot": errors.New("EIO")}))
	if err == nil {
		t.Fatal("the failing step's error was lost")
	}
	want := "measure:partition partition measure:write-slot write-slot failed:write-slot"
	if got := strings.Join(log, " "); got != want {
		t.Fatalf("order\n got %s\nwant %s", got, want)
	}
}

// TestMeasureFailureStopsTheStep: when measuring fails where it is required,
// the step does not run.
func TestMeasureFailureStopsTheStep(t *testing.T) {
	var log []string
	c := &Collector{}
	e := &Engine{Sink: c, Measure: &recordMeasure{log: &log, refuse: "partition"}}
	err := e.Run(context.Background(), testPlan(plan.Partition{Disk: "a"}), recordRuns(&log, nil))
	var se *StageError
	if !errors.As(err, &se) || se.Stage != "partition" {
		t.Fatalf("err = %v", err)
	}
	if got := strings.Join(log, " "); got != "measure:partition failed:partition" {
		t.Fatalf("the step ran unmeasured: %s", got)
	}
	if k := kinds(c.Events()); k != "partition:failed" {
		t.Fatalf("events %s", k)
	}
}
