package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/netboot"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/stages"
	"golang.org/x/sys/unix"
)

// Paths inside the initramfs.
const (
	runDir     = "/run/nodeinit"
	newRoot    = "/newroot"
	keysDir    = "/etc/nodeinit/keys"
	nodeInit   = "/sbin/init"
	eventsFile = runDir + "/events.jsonl"
)

// defaultImages are where the image is looked for when nodeinit.image is not given:
// a bundle baked into the initramfs, then a medium labelled NODEINIT.
var defaultImages = []string{"initramfs:/bundle", "label:NODEINIT"}

// runEngine parses the command line, probes the machine, plans and runs the stages,
// then hands off: switch_root into the node, reboot, or the rescue shell.
func runEngine(ctx context.Context, env *early.Env) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	p, err := cmdline.Parse(env.Cmdline)
	if err != nil {
		return err
	}
	// The network comes up before probing, which fetches an HTTP image, and before the
	// status URL is used: both may hold ${mac}-style templates that need the boot NIC.
	netStarted := time.Now()
	link, warnings, err := netboot.Prepare(ctx, p, netboot.PrepareOptions{Options: netboot.Options{System: netboot.HostSystem()}})
	if err != nil {
		return err
	}
	sinks, closeSinks := eventSinks(env, p)
	defer closeSinks()
	for _, w := range warnings {
		sinks.Emit(stages.Event{Time: time.Now(), Stage: "network", Kind: stages.EventInfo, Message: w})
	}
	if link != nil {
		sinks.Emit(stages.Event{Time: time.Now(), Stage: "network", Kind: stages.EventDone, Duration: time.Since(netStarted),
			Message: link.String()})
	}

	started := time.Now()
	sinks.Emit(stages.Event{Time: started, Stage: "probe", Kind: stages.EventStart})
	m, err := stages.Probe(ctx, p, stages.GatherOptions{Root: "/", KeysDir: keysDir, DefaultImages: defaultImages,
		RunDir: runDir, Mount: stages.SysMounter{}})
	if err != nil {
		return err
	}
	defer m.Close()
	sinks.Emit(stages.Event{Time: time.Now(), Stage: "probe", Kind: stages.EventDone, Duration: time.Since(started),
		Message: fmt.Sprintf("%d disks, efi=%v, install=%v", len(m.Facts.Disks), m.Facts.EFI, m.Facts.Install != nil)})
	writeFacts(m.Facts)

	plan, err := stages.Plan(p, m.Facts)
	if err != nil {
		return fmt.Errorf("nothing was written: %w", err)
	}
	fmt.Fprintln(env.Out, "nodeinit: plan:")
	plan.WriteText(env.Out)
	if plan.Handoff == stages.HandoffShell {
		return env.RescueShell(factsText(m.Facts))
	}

	job := &stages.Job{Params: p, Facts: m.Facts, Plan: plan, Bundle: m.Bundle, Mount: stages.SysMounter{},
		Bind: nodeconfig.BindMounter{}, DevDir: "/dev", RunDir: runDir, NewRoot: newRoot, Log: eventsFile}
	if m.Facts.EFI {
		job.EFIVars = boot.OpenEFIVars
	}
	err = stages.Run(ctx, plan, stages.RunOptions{
		Sink: sinks, Stages: job.Stages(), BreakAt: p.Node.Break, OnFail: p.Node.OnFail,
		Break: breakShell{env: env, facts: m.Facts},
	})
	if err != nil {
		job.Close()
		// Keep the log where it survives the reboot: the ESP, when there is one.
		if dir, lerr := job.MountLogDir(); lerr == nil {
			env.LogDir = dir
		}
		return err
	}
	if plan.DryRun {
		job.Close()
		fmt.Fprintln(env.Out, "nodeinit: dry run finished; nothing was written")
		return nil
	}
	switch plan.Handoff {
	case stages.HandoffSwitchRoot:
		fmt.Fprintln(env.Out, timingReport(env))
		return env.SwitchRoot(newRoot, nodeInit)
	case stages.HandoffReboot:
		if err := job.Close(); err != nil {
			fmt.Fprintf(env.Out, "nodeinit: cleanup: %v\n", err)
		}
		fmt.Fprintf(env.Out, "nodeinit: %s complete\n", plan.Action)
		fmt.Fprintln(env.Out, timingReport(env))
		if d := p.RebootDelay; d > 0 {
			fmt.Fprintf(env.Out, "nodeinit: rebooting in %ds (reboot_delay)\n", d)
			time.Sleep(time.Duration(d) * time.Second)
		}
		unix.Sync()
		return env.Power.Reboot()
	}
	return nil
}

// eventSinks fans events out to every console (one line a second for progress), the
// JSON-lines log, and nodeinit.status_url.
func eventSinks(env *early.Env, p *cmdline.Params) (stages.Sink, func()) {
	human := &stages.Throttle{Next: &stages.HumanSink{W: env.Out}, Interval: time.Second}
	sinks := stages.Fanout{human, timing}
	var closers []func()
	if f, err := os.Create(eventsFile); err == nil {
		sinks = append(sinks, &stages.JSONSink{W: f})
		closers = append(closers, func() { f.Close() })
	}
	if p.Node.StatusURL != "" {
		sp := stages.NewStatusPoster(p.Node.StatusURL)
		sinks = append(sinks, sp)
		closers = append(closers, func() { sp.Close(10 * time.Second) })
	}
	return sinks, func() {
		for _, c := range closers {
			c()
		}
	}
}

// timing collects stage durations for the report printed before the hand-off.
var timing = &stages.Collector{}

// timingReport says how long each stage took, and the time from kernel start to now.
func timingReport(env *early.Env) string {
	var b strings.Builder
	fmt.Fprintf(&b, "nodeinit: timing: kernel→engine %.2fs", env.Started.Seconds())
	for _, e := range timing.Events() {
		if e.Kind == stages.EventDone {
			fmt.Fprintf(&b, ", %s %.2fs", e.Stage, e.Duration.Seconds())
		}
	}
	fmt.Fprintf(&b, ", kernel→hand-off %.2fs", early.Uptime().Seconds())
	return b.String()
}

// breakShell opens the rescue shell for nodeinit.break.
type breakShell struct {
	env   *early.Env
	facts *stages.Facts
}

// Break opens the rescue shell before stage.
func (b breakShell) Break(ctx context.Context, stage string) error {
	fmt.Fprintf(b.env.Out, "nodeinit: BREAK before stage %s: nothing of it has run; exit the shell to continue\n", stage)
	return b.env.RescueShell(factsText(b.facts))
}

func writeFacts(f *stages.Facts) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err == nil {
		os.WriteFile(filepath.Join(runDir, "facts.json"), b, 0o644)
	}
}

// factsText is the summary shown in the rescue shell.
func factsText(f *stages.Facts) string {
	var b strings.Builder
	b.WriteString("facts (full JSON in " + runDir + "/facts.json):\n")
	for _, d := range f.Disks {
		fmt.Fprintf(&b, "  %-10s %-7s %6d MiB  %s  serial=%s content=%s\n", d.Name, d.Transport, d.SizeBytes>>20, d.Model, d.Serial, d.Content)
	}
	for _, n := range f.NICs {
		fmt.Fprintf(&b, "  %-10s %s carrier=%v\n", n.Name, n.MAC, n.Carrier)
	}
	if f.Install != nil {
		fmt.Fprintf(&b, "  install on %s, active slot %s\n", f.Install.Disk, f.Install.ActiveSlot)
	}
	return b.String()
}
