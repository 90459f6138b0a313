package stages

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

// ApplyOptions describe one run of the engine on a machine that is up already:
// `nodeinit apply` on a rescue system, a live ISO or a test's loop device, and
// the blackbox and crash-point tests. It is /init's run without the
// initramfs-only steps (early mounts, network bring-up, switch_root, reboot).
type ApplyOptions struct {
	// Cmdline is the kernel command line to act on.
	Cmdline string
	// Dev is the machine: linuxdev, or the recorder in tests.
	Dev device.Machine
	// Root is where sysfs and /proc are read ("/").
	Root string
	// OnlyDisks limits discovery to these kernel names (tests).
	OnlyDisks []string
	// KeysDir holds the trusted image keys; DefaultImages are tried when the
	// command line names no image.
	KeysDir       string
	DefaultImages []string
	// RunDir is for temporary mounts and staging.
	RunDir string
	// Sink receives the events; Out the plan text.
	Sink Sink
	Out  io.Writer
	// BreakAt and Break are nodeinit.break's points and shell, when wanted.
	Break BreakHandler
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Fetch calls local_boot_trigger; nil uses HTTP.
	Fetch func(ctx context.Context, url string) error
	// AdjustFacts, when set, changes the probed facts before planning: a test
	// whose recorder serves EFI variables says the machine has EFI.
	AdjustFacts func(*plan.Facts)
	// NewRoot, when set, lets a plan that ends in switch_root (stateless, a
	// plain boot) run its steps and assemble the node's root there; the
	// hand-off itself is left out, and the caller unmounts NewRoot and RunDir.
	NewRoot string
}

// Apply parses the command line, probes, plans, and runs the plan's steps with
// the same guards and events as /init. It refuses plans that end in
// switch_root (a plain boot, stateless): those need the initramfs. The caller
// reboots when it wants the result booted.
func Apply(ctx context.Context, o ApplyOptions) (*plan.Blueprint, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := os.MkdirAll(o.RunDir, 0o700); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	p, err := cmdline.Parse(o.Cmdline)
	if err != nil {
		return nil, err
	}
	eng := &Engine{Sink: o.Sink, BreakAt: p.Node.Break, Break: o.Break, Now: o.Now}
	var m *Machine
	if err := eng.Step(ctx, plan.StageProbe, "gather facts: disks, install, image", func(r *Reporter) error {
		m, err = Probe(ctx, p, GatherOptions{Root: o.Root, OnlyDisks: o.OnlyDisks, KeysDir: o.KeysDir,
			DefaultImages: o.DefaultImages, RunDir: o.RunDir, Dev: o.Dev})
		if err != nil {
			return err
		}
		r.Result("%d disks, install=%v", len(m.Facts.Disks), m.Facts.Install != nil)
		return nil
	}); err != nil {
		return nil, err
	}
	defer m.Close()
	p = m.Params(p)
	if o.AdjustFacts != nil {
		o.AdjustFacts(m.Facts)
	}
	bp, err := plan.Plan(p, m.Facts)
	if err != nil {
		err = fmt.Errorf("nothing was written: %w", err)
		eng.Refused(plan.StageProbe, err)
		return nil, err
	}
	fmt.Fprintln(o.Out, "nodeinit: plan:")
	bp.WriteText(o.Out)
	eng.Announce(bp)
	if bp.Handoff != plan.HandoffReboot && (o.NewRoot == "" || bp.Handoff != plan.HandoffSwitchRoot) {
		return bp, &operr.Error{What: fmt.Sprintf("apply: a %s plan ends in %s, which only the initramfs can do; nothing was written", bp.Action, bp.Handoff),
			Fix: "apply runs install, reinstall, upgrade and uninstall; boot the node's initramfs for the rest"}
	}
	job := &Job{Params: p, Facts: m.Facts, Plan: bp, Bundle: m.Bundle, Dev: o.Dev, DevDir: "/dev",
		RunDir: o.RunDir, NewRoot: o.NewRoot, Now: o.Now, Fetch: o.Fetch}
	err = eng.Run(ctx, bp, job)
	if cerr := job.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("apply: cleanup: %w", cerr)
	}
	return bp, err
}
