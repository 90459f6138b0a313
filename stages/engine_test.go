package stages

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

type recordFail struct {
	policy string
	err    error
}

func (r *recordFail) Fail(_ context.Context, policy string, err error) error {
	r.policy, r.err = policy, err
	return nil
}

type recordBreak struct{ stages []string }

func (r *recordBreak) Break(_ context.Context, stage string) error {
	r.stages = append(r.stages, stage)
	return nil
}

// testPlan is a plan whose steps have the given inputs.
func testPlan(inputs ...plan.Input) *plan.Blueprint {
	p := &plan.Blueprint{}
	for _, in := range inputs {
		p.Steps = append(p.Steps, plan.Step{Name: in.Stage(), Description: "do " + in.Stage(), Input: in})
	}
	return p
}

func kinds(evs []Event) string {
	var b []string
	for _, e := range evs {
		b = append(b, e.Stage+":"+string(e.Kind))
	}
	return strings.Join(b, " ")
}

func fakeClock() func() time.Time {
	t := time.Unix(1000, 0)
	return func() time.Time { t = t.Add(time.Second); return t }
}

func recordRuns(ran *[]string, fail map[string]error) StepRunner {
	return StepRunnerFunc(func(ctx context.Context, s plan.Step, r *Reporter) error {
		*ran = append(*ran, s.Name)
		r.Progress(50, 100, 10)
		return fail[s.Name]
	})
}

