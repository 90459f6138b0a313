package stages

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StageFunc runs one step. It reports progress through r and returns an error
// that, where the operator can act, carries a hint (see Hinter).
type StageFunc func(ctx context.Context, s Step, r *Reporter) error

// Hinter is an error that tells the operator how to fix it.
type Hinter interface {
	Hint() string
}

// ErrNotImplemented is returned for a planned stage this build cannot run.
var ErrNotImplemented = errors.New("not implemented in this build")

// FailureHandler applies the nodeinit.onfail policy (shell, reboot, poweroff, halt)
// after the failure screen. The /init implements it; tests record the call.
type FailureHandler interface {
	Fail(ctx context.Context, policy string, err error) error
}

// BreakHandler opens the rescue shell before the named stage and returns when it exits.
type BreakHandler interface {
	Break(ctx context.Context, stage string) error
}

// RunOptions configures Run.
type RunOptions struct {
	Sink   Sink
	Stages map[string]StageFunc
	// BreakAt lists stage names before which the rescue shell opens (nodeinit.break).
	BreakAt []string
	Break   BreakHandler
	// OnFail is the policy name from nodeinit.onfail, handed to Failure.
	OnFail  string
	Failure FailureHandler
	// Now is the clock; time.Now when nil.
	Now func() time.Time
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

// Hint returns the hint of the wrapped error, if it has one.
func (e *StageError) Hint() string { return hintOf(e.Err) }

func hintOf(err error) string {
	var h Hinter
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

// Reporter lets a stage emit progress and remarks; the engine fills in the stage name and time.
type Reporter struct {
	stage string
	sink  Sink
	now   func() time.Time
}

// Progress reports bytes done of total at rate bytes per second.
func (r *Reporter) Progress(done, total int64, rate float64) {
	r.sink.Emit(Event{Time: r.now(), Stage: r.stage, Kind: EventProgress, Done: done, Total: total, Rate: rate})
}

// Info reports a remark, such as which wipe method was used.
func (r *Reporter) Info(format string, args ...any) {
	r.sink.Emit(Event{Time: r.now(), Stage: r.stage, Kind: EventInfo, Message: fmt.Sprintf(format, args...)})
}

// Run executes the plan's steps in order. It emits start/done/failed events with
// durations, opens the rescue shell before each stage named in BreakAt, skips every
// stage on a dry run, and on failure hands the error to the FailureHandler.
func Run(ctx context.Context, plan *Blueprint, o RunOptions) error {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	sink := o.Sink
	if sink == nil {
		sink = Fanout(nil)
	}
	breakAt := map[string]bool{}
	planned := map[string]bool{}
	var names []string
	for _, s := range plan.Steps {
		planned[s.Name] = true
		names = append(names, s.Name)
	}
	for _, b := range o.BreakAt {
		if !planned[b] {
			// The operator meant to stop somewhere; running past it would surprise them.
			return fail(ctx, o, sink, now, b, &RefusalError{
				Reason: fmt.Sprintf("nodeinit.break=%s: this plan has no %s stage, so nothing was run", b, b),
				Fix:    "break at one of the planned stages: " + strings.Join(names, ", "),
			})
		}
		breakAt[b] = true
	}
	for _, s := range plan.Steps {
		if breakAt[s.Name] {
			sink.Emit(Event{Time: now(), Stage: s.Name, Kind: EventBreak, Message: "nodeinit.break: rescue shell before " + s.Name + "; nothing of this stage has run. Exit the shell to continue."})
			if o.Break != nil {
				if err := o.Break.Break(ctx, s.Name); err != nil {
					return fail(ctx, o, sink, now, s.Name, fmt.Errorf("break shell: %w", err))
				}
			}
		}
		if plan.DryRun {
			sink.Emit(Event{Time: now(), Stage: s.Name, Kind: EventSkipped, Message: "dry run: " + s.Description})
			continue
		}
		start := now()
		sink.Emit(Event{Time: start, Stage: s.Name, Kind: EventStart, Message: s.Description})
		fn := o.Stages[s.Name]
		var err error
		if fn == nil {
			err = fmt.Errorf("%s: %w", s.Name, ErrNotImplemented)
		} else {
			err = fn(ctx, s, &Reporter{stage: s.Name, sink: sink, now: now})
		}
		if err != nil {
			return fail(ctx, o, sink, now, s.Name, err)
		}
		end := now()
		sink.Emit(Event{Time: end, Stage: s.Name, Kind: EventDone, Duration: end.Sub(start)})
	}
	return nil
}

func fail(ctx context.Context, o RunOptions, sink Sink, now func() time.Time, stage string, err error) error {
	serr := &StageError{Stage: stage, Err: err}
	sink.Emit(Event{Time: now(), Stage: stage, Kind: EventFailed, Error: err.Error(), Hint: hintOf(err)})
	if o.Failure != nil {
		if ferr := o.Failure.Fail(ctx, o.OnFail, serr); ferr != nil {
			return errors.Join(serr, ferr)
		}
	}
	return serr
}
