package stages

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

var updateResult = flag.Bool("update-result", false, "rewrite testdata/status goldens (a change to a field is a new schema version)")

var rt0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

// fakeSource names a source for the record.
type fakeSource struct{ name string }

func (f fakeSource) Open(context.Context, string) (io.ReadCloser, int64, error) {
	return nil, 0, errors.New("no")
}
func (f fakeSource) Cleartext() bool { return false }
func (f fakeSource) String() string  { return f.name }
func (f fakeSource) Close() error    { return nil }

// installRun feeds rec the events and facts of an install that fails at
// write-slot when fail is set.
func installRun(rec runSink, fail bool) {
	at := func(s float64) time.Time { return rt0.Add(time.Duration(s * float64(time.Second))) }
	rec.SetMachine(ResultMachine{Hostname: "node7", MAC: "52:54:00:12:34:56", IP: "192.0.2.7",
		DMISerial: "VM-0007", DMIUUID: "4c4c4544-0037-3010-8052-b4c04f4e3332"})
	rec.Emit(Event{Time: at(0), Stage: plan.StageNetwork, Kind: EventStart})
	rec.Emit(Event{Time: at(1.5), Stage: plan.StageNetwork, Kind: EventDone, Duration: 1500 * time.Millisecond})
	rec.Emit(Event{Time: at(1.5), Stage: plan.StageProbe, Kind: EventStart})
	rec.Emit(Event{Time: at(2), Stage: plan.StageProbe, Kind: EventDone, Duration: 500 * time.Millisecond})
	f := &plan.Facts{Disks: []disk.Disk{{Name: "vda", Path: "/dev/vda", Serial: "DISK-7", WWN: "0x5000c500a1b2c3d4", Model: "QEMU HARDDISK", SizeBytes: 8 << 30}}}
	bp := &plan.Blueprint{Action: cmdline.ActionInstall, Target: &plan.Target{Name: "vda", Path: "/dev/vda", SizeBytes: 8 << 30}}
	b := &image.Bundle{Manifest: &image.Manifest{Name: "testos", Version: "1.2.3", Arch: "amd64",
		Files: []image.File{{Name: image.RootfsName, Size: 1 << 20, SHA256: strings.Repeat("ab", 32)}}},
		ManifestSHA256: strings.Repeat("cd", 32), Signed: true, KeyID: "RWQf6LRCGA9i53ml",
		Source: fakeSource{"http://mirror-b.example/bundle/"}}
	rec.SetRun(&cmdline.Params{Action: cmdline.ActionInstall}, f, bp, b)
	rec.Emit(Event{Time: at(2), Stage: plan.StagePartition, Kind: EventStart})
	rec.Emit(Event{Time: at(2.25), Stage: plan.StagePartition, Kind: EventDone, Duration: 250 * time.Millisecond})
	rec.Emit(Event{Time: at(2.25), Stage: plan.StageWriteSlot, Kind: EventStart})
	rec.Emit(Event{Time: at(3), Stage: plan.StageWriteSlot, Kind: EventProgress, Done: 1, Total: 2})
	if fail {
		err := &operr.Error{What: "write-slot on /dev/vda (serial DISK-7) failed", Fix: "check the disk", Err: errors.New("input/output error")}
		rec.Emit(failedEvent(at(4), plan.StageWriteSlot, err))
		return
	}
	rec.Emit(Event{Time: at(12.25), Stage: plan.StageWriteSlot, Kind: EventDone, Duration: 10 * time.Second})
	rec.Emit(Event{Time: at(12.25), Stage: plan.StageReboot, Kind: EventStart})
}

func TestResultSchemaGolden(t *testing.T) {
	for _, c := range []struct {
		name string
		fail bool
	}{{"result-v1-succeeded.json", false}, {"result-v1-failed.json", true}} {
		rec := NewResultRecorder("0b7e3c1a-5d2f-4e6a-9c8b-1f2e3d4c5b6a")
		installRun(rec, c.fail)
		got, err := json.MarshalIndent(rec.Result(rt0.Add(13*time.Second)), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, '\n')
		path := filepath.Join("..", "testdata", "status", c.name)
		if *updateResult {
			os.WriteFile(path, got, 0o644)
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs (a changed field is a new ResultSchema):\n%s", c.name, got)
		}
	}
}

