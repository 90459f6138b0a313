package stages

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

// FailureHandler applies the nodeinit.onfail policy (shell, reboot, poweroff, halt)
// after the failure screen. The /init implements it; tests record the call.
type FailureHandler interface {
	Fail(ctx context.Context, policy string, err error) error
}

// BreakHandler opens the rescue shell before the named stage and returns when it exits.
type BreakHandler interface {
	Break(ctx context.Context, stage string) error
}

// StepRunner runs one planned step by its typed input. *Job is the real one.
type StepRunner interface {
	RunStep(ctx context.Context, s plan.Step, r *Reporter) error
}

// StepRunnerFunc adapts a function to StepRunner.
type StepRunnerFunc func(ctx context.Context, s plan.Step, r *Reporter) error

// RunStep calls f.
func (f StepRunnerFunc) RunStep(ctx context.Context, s plan.Step, r *Reporter) error {
	return f(ctx, s, r)
}

// StepMeasurer records each step in the TPM before it acts (measure.Measurer).
// The engine calls BeforeStep after the break point and before the step's start
// event; an error fails the step unrun (nodeinit.tpm=required). StepFailed
// records the stage that failed.
type StepMeasurer interface {
	BeforeStep(ctx context.Context, stage string) error
	StepFailed(stage string)
}

// Engine runs steps: the engine's own (network, probe, the hand-off) and the plan's.
// It adds what every step gets, the way Talos' runTask does: the break point, the
// start, done and failed events with timings, and the failure policy. Steps
// themselves only do their work and report progress.
type Engine struct {
	Sink Sink
	// BreakAt lists stage names before which the rescue shell opens (nodeinit.break).
	BreakAt []string
	Break   BreakHandler
	// OnFail is the policy name from nodeinit.onfail, handed to Failure.
	OnFail  string
	Failure FailureHandler
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Measure, when set, records each step before it runs.
	Measure StepMeasurer
}

// StageError is the error of the stage that failed.
type StageError struct {
	Stage string
	Err   error
}

// Error names the stage and its error.
func (e *StageError) Error() string { return fmt.Sprintf("stage %s: %v", e.Stage, e.Err) }

// Unwrap returns the stage's error.
func (e *StageError) Unwrap() error { return e.Err }

// Reporter lets a stage emit progress and remarks; the engine fills in the stage name and time.
type Reporter struct {
	stage  string
	sink   Sink
	now    func() time.Time
	result string
}

// Result sets the message of the stage's done event: what it found or made,
// in one line (the probe's disk count, the network's address).
func (r *Reporter) Result(format string, args ...any) {
	r.result = fmt.Sprintf(format, args...)
}

// Progress reports bytes done of total at rate bytes per second.
func (r *Reporter) Progress(done, total int64, rate float64) {
	r.sink.Emit(Event{Time: r.now(), Stage: r.stage, Kind: EventProgress, Done: done, Total: total, Rate: rate})
}

// Info reports a remark, such as which wipe method was used.
func (r *Reporter) Info(format string, args ...any) {
	r.sink.Emit(Event{Time: r.now(), Stage: r.stage, Kind: EventInfo, Message: fmt.Sprintf(format, args...)})
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) sink() Sink {
	if e.Sink == nil {
		return Fanout(nil)
	}
	return e.Sink
}

// Announce emits the plan as an EventPlan of the probe stage, so a machine
// reading the events (a test, a provisioning server) sees the whole plan
// before its first step runs; the message is its one-line summary.
func (e *Engine) Announce(bp *plan.Blueprint) {
	b, err := json.Marshal(bp)
	if err != nil {
		b = nil
	}
	e.sink().Emit(Event{Time: e.now(), Stage: plan.StageProbe, Kind: EventPlan, Message: planSummary(bp), Plan: b})
}

// planSummary says in one line what the plan does: its action, the target and the image.
func planSummary(bp *plan.Blueprint) string {
	msg := string(bp.Action)
	if bp.Target != nil {
		msg += " " + bp.Target.Path
	}
	if bp.Image != nil {
		msg += fmt.Sprintf(" with %s %s", bp.Image.Name, bp.Image.Version)
	}
	return msg
}

