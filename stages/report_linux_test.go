package stages

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/plan"
)

// TestReportSavesTheQueuedEventLines: the report stage copies the event log to
// the ESP only after FlushLog, so lines a Queue still holds (its writer held
// up, as by a slow serial port beside the file) are in the saved copy.
func TestReportSavesTheQueuedEventLines(t *testing.T) {
	esp := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "events.jsonl")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gate := make(chan struct{})
	release := sync.OnceFunc(func() { close(gate) })
	q := NewQueue(Fanout{SinkFunc(func(Event) { <-gate }), &JSONSink{W: f}})
	defer q.Close()
	defer release()
	q.Emit(Event{Stage: plan.StageBootOrder, Kind: EventDone})
	q.Emit(Event{Stage: plan.StageReport, Kind: EventStart})

	facts := &plan.Facts{Disks: []disk.Disk{{Name: "vda", Path: "/dev/vda", Partitions: []disk.Partition{
		{Number: 1, Name: "vda1", PartLabel: disk.LabelESP}}}}}
	p, _ := cmdline.Parse("install storage_init=/dev/vda")
	j := &Job{Params: p, Facts: facts, Plan: &plan.Blueprint{Action: cmdline.ActionInstall}, Dev: noMounts{t: t},
		Now: func() time.Time { return time.Unix(1700000000, 0) }, Mounted: map[string]string{disk.LabelESP: esp},
		Log: logPath, FlushLog: func() { release(); q.Flush() }}
	r := &Reporter{stage: plan.StageReport, now: time.Now, sink: SinkFunc(func(Event) {})}
	if err := j.report(context.Background(), plan.Report{Disk: "vda"}, r); err != nil {
		t.Fatalf("report: %v", err)
	}
	saved, err := os.ReadFile(filepath.Join(esp, "node/log/20231114T221320Z-install.jsonl"))
	if err != nil {
		t.Fatalf("the saved log: %v", err)
	}
	for _, want := range []string{`"stage":"boot-order","kind":"done"`, `"stage":"report","kind":"start"`} {
		if !strings.Contains(string(saved), want) {
			t.Errorf("the saved log lacks %s:\n%s", want, saved)
		}
	}
}
