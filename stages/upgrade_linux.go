package stages

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
	"golang.org/x/sys/unix"
)

// RunningUpgradeOptions describe an upgrade of the node this program runs on
// (`nodeinit upgrade`, the management engine's path).
type RunningUpgradeOptions struct {
	// Image is the bundle: a directory, an ISO file, label:NAME, an http(s)
	// URL (image.OpenSource), or "-" for an ISO on Stdin.
	Image string
	// Stdin is read when Image is "-": an ISO image, received into a
	// temporary file in TmpDir (default /var/tmp) by the receive-image stage,
	// which leaves nothing there however the upgrade ends.
	Stdin  io.Reader
	TmpDir string
	// SHA256 pins manifest.json (required for plain http unless Insecure).
	SHA256          string
	Insecure, Force bool
	// DryRun prints the plan and writes nothing.
	DryRun bool
	// Tries is the new entry's boot counter (default 3).
	Tries int
	// KeysDir holds the trusted public keys (*.pub).
	KeysDir string
	// ESPDir and ConfigDir are where the normal boot mounted NODE-ESP and
	// node-config (NodeESPDir, NodeConfigDir).
	ESPDir, ConfigDir string
	// RunDir is for the image medium's mount and staging (default /run/nodeinit/upgrade).
	RunDir string
	// Cmdline is this boot's kernel command line: nodeinit.slot names the running slot.
	Cmdline string
	// Out receives the plan and one line per event.
	Out io.Writer
	// Events, when set, receives every event as a JSON line (stages.JSONSink):
	// what a management engine relays, stage by stage.
	Events io.Writer
	// Sink, when set, also receives every event, unthrottled: `nodeinit
	// upgrade --status` passes Transitions over a JSONSink on stdout.
	Sink Sink
	// Root is where sysfs, /proc and /dev are read, and the devices the job
	// writes are found (default "/"); tests point it at a fake tree, so that
	// nothing they do reaches this machine's disks.
	Root string
	// Source tunes image sources (CAs, retries).
	Source image.SourceOptions
}

// Stages of a running upgrade besides the plan's (plan.Stage*).
const (
	// StageReceiveImage receives the ISO on standard input (Image "-").
	StageReceiveImage = "receive-image"
	// StageUpgrade names the outcome event (Outcome) that ends `nodeinit upgrade --status`.
	StageUpgrade = "upgrade"
)

