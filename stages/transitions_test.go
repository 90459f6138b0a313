package stages

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/operr"
)

// TestTransitionsKeepsStageChanges: the --status stream gets every change of a
// stage's state and none of its progress, remarks or the plan.
func TestTransitionsKeepsStageChanges(t *testing.T) {
	var c Collector
	tr := Transitions{Next: &c}
	for _, k := range []EventKind{EventStart, EventProgress, EventInfo, EventPlan, EventBreak, EventDone, EventSkipped, EventFailed} {
		tr.Emit(Event{Stage: "write-slot", Kind: k})
	}
	var got []EventKind
	for _, e := range c.Events() {
		got = append(got, e.Kind)
	}
	if want := []EventKind{EventStart, EventBreak, EventDone, EventSkipped, EventFailed}; !slices.Equal(got, want) {
		t.Errorf("passed %v, want %v", got, want)
	}
}

// TestOutcomeCarriesTheFix: a failed outcome has the fields of an engine's
// failed event (error, hint, kernel argument); a success has the message.
func TestOutcomeCarriesTheFix(t *testing.T) {
	at := time.Unix(1700000000, 0)
	err := operr.Wrap(errors.New("disk gone"), "upgrade: write node-root-b", "check the disk", "nodeinit.force")
	got := Outcome(at, StageUpgrade, err, "ignored")
	want := Event{Time: at, Stage: StageUpgrade, Kind: EventFailed, Error: "upgrade: write node-root-b: disk gone",
		What: "upgrade: write node-root-b", Why: "disk gone", Hint: "check the disk", Arg: "nodeinit.force"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("failed outcome %+v, want %+v", got, want)
	}
	var c Collector
	(&Engine{Sink: &c, Now: func() time.Time { return at }}).Refused("probe", err)
	if e := c.Events()[0]; e.Error != want.Error || e.What != want.What || e.Why != want.Why || e.Hint != want.Hint || e.Arg != want.Arg {
		t.Errorf("the engine's failed event %+v differs from the outcome's %+v", e, want)
	}
	if got := Outcome(at, StageUpgrade, nil, "slot b holds node 1.1"); got.Kind != EventDone || got.Message != "slot b holds node 1.1" || got.Error != "" {
		t.Errorf("done outcome %+v", got)
	}
}
