package stages

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
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

func testPlan(names ...string) *Blueprint {
	p := &Blueprint{}
	for _, n := range names {
		p.Steps = append(p.Steps, Step{Name: n, Description: "do " + n})
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

func TestRunOrderAndEvents(t *testing.T) {
	var ran []string
	stage := func(ctx context.Context, s Step, r *Reporter) error {
		ran = append(ran, s.Name)
		r.Progress(50, 100, 10)
		return nil
	}
	c := &Collector{}
	err := Run(context.Background(), testPlan("partition", "write-slot"), RunOptions{
		Sink: c, Now: fakeClock(),
		Stages: map[string]StageFunc{"partition": stage, "write-slot": stage},
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ran, ",") != "partition,write-slot" {
		t.Fatalf("ran %v", ran)
	}
	want := "partition:start partition:progress partition:done write-slot:start write-slot:progress write-slot:done"
	if got := kinds(c.Events()); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	for _, e := range c.Events() {
		if e.Kind == EventDone && e.Duration != 2*time.Second {
			t.Errorf("%s duration %v, want 2s from the fake clock", e.Stage, e.Duration)
		}
	}
}

func TestRunFailureStopsAndCallsPolicy(t *testing.T) {
	var ran []string
	ok := func(ctx context.Context, s Step, r *Reporter) error { ran = append(ran, s.Name); return nil }
	bad := func(ctx context.Context, s Step, r *Reporter) error {
		return &RefusalError{Reason: "disk vanished", Fix: "check cabling"}
	}
	c, f := &Collector{}, &recordFail{}
	err := Run(context.Background(), testPlan("a", "b", "c"), RunOptions{
		Sink: c, Failure: f, OnFail: "poweroff",
		Stages: map[string]StageFunc{"a": ok, "b": bad, "c": ok},
	})
	var se *StageError
	if !errors.As(err, &se) || se.Stage != "b" {
		t.Fatalf("err = %v, want stage b error", err)
	}
	if strings.Join(ran, ",") != "a" {
		t.Fatalf("stage c ran after a failure: %v", ran)
	}
	if f.policy != "poweroff" || f.err == nil {
		t.Fatalf("failure handler got %q %v", f.policy, f.err)
	}
	evs := c.Events()
	last := evs[len(evs)-1]
	if last.Kind != EventFailed || last.Hint != "check cabling" {
		t.Fatalf("last event %+v", last)
	}
}

func TestRunNotImplemented(t *testing.T) {
	err := Run(context.Background(), testPlan("esp"), RunOptions{})
	if !errors.Is(err, ErrNotImplemented) {
		t.Fatalf("err = %v, want ErrNotImplemented", err)
	}
	if !strings.Contains(err.Error(), "esp") {
		t.Fatalf("error does not name the stage: %v", err)
	}
}

func TestRunBreakBeforeStage(t *testing.T) {
	var ran []string
	stage := func(ctx context.Context, s Step, r *Reporter) error { ran = append(ran, s.Name); return nil }
	b, c := &recordBreak{}, &Collector{}
	err := Run(context.Background(), testPlan("wipe", "partition"), RunOptions{
		Sink: c, Break: b, BreakAt: []string{"partition"},
		Stages: map[string]StageFunc{"wipe": stage, "partition": stage},
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(b.stages, ",") != "partition" {
		t.Fatalf("break at %v", b.stages)
	}
	want := "wipe:start wipe:done partition:break partition:start partition:done"
	if got := kinds(c.Events()); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
}

func TestRunDryRunRunsNothing(t *testing.T) {
	stage := func(ctx context.Context, s Step, r *Reporter) error {
		t.Fatalf("stage %s ran on a dry run", s.Name)
		return nil
	}
	p := testPlan("wipe", "partition")
	p.DryRun = true
	c := &Collector{}
	if err := Run(context.Background(), p, RunOptions{Sink: c, Stages: map[string]StageFunc{"wipe": stage, "partition": stage}}); err != nil {
		t.Fatal(err)
	}
	if got := kinds(c.Events()); got != "wipe:skipped partition:skipped" {
		t.Fatalf("events %s", got)
	}
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

func TestRunRefusesBreakAtUnplannedStage(t *testing.T) {
	ran := false
	stage := func(ctx context.Context, s Step, r *Reporter) error { ran = true; return nil }
	err := Run(context.Background(), testPlan("partition"), RunOptions{
		BreakAt: []string{"wipe"}, Stages: map[string]StageFunc{"partition": stage},
	})
	if err == nil || !strings.Contains(err.Error(), "no wipe stage") || !strings.Contains(hintOf(err), "partition") {
		t.Fatalf("err = %v (hint %q)", err, hintOf(err))
	}
	if ran {
		t.Fatal("a stage ran although the break point was not in the plan")
	}
}