func TestResultOutcomes(t *testing.T) {
	rec := NewResultRecorder("x")
	rec.Emit(Event{Stage: plan.StageProbe, Kind: EventStart})
	rec.Emit(failedEvent(rt0, plan.StageProbe, operr.New("the image is not signed", "no trusted key", "sign it", "nodeinit.insecure")))
	r := rec.Result(rt0)
	if r.Outcome != OutcomeRefused || r.Error.What != "the image is not signed" || r.Error.Why != "no trusted key" || r.Error.KernelArg != "nodeinit.insecure" {
		t.Errorf("refusal recorded as %+v %+v", r, r.Error)
	}
	rec = NewResultRecorder("x")
	installRun(rec, true)
	if r := rec.Result(rt0); r.Outcome != OutcomeFailed || r.Error.Why != "input/output error" || r.Error.Fix != "check the disk" {
		t.Errorf("failure recorded as %s %+v", r.Outcome, r.Error)
	}
	if r := NewResultRecorder("x").Result(rt0); r.Outcome != OutcomeSucceeded || r.Error != nil || r.Stages == nil || r.Machine.Disks == nil {
		t.Errorf("empty run: %+v", r)
	}
}

// resultServer records what reaches the status URL; the first fail
// answers are 503.
type resultServer struct {
	mu      sync.Mutex
	fail    int
	results []Result
	events  []Event
	keys    []string
	calls   int
}

func (s *resultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls <= s.fail {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var probe struct{ Schema string }
	json.Unmarshal(b, &probe)
	if probe.Schema != "" {
		var res Result
		json.Unmarshal(b, &res)
		s.results = append(s.results, res)
		s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
		return
	}
	var e Event
	json.Unmarshal(b, &e)
	s.events = append(s.events, e)
}

func TestResultPosterPostsOnceBeforeTheHandoff(t *testing.T) {
	srv := &resultServer{fail: 2}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	rec := NewResultRecorder("run-1")
	p := NewResultPoster(ts.URL, rec, false)
	p.Backoff = time.Millisecond
	p.Rand = func() float64 { return 0 }
	installRun(SinkRecorder{p, rec}, false)
	// The reboot's start posted the record: it is there before Emit returned.
	srv.mu.Lock()
	n := len(srv.results)
	srv.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d records before the hand-off, want 1", n)
	}
	p.Emit(Event{Stage: plan.StageReboot, Kind: EventFailed, Error: "reboot failed"}) // ends the run again: no second record
	if lost := p.Close(5 * time.Second); lost != 0 {
		t.Fatalf("lost %d", lost)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.results) != 1 || srv.results[0].Outcome != OutcomeSucceeded || srv.results[0].Machine.MAC != "52:54:00:12:34:56" {
		t.Fatalf("records %+v", srv.results)
	}
	if srv.keys[0] != "run-1" || len(srv.events) != 0 {
		t.Errorf("Idempotency-Key %q, %d events posted without status_stages", srv.keys[0], len(srv.events))
	}
}

// runSink is what installRun feeds: events, and the facts a run learns.
type runSink interface {
	Sink
	SetMachine(ResultMachine)
	SetRun(*cmdline.Params, *plan.Facts, *plan.Blueprint, *image.Bundle)
}

// SinkRecorder lets installRun drive a poster: facts go to the recorder,
// events through the poster.
type SinkRecorder struct {
	p   *StatusPoster
	rec *ResultRecorder
}

func (s SinkRecorder) Emit(e Event)               { s.p.Emit(e) }
func (s SinkRecorder) SetMachine(m ResultMachine) { s.rec.SetMachine(m) }
func (s SinkRecorder) SetRun(p *cmdline.Params, f *plan.Facts, bp *plan.Blueprint, b *image.Bundle) {
	s.rec.SetRun(p, f, bp, b)
}

func TestResultPosterWithStages(t *testing.T) {
	srv := &resultServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	rec := NewResultRecorder("run-2")
	p := NewResultPoster(ts.URL, rec, true)
	sink := Fanout{rec, p}
	sink.Emit(Event{Stage: plan.StagePartition, Kind: EventStart})
	sink.Emit(Event{Stage: plan.StagePartition, Kind: EventProgress, Done: 1, Total: 2})
	sink.Emit(Event{Stage: plan.StagePartition, Kind: EventDone})
	p.Close(5 * time.Second) // a dry run: no hand-off, Close posts the record
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.events) != 2 || len(srv.results) != 1 || len(srv.results[0].Stages) != 1 {
		t.Errorf("%d events (want start and done), %d records", len(srv.events), len(srv.results))
	}
}

func TestResultPosterIsBounded(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	url := strings.Replace(ts.URL, "http://", "http://user:secret@", 1) + "/r?token=hidden"
	defer ts.Close()
	p := NewResultPoster(url, NewResultRecorder("x"), false)
	p.Backoff, p.ResultRetries, p.ResultWait = time.Millisecond, 3, time.Second
	start := time.Now()
	err := p.PostResult()
	if err == nil || !strings.Contains(err.Error(), "gave up after 4 attempts") {
		t.Fatalf("PostResult = %v", err)
	}
	if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "hidden") {
		t.Errorf("the error shows a credential: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("took %s", d)
	}
	if p.PostResult() != err {
		t.Error("a second PostResult tried again")
	}
	if lost := p.Close(time.Second); lost != 1 {
		t.Errorf("lost = %d, want the record", lost)
	}
}