// UpgradeRunning upgrades the running node: it finds the install from the mounted
// ESP, plans the same upgrade the kernel argument would (stages.Plan), and runs its
// stages against the existing mounts. The running slot is never written. The caller
// reboots afterwards.
//
// Its events are the engine's: receive-image (for "-") and probe, which opens
// the image and plans, then the plan's steps, each skipped in a dry run.
func UpgradeRunning(ctx context.Context, o RunningUpgradeOptions) (*plan.Blueprint, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.RunDir == "" {
		o.RunDir = "/run/nodeinit/upgrade"
	}
	if o.TmpDir == "" {
		o.TmpDir = "/var/tmp"
	}
	if o.Source.MountDir == "" {
		o.Source.MountDir = filepath.Join(o.RunDir, "media")
	}
	if o.Image == "" {
		return nil, refusal("pass --image DIR|FILE.iso|-|label:NAME|URL", "upgrade: no image given")
	}
	running := SlotFromCmdline(o.Cmdline)
	if running == "" {
		return nil, refusal("run it on a node booted by nodeinit (its entry sets nodeinit.slot=a|b)", "upgrade: this boot's command line has no nodeinit.slot")
	}
	if _, err := boot.ReadLedger(boot.DirFS(o.ESPDir)); err != nil {
		return nil, operr.Wrap(err, "upgrade: read the ledger in "+o.ESPDir, "check that NODE-ESP is mounted there, or pass --esp DIR", "")
	}
	if st, err := os.Stat(o.ConfigDir); err != nil || !st.IsDir() {
		return nil, refusal("pass --config DIR where node-config is mounted", "upgrade: config directory %s not found", o.ConfigDir)
	}
	if err := os.MkdirAll(o.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	p, err := cmdline.Parse("upgrade")
	if err != nil {
		return nil, err
	}
	p.Node.Image, p.Node.ImageSHA256 = o.Image, o.SHA256
	p.Node.Insecure, p.Node.Force, p.Node.DryRun, p.Node.Tries = o.Insecure, o.Force, o.DryRun, o.Tries

	sinks := Fanout{&Throttle{Next: &HumanSink{W: o.Out}, Interval: time.Second}}
	if o.Events != nil {
		sinks = append(sinks, &Throttle{Next: &JSONSink{W: o.Events}, Interval: time.Second})
	}
	if o.Sink != nil {
		sinks = append(sinks, o.Sink)
	}
	eng := &Engine{Sink: sinks}
	if o.Image == "-" {
		spool, err := receiveImage(ctx, eng, o)
		if err != nil {
			return nil, err
		}
		defer spool.Close()
		o.Source.Stdin = spool
	}

	var m *Machine
	var bp *plan.Blueprint
	err = eng.Step(ctx, plan.StageProbe, "gather facts: the install, the image; plan", func(r *Reporter) error {
		if m, err = Probe(ctx, p, GatherOptions{Root: o.Root, KeysDir: o.KeysDir, RunDir: o.RunDir, ESPDir: o.ESPDir,
			Dev: &linuxdev.Machine{}, Source: o.Source}); err != nil {
			return err
		}
		if in := m.Facts.Install; in != nil && !in.OVirt {
			if in.ActiveSlot != "" && in.ActiveSlot != running {
				r.Info("warning: the ledger's active slot is %s but slot %s is running; upgrading the other one, %s",
					in.ActiveSlot, running, plan.OtherSlot(running))
			}
			// The slot this node runs from is the one never to write, whatever the ledger says.
			in.ActiveSlot = running
		}
		if bp, err = plan.Plan(p, m.Facts); err != nil {
			return fmt.Errorf("nothing was written: %w", err)
		}
		r.Result("%s", planSummary(bp))
		return nil
	})
	if m != nil {
		defer m.Close()
	}
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(o.Out, "nodeinit: plan:")
	bp.WriteText(o.Out)
	eng.Announce(bp)
	if bp.DryRun {
		if err := eng.Run(ctx, bp, nil); err != nil { // no step runs: each is reported skipped
			return bp, err
		}
		fmt.Fprintln(o.Out, "nodeinit: dry run: nothing was written")
		return bp, nil
	}
	job := &Job{Params: p, Facts: m.Facts, Plan: bp, Bundle: m.Bundle, Dev: &linuxdev.Machine{},
		DevDir: filepath.Join(o.Root, "dev"), RunDir: o.RunDir, NewRoot: filepath.Join(o.RunDir, "unused-root"),
		Mounted: map[string]string{"NODE-ESP": o.ESPDir, "node-config": o.ConfigDir}}
	defer job.Close()
	if err := eng.Run(ctx, bp, job); err != nil {
		return bp, err
	}
	unix.Sync()
	return bp, nil
}

// receiveImage runs the receive-image stage: the ISO on o.Stdin into a
// temporary file in o.TmpDir, which the caller closes (and so removes).
func receiveImage(ctx context.Context, eng *Engine, o RunningUpgradeOptions) (*image.Spool, error) {
	var spool *image.Spool
	err := eng.Step(ctx, StageReceiveImage, "receive the ISO from standard input into "+o.TmpDir, func(r *Reporter) error {
		if o.Stdin == nil {
			return refusal("pipe the ISO into the command, or pass its path: --image FILE.iso", "upgrade: --image - but no standard input")
		}
		started := time.Now()
		var err error
		spool, err = image.SpoolISO(ctx, o.Stdin, image.SpoolOptions{Dir: o.TmpDir, Progress: func(done, total int64) {
			rate := 0.0
			if s := time.Since(started).Seconds(); s > 0 {
				rate = float64(done) / s
			}
			r.Progress(done, total, rate)
		}})
		if err != nil {
			return err
		}
		r.Result("%d MiB", spool.Size()>>20)
		return nil
	})
	return spool, err
}

func refusal(fix, format string, args ...any) error {
	return &operr.Error{What: fmt.Sprintf(format, args...), Fix: fix}
}