// Step runs one step named name: the break point, the start event, fn, then the
// done or failed event. On failure the error goes to the failure policy and comes
// back as a *StageError.
func (e *Engine) Step(ctx context.Context, name, description string, fn func(r *Reporter) error) error {
	sink := e.sink()
	if slices.Contains(e.BreakAt, name) {
		sink.Emit(Event{Time: e.now(), Stage: name, Kind: EventBreak, Message: "nodeinit.break: rescue shell before " + name + "; nothing of this stage has run. Exit the shell to continue."})
		if e.Break != nil {
			if err := e.Break.Break(ctx, name); err != nil {
				return e.Fail(ctx, name, fmt.Errorf("break shell: %w", err))
			}
		}
	}
	if e.Measure != nil {
		if err := e.Measure.BeforeStep(ctx, name); err != nil {
			return e.Fail(ctx, name, err)
		}
	}
	start := e.now()
	sink.Emit(Event{Time: start, Stage: name, Kind: EventStart, Message: description})
	r := &Reporter{stage: name, sink: sink, now: e.now}
	if err := fn(r); err != nil {
		return e.Fail(ctx, name, err)
	}
	end := e.now()
	sink.Emit(Event{Time: end, Stage: name, Kind: EventDone, Duration: end.Sub(start), Message: r.result})
	return nil
}

// CheckBreaks refuses break points that this plan will never reach, before
// anything runs: the operator meant to stop somewhere, and running past it would
// surprise them. The engine's own steps (network, probe, the hand-off) are always
// reachable.
func (e *Engine) CheckBreaks(ctx context.Context, bp *plan.Blueprint) error {
	reach := []string{plan.StageNetwork, plan.StageProbe}
	for _, s := range bp.Steps {
		reach = append(reach, s.Name)
	}
	switch bp.Handoff {
	case plan.HandoffSwitchRoot:
		reach = append(reach, plan.StageSwitchRoot)
	case plan.HandoffReboot:
		reach = append(reach, plan.StageReboot)
	}
	for _, b := range e.BreakAt {
		if !slices.Contains(reach, b) {
			return e.Fail(ctx, b, &operr.Error{
				What: fmt.Sprintf("nodeinit.break=%s: this %s plan has no %s stage, so nothing was run", b, bp.Action, b),
				Fix:  "break at one of the stages this plan runs: " + strings.Join(reach, ", "),
				Arg:  "nodeinit.break=" + reach[len(reach)-1],
			})
		}
	}
	return nil
}

// Run executes the plan's steps in order through run. A dry run emits a skipped
// event for each step and runs none.
func (e *Engine) Run(ctx context.Context, bp *plan.Blueprint, run StepRunner) error {
	if err := e.CheckBreaks(ctx, bp); err != nil {
		return err
	}
	for _, s := range bp.Steps {
		if bp.DryRun {
			e.sink().Emit(Event{Time: e.now(), Stage: s.Name, Kind: EventSkipped, Message: "dry run: " + s.Description})
			continue
		}
		if err := e.Step(ctx, s.Name, s.Description, func(r *Reporter) error {
			return run.RunStep(ctx, s, r)
		}); err != nil {
			return err
		}
	}
	return nil
}

// Refused emits err as the failed event of stage, without the failure policy:
// for a refusal the caller shows itself, such as a plan refused after the
// probe ("nothing was written").
func (e *Engine) Refused(stage string, err error) {
	e.sink().Emit(failedEvent(e.now(), stage, err))
}

// Fail reports err as the failure of stage: a failed event with the operator
// error's fix and kernel argument, then the failure policy.
func (e *Engine) Fail(ctx context.Context, stage string, err error) error {
	serr := &StageError{Stage: stage, Err: err}
	if e.Measure != nil {
		e.Measure.StepFailed(stage)
	}
	e.sink().Emit(failedEvent(e.now(), stage, err))
	if e.Failure != nil {
		if ferr := e.Failure.Fail(ctx, e.OnFail, serr); ferr != nil {
			return errors.Join(serr, ferr)
		}
	}
	return serr
}
