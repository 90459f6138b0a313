package vm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/stages"
)

// Events returns every event the guest has streamed so far on its second serial
// port (Config.Events), oldest first. Lines that are not events (a boot's
// noise, a line cut by the power going) are skipped.
func (v *VM) Events() []stages.Event {
	if v.events == "" {
		v.t.Fatal("vm: Events needs Config.Events and nodeinit.events=ttyS1")
	}
	b, err := os.ReadFile(v.events)
	if err != nil && !os.IsNotExist(err) {
		v.t.Fatalf("vm: read events: %v", err)
	}
	var out []stages.Event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		var e stages.Event
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil || e.Stage == "" {
			continue
		}
		out = append(out, e)
	}
	return out
}

// ExpectEvent waits until an event for which match is true arrives after the one
// the previous ExpectEvent returned, and returns it. On timeout, or when QEMU
// exits first, it fails the test, naming what it waited for and listing the
// events seen.
func (v *VM) ExpectEvent(what string, match func(stages.Event) bool, timeout time.Duration) stages.Event {
	v.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		evs := v.Events()
		for i := v.seen; i < len(evs); i++ {
			if match(evs[i]) {
				v.seen = i + 1
				return evs[i]
			}
		}
		select {
		case <-v.exited:
			if evs := v.Events(); len(evs) > v.seen && !anyMatch(evs[v.seen:], match) {
				v.t.Fatalf("waiting for event %s: QEMU exited; events:\n%s\nlast console lines:\n%s", what, eventList(evs), v.console.tail(30))
			}
			continue
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("waiting for event %s: timed out after %s; events:\n%s\nlast console lines:\n%s", what, timeout, eventList(v.Events()), v.console.tail(30))
		}
	}
}

// StageDone matches the done event of stage.
func StageDone(stage string) func(stages.Event) bool {
	return func(e stages.Event) bool { return e.Stage == stage && e.Kind == stages.EventDone }
}

// StageIs matches an event of stage and kind.
func StageIs(stage string, kind stages.EventKind) func(stages.Event) bool {
	return func(e stages.Event) bool { return e.Stage == stage && e.Kind == kind }
}

func anyMatch(evs []stages.Event, match func(stages.Event) bool) bool {
	for _, e := range evs {
		if match(e) {
			return true
		}
	}
	return false
}

func eventList(evs []stages.Event) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString("  " + stages.FormatHuman(e) + "\n")
	}
	return b.String()
}

// InfoHas matches an info event of stage ("" for any) whose message contains text.
func InfoHas(stage, text string) func(stages.Event) bool {
	return func(e stages.Event) bool {
		return (stage == "" || e.Stage == stage) && e.Kind == stages.EventInfo && strings.Contains(e.Message, text)
	}
}

// Finished matches the start of the hand-off that follows a finished action:
// the reboot (install, reinstall, upgrade, uninstall) or the switch_root.
func Finished(e stages.Event) bool {
	return (e.Stage == "reboot" || e.Stage == "switch-root") && e.Kind == stages.EventStart
}

// Plan is the part of a plan event (stages.EventPlan) the tests judge.
type Plan struct {
	Action string `json:"action"`
	Target *struct {
		Path string `json:"path"`
	} `json:"target"`
	Slot  string `json:"slot"`
	Image *struct {
		Source  string `json:"source"`
		Name    string `json:"name"`
		Version string `json:"version"`
		Signed  bool   `json:"signed"`
		Pinned  bool   `json:"pinned"`
	} `json:"image"`
	Destroys []string   `json:"destroys"`
	Keeps    []string   `json:"keeps"`
	Warnings []string   `json:"warnings"`
	Steps    []PlanStep `json:"steps"`
}

// PlanStep is one step of a plan event.
type PlanStep struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// ExpectPlan waits for the plan event and decodes it.
func (v *VM) ExpectPlan(timeout time.Duration) Plan {
	v.t.Helper()
	e := v.ExpectEvent("the plan", func(e stages.Event) bool { return e.Kind == stages.EventPlan }, timeout)
	var p Plan
	if err := json.Unmarshal(e.Plan, &p); err != nil {
		v.t.Fatalf("vm: the plan event does not decode: %v\n%s", err, e.Plan)
	}
	return p
}

// TargetPath is the plan's target disk, or "".
func (p Plan) TargetPath() string {
	if p.Target == nil {
		return ""
	}
	return p.Target.Path
}
