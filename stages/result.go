package stages

import (
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/plan"
)

// ResultSchema names the version of the result record that
// nodeinit.status_url receives. Fields are only ever added within a
// version; a field removed, renamed or given another meaning makes a new
// version. The README's "Running a fleet" documents it; the golden test
// holds it still.
const ResultSchema = "nodeinit.result/v1"

// Outcomes of a run.
const (
	OutcomeSucceeded = "succeeded"
	// OutcomeFailed: a stage failed; the disk may be half-written (the
	// stages say how far it got).
	OutcomeFailed = "failed"
	// OutcomeRefused: the run stopped before any planned stage ran, so
	// nothing was written (a refused plan, an image that failed its check).
	OutcomeRefused = "refused"
)

// Result is the record of one run, posted once to nodeinit.status_url at
// its end. It is signed by nothing secret, but it carries the digest of
// the manifest that the image's signature (or pin) vouched for, and the
// rootfs digest that manifest lists.
type Result struct {
	Schema    string        `json:"schema"`
	InstallID string        `json:"install_id"` // one per run; also in every remote log message
	Time      time.Time     `json:"time"`       // when the record was made
	Machine   ResultMachine `json:"machine"`
	Action    string        `json:"action"`
	DryRun    bool          `json:"dry_run"`
	Image     *ResultImage  `json:"image"` // null when no image was opened
	Stages    []StageTiming `json:"stages"`
	Outcome   string        `json:"outcome"` // succeeded, failed or refused
	Error     *ResultError  `json:"error"`   // null unless the outcome is failed or refused
}

// ResultMachine is who the machine is. Empty strings are values not known
// (no DMI serial, a failure before the network came up).
type ResultMachine struct {
	Hostname  string       `json:"hostname"`
	MAC       string       `json:"mac"` // the boot interface
	IP        string       `json:"ip"`
	DMISerial string       `json:"dmi_serial"`
	DMIUUID   string       `json:"dmi_uuid"`
	Disks     []ResultDisk `json:"disks"` // the disks the plan writes, target first
}

// ResultDisk is one disk the plan writes.
type ResultDisk struct {
	Path      string `json:"path"`
	Serial    string `json:"serial"`
	WWN       string `json:"wwn"`
	Model     string `json:"model"`
	SizeBytes int64  `json:"size_bytes"`
}

// ResultImage is the image the run used.
type ResultImage struct {
	Source         string `json:"source"` // without credentials
	Name           string `json:"name"`
	Version        string `json:"version"`
	Arch           string `json:"arch"`
	ManifestSHA256 string `json:"manifest_sha256"`
	RootfsSHA256   string `json:"rootfs_sha256"`
	Signed         bool   `json:"signed"`
	KeyID          string `json:"key_id"`
	Pinned         bool   `json:"pinned"`
}

// StageTiming is one stage of the run.
type StageTiming struct {
	Name       string    `json:"name"`
	Outcome    string    `json:"outcome"` // done, skipped, failed, or running when the record was made during it
	Started    time.Time `json:"started"`
	DurationMS int64     `json:"duration_ms"`
}

// ResultError is the failure, as the operator error says it.
type ResultError struct {
	Stage     string `json:"stage"`
	What      string `json:"what"`
	Why       string `json:"why"`
	Fix       string `json:"fix"`
	KernelArg string `json:"kernel_arg"`
	Message   string `json:"message"` // the whole error text, wrapping included
}

// ResultRecorder builds a run's Result from its events and from what the
// caller learns along the way (SetMachine, SetRun). It is a Sink.
type ResultRecorder struct {
	mu  sync.Mutex
	res Result
	// ran is set once a stage other than the network and the probe started:
	// from then on a failure may have written something.
	ran bool
}

// NewResultRecorder starts the record of a run.
func NewResultRecorder(installID string) *ResultRecorder {
	return &ResultRecorder{res: Result{Schema: ResultSchema, InstallID: installID, Stages: []StageTiming{},
		Machine: ResultMachine{Disks: []ResultDisk{}}}}
}

// InstallID is the run's id, for the remote log's messages.
func (r *ResultRecorder) InstallID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.res.InstallID
}

