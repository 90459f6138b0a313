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
