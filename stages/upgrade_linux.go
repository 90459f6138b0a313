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
	// Image is the bundle: a directory, label:NAME or an http(s) URL.
	Image string
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
	// Source tunes image sources (CAs, retries).
	Source image.SourceOptions
}

// UpgradeRunning upgrades the running node: it finds the install from the mounted
// ESP, plans the same upgrade the kernel argument would (stages.Plan), and runs its
// stages against the existing mounts. The running slot is never written. The caller
// reboots afterwards.
func UpgradeRunning(ctx context.Context, o RunningUpgradeOptions) (*plan.Blueprint, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.RunDir == "" {
		o.RunDir = "/run/nodeinit/upgrade"
	}
	if o.Source.MountDir == "" {
		o.Source.MountDir = filepath.Join(o.RunDir, "media")
	}
	if o.Image == "" {
		return nil, refusal("pass --image DIR|label:NAME|URL", "upgrade: no image given")
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

	m, err := Probe(ctx, p, GatherOptions{Root: "/", KeysDir: o.KeysDir, RunDir: o.RunDir, ESPDir: o.ESPDir,
		Dev: &linuxdev.Machine{}, Source: o.Source})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if in := m.Facts.Install; in != nil && !in.OVirt {
		if in.ActiveSlot != "" && in.ActiveSlot != running {
			fmt.Fprintf(o.Out, "nodeinit: warning: the ledger's active slot is %s but slot %s is running; upgrading the other one, %s\n",
				in.ActiveSlot, running, plan.OtherSlot(running))
		}
		// The slot this node runs from is the one never to write, whatever the ledger says.
		in.ActiveSlot = running
	}
	bp, err := plan.Plan(p, m.Facts)
	if err != nil {
		return nil, fmt.Errorf("nothing was written: %w", err)
	}
	fmt.Fprintln(o.Out, "nodeinit: plan:")
	bp.WriteText(o.Out)
	if bp.DryRun {
		fmt.Fprintln(o.Out, "nodeinit: dry run: nothing was written")
		return bp, nil
	}
	job := &Job{Params: p, Facts: m.Facts, Plan: bp, Bundle: m.Bundle, Dev: &linuxdev.Machine{},
		DevDir: "/dev", RunDir: o.RunDir, NewRoot: filepath.Join(o.RunDir, "unused-root"),
		Mounted: map[string]string{"NODE-ESP": o.ESPDir, "node-config": o.ConfigDir}}
	defer job.Close()
	var sink Sink = &Throttle{Next: &HumanSink{W: o.Out}, Interval: time.Second}
	if o.Events != nil {
		sink = Fanout{sink, &Throttle{Next: &JSONSink{W: o.Events}, Interval: time.Second}}
	}
	eng := &Engine{Sink: sink}
	eng.Announce(bp)
	if err := eng.Run(ctx, bp, job); err != nil {
		return bp, err
	}
	unix.Sync()
	return bp, nil
}

func refusal(fix, format string, args ...any) error {
	return &operr.Error{What: fmt.Sprintf(format, args...), Fix: fix}
}