func TestRunOrderAndEvents(t *testing.T) {
	var ran []string
	c := &Collector{}
	e := &Engine{Sink: c, Now: fakeClock()}
	if err := e.Run(context.Background(), testPlan(plan.Partition{Disk: "vda"}, plan.WriteSlot{Disk: "vda", Slot: "a"}), recordRuns(&ran, nil)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(ran, ",") != "partition,write-slot" {
		t.Fatalf("ran %v", ran)
	}
	want := "partition:start partition:progress partition:done write-slot:start write-slot:progress write-slot:done"
	if got := kinds(c.Events()); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	for _, ev := range c.Events() {
		if ev.Kind == EventDone && ev.Duration != 2*time.Second {
			t.Errorf("%s duration %v, want 2s from the fake clock", ev.Stage, ev.Duration)
		}
	}
}

func TestRunFailureStopsAndCallsPolicy(t *testing.T) {
	var ran []string
	refusal := &operr.Error{What: "disk vanished", Fix: "check cabling", Arg: "storage_init=serial:S1"}
	c, f := &Collector{}, &recordFail{}
	e := &Engine{Sink: c, Failure: f, OnFail: "poweroff"}
	err := e.Run(context.Background(), testPlan(plan.Wipe{Disk: "a"}, plan.Partition{Disk: "a"}, plan.Filesystems{Disk: "a"}),
		recordRuns(&ran, map[string]error{"partition": refusal}))
	var se *StageError
	if !errors.As(err, &se) || se.Stage != "partition" {
		t.Fatalf("err = %v, want the partition stage's error", err)
	}
	if strings.Join(ran, ",") != "wipe,partition" {
		t.Fatalf("a stage ran after a failure: %v", ran)
	}
	if f.policy != "poweroff" || f.err == nil {
		t.Fatalf("failure handler got %q %v", f.policy, f.err)
	}
	evs := c.Events()
	last := evs[len(evs)-1]
	if last.Kind != EventFailed || last.Hint != "check cabling" || last.Arg != "storage_init=serial:S1" {
		t.Fatalf("last event %+v", last)
	}
	if strings.Contains(last.Error, "check cabling") {
		t.Fatalf("the event's error repeats the fix: %q", last.Error)
	}
}

func TestJobRefusesAnInputWithoutImplementation(t *testing.T) {
	type unknown struct{ plan.Report }
	err := (&Job{}).RunStep(context.Background(), plan.Step{Name: "report", Input: unknown{}}, nil)
	if err == nil || !strings.Contains(err.Error(), "no implementation") {
		t.Fatalf("err = %v", err)
	}
}

func TestRunBreakBeforeStage(t *testing.T) {
	var ran []string
	b, c := &recordBreak{}, &Collector{}
	e := &Engine{Sink: c, Break: b, BreakAt: []string{"partition"}}
	if err := e.Run(context.Background(), testPlan(plan.Wipe{Disk: "a"}, plan.Partition{Disk: "a"}), recordRuns(&ran, nil)); err != nil {
		t.Fatal(err)
	}
	if strings.Join(b.stages, ",") != "partition" {
		t.Fatalf("break at %v", b.stages)
	}
	want := "wipe:start wipe:progress wipe:done partition:break partition:start partition:progress partition:done"
	if got := kinds(c.Events()); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}

func TestRunDryRunRunsNothing(t *testing.T) {
	p := testPlan(plan.Wipe{Disk: "a"}, plan.Partition{Disk: "a"})
	p.DryRun = true
	c := &Collector{}
	var ran []string
	if err := (&Engine{Sink: c}).Run(context.Background(), p, recordRuns(&ran, nil)); err != nil {
		t.Fatal(err)
	}
	if len(ran) > 0 {
		t.Fatalf("ran %v on a dry run", ran)
	}
	if got := kinds(c.Events()); got != "wipe:skipped partition:skipped" {
		t.Fatalf("events %s", got)
	}
}

func TestRunRefusesBreakAtUnplannedStage(t *testing.T) {
	var ran []string
	err := (&Engine{BreakAt: []string{"wipe"}}).Run(context.Background(), testPlan(plan.Partition{Disk: "a"}), recordRuns(&ran, nil))
	d := operr.Describe(err)
	if err == nil || !strings.Contains(d.Message, "no wipe stage") || !strings.Contains(d.Fix, "partition") || d.Arg == "" {
		t.Fatalf("err = %v (%+v)", err, d)
	}
	if len(ran) > 0 {
		t.Fatal("a stage ran although the break point was not in the plan")
	}
}

// TestBreakWorksForEveryStageTheParserAccepts walks every name that
// nodeinit.break accepts: for each, it finds an action whose run reaches that
// stage, runs the engine's steps the way /init does (network, probe, the plan,
// the hand-off), and checks the rescue shell opened exactly before that stage
// and nothing of it had run.
func TestBreakWorksForEveryStageTheParserAccepts(t *testing.T) {
	if !slices.Equal(cmdline.StageNames, plan.AllStages) {
		t.Fatalf("the parser accepts %v but the engine has %v", cmdline.StageNames, plan.AllStages)
	}
	plans := []*plan.Blueprint{
		{Handoff: plan.HandoffReboot, Steps: testPlan(plan.FetchBootFiles{}, plan.Wipe{Disk: "a"}, plan.Partition{Disk: "a"}, plan.Filesystems{Disk: "a"},
			plan.WriteSlot{Disk: "a", Slot: "a"}, plan.CopyBootFiles{Disk: "a", Slot: "a"}, plan.SeedConfig{Disk: "a"},
			plan.AddBootEntry{Disk: "a", Slot: "a"}, plan.BootOrder{Disk: "a"}, plan.Report{Disk: "a"}).Steps},
		{Handoff: plan.HandoffReboot, Steps: testPlan(plan.MigrateConfig{Disk: "a", Slot: "b"}).Steps},
		{Handoff: plan.HandoffSwitchRoot, Steps: testPlan(plan.CopyToRAM{}, plan.MountRoot{Slot: "ram"}).Steps},
	}
	for _, stage := range cmdline.StageNames {
		t.Run(stage, func(t *testing.T) {
			p, err := cmdline.Parse("nodeinit.break=" + stage)
			if err != nil {
				t.Fatalf("the parser refuses its own stage name: %v", err)
			}
			var bp *plan.Blueprint
			for _, c := range plans {
				if stage == plan.StageNetwork || stage == plan.StageProbe || stage == string(c.Handoff) ||
					slices.ContainsFunc(c.Steps, func(s plan.Step) bool { return s.Name == stage }) {
					bp = c
					break
				}
			}
			if bp == nil {
				t.Fatalf("no test plan reaches %s", stage)
			}
			var ran []string
			b, c := &recordBreak{}, &Collector{}
			e := &Engine{Sink: c, Break: b, BreakAt: p.Node.Break}
			if err := runLikeInit(e, bp, recordRuns(&ran, nil)); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(b.stages, []string{stage}) {
				t.Fatalf("break shell opened before %v", b.stages)
			}
			evs := kinds(c.Events())
			if !strings.Contains(evs, stage+":break "+stage+":start") {
				t.Fatalf("break is not right before %s's start: %s", stage, evs)
			}
		})
	}
}

// runLikeInit runs the engine's own steps around the plan in /init's order.
func runLikeInit(e *Engine, bp *plan.Blueprint, run StepRunner) error {
	ctx := context.Background()
	for _, s := range []string{plan.StageNetwork, plan.StageProbe} {
		if err := e.Step(ctx, s, s, func(*Reporter) error { return nil }); err != nil {
			return err
		}
	}
	if err := e.Run(ctx, bp, run); err != nil {
		return err
	}
	return e.Step(ctx, string(bp.Handoff), "hand-off", func(*Reporter) error { return nil })
}

func TestThrottleKeepsOneProgressPerInterval(t *testing.T) {
	c := &Collector{}
	th := &Throttle{Next: c, Interval: time.Second}
	base := time.Unix(0, 0)
	for i := 0; i < 10; i++ {
		th.Emit(Event{Time: base.Add(time.Duration(i) * 300 * time.Millisecond), Stage: "w", Kind: EventProgress, Done: int64(i), Total: 10})
	}
	th.Emit(Event{Time: base.Add(3 * time.Second), Stage: "w", Kind: EventProgress, Done: 10, Total: 10})
	var done []int64
	for _, e := range c.Events() {
		done = append(done, e.Done)
	}
	// at 0, 1.2s, 2.4s, and the final one.
	if len(done) != 4 || done[0] != 0 || done[1] != 4 || done[2] != 8 || done[3] != 10 {
		t.Fatalf("throttled progress = %v", done)
	}
}

func TestFormatHumanProgress(t *testing.T) {
	line := FormatHuman(Event{Stage: "write-slot", Kind: EventProgress, Done: 512 << 20, Total: 1024 << 20, Rate: 100e6})
	for _, want := range []string{"write-slot", "512MiB/1024MiB", "50%", "100.0 MB/s", "eta 5s"} {
		if !strings.Contains(line, want) {
			t.Errorf("%q lacks %q", line, want)
		}
	}
}
