package stages

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/operr"
)

// EventKind says what happened to a stage.
type EventKind string

// Event kinds, in the order a stage emits them.
const (
	EventStart    EventKind = "start"
	EventProgress EventKind = "progress"
	EventInfo     EventKind = "info"
	EventDone     EventKind = "done"
	EventSkipped  EventKind = "skipped"
	EventFailed   EventKind = "failed"
	EventBreak    EventKind = "break"
	// EventPlan carries the plan computed from the probe's facts, in Plan,
	// before the first planned step runs.
	EventPlan EventKind = "plan"
)

// Event is the one record every sink receives: consoles, kmsg, the JSON log and the status URL.
type Event struct {
	Time     time.Time     `json:"time"`
	Stage    string        `json:"stage"`
	Kind     EventKind     `json:"kind"`
	Message  string        `json:"message,omitempty"`
	Done     int64         `json:"done,omitempty"`
	Total    int64         `json:"total,omitempty"`
	Rate     float64       `json:"rate,omitempty"` // bytes per second
	Duration time.Duration `json:"duration_ns,omitempty"`
	Error    string        `json:"error,omitempty"`
	// What and Why split a failure's Error as the operator error in its
	// chain says them (operr.Error.What, and Why or the cause); empty when
	// the chain holds none.
	What string          `json:"what,omitempty"`
	Why  string          `json:"why,omitempty"`
	Hint string          `json:"hint,omitempty"`       // how to fix it (operr.Error.Fix)
	Arg  string          `json:"kernel_arg,omitempty"` // the kernel argument to add (operr.Error.Arg)
	Plan json.RawMessage `json:"plan,omitempty"`       // the plan's JSON (EventPlan)
}

// Sink receives events. Sinks must not block for long; the engine calls them in order.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(Event)

// Emit calls f.
func (f SinkFunc) Emit(e Event) { f(e) }

// Fanout sends every event to each of its sinks.
type Fanout []Sink

// Emit sends e to every sink.
func (f Fanout) Emit(e Event) {
	for _, s := range f {
		s.Emit(e)
	}
}

// HumanSink writes one readable line per event, for consoles.
type HumanSink struct {
	mu sync.Mutex
	W  io.Writer
}

// Emit writes e as one line.
func (h *HumanSink) Emit(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	io.WriteString(h.W, FormatHuman(e)+"\n")
}

// FormatHuman renders an event as one console line.
func FormatHuman(e Event) string {
	prefix := fmt.Sprintf("nodeinit: [%s] %s", e.Stage, e.Kind)
	switch e.Kind {
	case EventProgress:
		line := fmt.Sprintf("%s %s/%s", prefix, mib(e.Done), mib(e.Total))
		if e.Total > 0 {
			line += fmt.Sprintf(" (%d%%)", e.Done*100/e.Total)
		}
		if e.Rate > 0 {
			line += fmt.Sprintf(" %.1f MB/s", e.Rate/1e6)
			if e.Total > e.Done {
				eta := time.Duration(float64(e.Total-e.Done) / e.Rate * float64(time.Second))
				line += fmt.Sprintf(" eta %s", eta.Round(time.Second))
			}
		}
		if e.Message != "" {
			line += " " + e.Message
		}
		return line
	case EventDone:
		return fmt.Sprintf("%s in %s %s", prefix, e.Duration.Round(time.Millisecond), e.Message)
	case EventFailed:
		line := fmt.Sprintf("%s: %s", prefix, e.Error)
		if e.Hint != "" {
			line += "; fix: " + e.Hint
		}
		if e.Arg != "" {
			line += "; add: " + e.Arg
		}
		return line
	}
	if e.Message != "" {
		return prefix + ": " + e.Message
	}
	return prefix
}

func mib(n int64) string { return fmt.Sprintf("%dMiB", n>>20) }

// JSONSink writes one JSON object per line.
type JSONSink struct {
	mu sync.Mutex
	W  io.Writer
}

// Emit writes e as a JSON line.
func (j *JSONSink) Emit(e Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	j.W.Write(append(b, '\n'))
}

// Transitions passes on only the events that change a stage's state: start,
// done, skipped, failed and break. It leaves out progress, remarks and the
// plan, so that a management engine reading the JSON lines of `nodeinit
// upgrade --status` gets one line per stage transition.
type Transitions struct {
	Next Sink
}

// Emit forwards e when it is a transition.
func (t Transitions) Emit(e Event) {
	switch e.Kind {
	case EventStart, EventDone, EventSkipped, EventFailed, EventBreak:
		t.Next.Emit(e)
	}
}

// Outcome is the event that ends a run: done with message when err is nil,
// otherwise failed with err's message, fix and kernel argument. stage names
// the whole run (StageUpgrade), not one of its stages.
func Outcome(t time.Time, stage string, err error, message string) Event {
	if err != nil {
		return failedEvent(t, stage, err)
	}
	return Event{Time: t, Stage: stage, Kind: EventDone, Message: message}
}

// failedEvent is the failed event of stage: err's message, and the fix and
// kernel argument of the operator error in its chain.
func failedEvent(t time.Time, stage string, err error) Event {
	d := operr.Describe(err)
	e := Event{Time: t, Stage: stage, Kind: EventFailed, Error: d.Message, Hint: d.Fix, Arg: d.Arg}
	if oe := operr.Of(err); oe != nil {
		e.What, e.Why = oe.What, oe.Why
		if e.Why == "" && oe.Err != nil {
			e.Why = oe.Err.Error()
		}
	}
	return e
}

// Collector keeps every event, for tests and for the run report.
type Collector struct {
	mu     sync.Mutex
	events []Event
}

// Emit records e.
func (c *Collector) Emit(e Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, e)
}

// Events returns a copy of what was recorded.
func (c *Collector) Events() []Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.events...)
}

// Throttle passes start/done/failed events through and at most one progress
// event per interval per stage, so serial consoles get one line a second.
type Throttle struct {
	Next     Sink
	Interval time.Duration
	mu       sync.Mutex
	last     map[string]time.Time
}

// Emit forwards e unless it is a progress event too soon after the last one.
func (t *Throttle) Emit(e Event) {
	if e.Kind == EventProgress && e.Done < e.Total {
		t.mu.Lock()
		if t.last == nil {
			t.last = map[string]time.Time{}
		}
		if prev, ok := t.last[e.Stage]; ok && e.Time.Sub(prev) < t.Interval {
			t.mu.Unlock()
			return
		}
		t.last[e.Stage] = e.Time
		t.mu.Unlock()
	}
	t.Next.Emit(e)
}