// Emit records stage starts, ends and the first failure.
func (r *ResultRecorder) Emit(e Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Kind {
	case EventStart:
		if e.Stage != plan.StageNetwork && e.Stage != plan.StageProbe {
			r.ran = true
		}
		r.res.Stages = append(r.res.Stages, StageTiming{Name: e.Stage, Outcome: "running", Started: e.Time})
	case EventDone, EventSkipped, EventFailed:
		t := r.stage(e)
		t.Outcome = string(e.Kind)
		d := e.Duration
		if d == 0 && !t.Started.IsZero() && !e.Time.IsZero() {
			d = e.Time.Sub(t.Started)
		}
		t.DurationMS = d.Milliseconds()
		if e.Kind == EventFailed && r.res.Error == nil {
			what := e.What
			if what == "" {
				what = e.Error
			}
			r.res.Error = &ResultError{Stage: e.Stage, What: what, Why: e.Why, Fix: e.Hint, KernelArg: e.Arg, Message: e.Error}
		}
	}
}

// stage is the running timing of e's stage, appended when it never started.
func (r *ResultRecorder) stage(e Event) *StageTiming {
	for i := len(r.res.Stages) - 1; i >= 0; i-- {
		if t := &r.res.Stages[i]; t.Name == e.Stage && t.Outcome == "running" {
			return t
		}
	}
	r.res.Stages = append(r.res.Stages, StageTiming{Name: e.Stage, Started: e.Time})
	return &r.res.Stages[len(r.res.Stages)-1]
}

// SetMachine fills in the machine's identity; empty fields keep what was
// set before.
func (r *ResultRecorder) SetMachine(m ResultMachine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	c := &r.res.Machine
	set(&c.Hostname, m.Hostname)
	set(&c.MAC, m.MAC)
	set(&c.IP, m.IP)
	set(&c.DMISerial, m.DMISerial)
	set(&c.DMIUUID, m.DMIUUID)
	if len(m.Disks) > 0 {
		c.Disks = m.Disks
	}
}

// SetRun records the action, the disks the plan writes (with their serials
// from the facts) and the image; any argument may be nil.
func (r *ResultRecorder) SetRun(p *cmdline.Params, f *plan.Facts, bp *plan.Blueprint, b *image.Bundle) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p != nil {
		r.res.Action = string(p.Action)
		r.res.DryRun = p.Node.DryRun
	}
	if bp != nil {
		r.res.Action, r.res.DryRun = string(bp.Action), bp.DryRun
		if disks := planDisks(bp, f); len(disks) > 0 {
			r.res.Machine.Disks = disks
		}
	}
	if b != nil && b.Manifest != nil {
		m := b.Manifest
		img := &ResultImage{Name: m.Name, Version: m.Version, Arch: m.Arch, ManifestSHA256: b.ManifestSHA256,
			Signed: b.Signed, KeyID: b.KeyID, Pinned: b.Pinned}
		if b.Source != nil {
			img.Source = image.RedactRawURL(b.Source.String())
		}
		if rf, ok := m.File(image.RootfsName); ok {
			img.RootfsSHA256 = rf.SHA256
		}
		r.res.Image = img
	}
}

// planDisks are the disks bp writes, target first, each once.
func planDisks(bp *plan.Blueprint, f *plan.Facts) []ResultDisk {
	var out []ResultDisk
	seen := map[string]bool{}
	add := func(t plan.Target) {
		if t.Path == "" || seen[t.Path] {
			return
		}
		seen[t.Path] = true
		d := ResultDisk{Path: t.Path, Serial: t.Serial, WWN: t.WWN, Model: t.Model, SizeBytes: t.SizeBytes}
		if f != nil {
			if fd, ok := f.Disk(t.Name); ok {
				d.Serial, d.WWN, d.Model = fd.Serial, fd.WWN, fd.Model
			}
		}
		out = append(out, d)
	}
	if bp.Target != nil {
		add(*bp.Target)
	}
	for _, t := range bp.Disks {
		add(t)
	}
	return out
}

// Result is the record as it stands at now.
func (r *ResultRecorder) Result(now time.Time) Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.res
	res.Time = now.UTC()
	res.Stages = append([]StageTiming{}, r.res.Stages...)
	res.Machine.Disks = append([]ResultDisk{}, r.res.Machine.Disks...)
	switch {
	case res.Error == nil:
		res.Outcome = OutcomeSucceeded
	case !r.ran:
		res.Outcome = OutcomeRefused
	default:
		res.Outcome = OutcomeFailed
	}
	if res.Error != nil {
		e := *res.Error
		res.Error = &e
	}
	return res
}

// EndsRun reports whether e ends the run, so the result must leave now: the
// start of the hand-off (switch_root or reboot), or a failure, which the
// failure policy follows (it may reboot).
func EndsRun(e Event) bool {
	return e.Kind == EventFailed || e.Kind == EventStart && (e.Stage == plan.StageSwitchRoot || e.Stage == plan.StageReboot)
}
