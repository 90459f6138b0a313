package initproc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/kmod"
	"github.com/nodeinit/nodeinit/netboot"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/remotelog"
	"github.com/nodeinit/nodeinit/stages"
	"github.com/nodeinit/nodeinit/tui"
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

// NodeCLI is where the booted node finds the nodeinit CLI of the initramfs that booted it:
// /run survives switch_root, so any image gets `status`, `bless`, `persist` and `upgrade`
// from the same binary as its /init.
const NodeCLI = runDir + "/bin/nodeinit"

// leaveCLI copies this binary to NodeCLI.
func leaveCLI() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(NodeCLI), 0o755); err != nil {
		return err
	}
	tmp := NodeCLI + ".new"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, NodeCLI)
}

// defaultImages are where the image is looked for when nodeinit.image is not given:
// a bundle baked into the initramfs, then a medium labelled NODEINIT.
var defaultImages = []string{"initramfs:/bundle", "label:NODEINIT"}

// runEngine parses the command line, then runs the engine's steps: network, probe,
// the plan's steps, and the hand-off (switch_root into the node, or reboot). Every
// one of them is a step of stages.Engine, so each has its events, its timing and its
// nodeinit.break point.
func runEngine(ctx context.Context, env *early.Env) error {
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return err
	}
	p, err := cmdline.Parse(env.Cmdline)
	if err != nil {
		return err
	}
	// Anything but a plain boot gets the collector back before its probe, which
	// for an install already reads the image's manifest and chunk lists.
	bootGC(p.Action)
	if p.Node.Slot != "" {
		// A node's own loader entry: the boot mounts the slot, so the kernel links
		// those drivers on the other CPU while this one probes.
		kmod.Preload(stages.BootFilesystems...)
	}
	dev := &linuxdev.Machine{}
	status := &lateSink{}
	// The result record nodeinit.status_url gets, and syslog=/netconsole=
	// (a nil Logger, when neither is given, drops everything). The recorder
	// comes before the poster, so the record holds the event that ends the run.
	result := stages.NewResultRecorder(uuid.NewString())
	rlog, rerr := remotelog.New(p, remotelog.Identity{Hostname: netboot.Hostname(p), InstallID: result.InstallID()})
	if rerr != nil {
		fmt.Fprintf(env.Out, "nodeinit: remote log: %v; the install goes on without it\n", rerr)
	}
	defer rlog.Close(5 * time.Second)
	sinks, jsonLines, closeSinks := eventSinks(env, stages.Fanout{result, status, rlog}, p.Node.Events)
	defer closeSinks()
	var facts *plan.Facts
	eng := &stages.Engine{Sink: sinks, BreakAt: p.Node.Break, Break: breakShell{env: env, facts: &facts, flush: jsonLines.Flush}}
	meas, err := startMeasuring(p, sinks)
	if err != nil {
		return eng.Fail(ctx, plan.StageNetwork, err)
	}
	if meas != nil {
		eng.Measure = meas // each step is measured before it runs
	}

	userAgent := "nodeinit (install " + result.InstallID() + ")" // with the MAC once the network step knows it
	// The network comes up before probing, which fetches an HTTP image, and before the
	// status URL is used: both may hold ${mac}-style templates that need the boot NIC.
	if err := eng.Step(ctx, plan.StageNetwork, "bring up the boot NIC when the command line needs it", func(r *stages.Reporter) error {
		link, warnings, err := netboot.Prepare(ctx, p, netboot.PrepareOptions{Options: netboot.Options{System: netboot.HostSystem()}})
		for _, w := range warnings {
			r.Info("%s", w)
		}
		if link != nil {
			r.Result("%s", link.String())
		}
		id := netboot.Identify(p, link, "/")
		userAgent = fmt.Sprintf("nodeinit (mac %s; install %s)", id.MAC, result.InstallID())
		result.SetMachine(stages.ResultMachine{Hostname: id.Hostname, MAC: id.MAC, IP: id.IP, DMISerial: id.Serial, DMIUUID: id.UUID})
		rlog.SetIdentity(remotelog.Identity{Hostname: id.Hostname, MAC: id.MAC, IP: id.IP, InstallID: result.InstallID()})
		rlog.NetworkUp()
		return err
	}); err != nil {
		return err
	}
	if p.Node.StatusURL != "" {
		sp := stages.NewResultPoster(p.Node.StatusURL, result, p.Node.StatusStages)
		status.set(sp)
		defer sp.Close(10 * time.Second)
	}

	var m *stages.Machine
	if err := eng.Step(ctx, plan.StageProbe, "gather facts: disks, boot medium, install, NICs, EFI, TPM, image", func(r *stages.Reporter) error {
		var err error
		m, err = probeDisks(ctx, p, sysBlock, func(msg string) { r.Info("%s", msg) }, func() (*stages.Machine, error) {
			return stages.Probe(ctx, p, stages.GatherOptions{Root: "/", KeysDir: keysDir, DefaultImages: defaultImages,
				RunDir: runDir, Dev: dev, KeepESP: true, Source: image.SourceOptions{UserAgent: userAgent, Notify: func(msg string) { r.Info("%s", msg) }}})
		})
		if err != nil {
			return err
		}
		facts = m.Facts
		r.Result("%d disks, efi=%v, install=%v", len(m.Facts.Disks), m.Facts.EFI, m.Facts.Install != nil)
		return nil
	}); err != nil {
		return err
	}
	defer m.Close()
	// The late mounts (efivarfs) ran beside the network and the probe; the
	// plan's steps and any shell from here on may read EFI variables.
	if err := env.WaitLate(); err != nil {
		return err
	}
	writeFacts(m.Facts)
	result.SetRun(p, m.Facts, nil, m.Bundle)

	// The installer screen, when the line leaves a choice open (or nodeinit.interactive=1)
	// and a person answers on a console: what it returns is a command line like any
	// other, planned by the one plan.Plan below.
	scr := newScreen(env, sinks)
	bp, p, err := decide(ctx, scr, p, m.Facts, m.Params, early.Terminals(env.Cmdline))
	var action cmdline.Action
	if bp != nil {
		action = bp.Action
	}
	bootGC(action)
	if err != nil {
		meas.StepFailed(plan.StageProbe)
		eng.Refused(plan.StageProbe, err)
		return err
	}
	result.SetRun(p, m.Facts, bp, m.Bundle)
	// A plain boot reads the ESP the probe parsed; any other plan may
	// repartition, and so may a person at a rescue shell: for those the
	// partition closes now, before the first step or the shell.
	probedESP := m.TakeESP()
	if !startsWithMountRoot(bp) {
		probedESP.Close()
		probedESP = nil
	}
	defer probedESP.Close()
	fmt.Fprintln(env.Out, "nodeinit: plan:")
	bp.WriteText(env.Out)
	eng.Announce(bp)
	// What the boot will do is measured before it does any of it.
	if err := meas.Plan(bp, measuredImage(bp, m)); err != nil {
		scr.close()
		return eng.Fail(ctx, plan.StageProbe, err)
	}
	if bp.Handoff == plan.HandoffShell {
		scr.close()
		jsonLines.Flush()
		return env.RescueShell(factsText(m.Facts))
	}

	// The node's copy of the CLI is made while the boot steps run (mount-root is
	// mostly waiting on the disk), not after them.
	cliLeft := make(chan error, 1)
	if bp.Handoff == plan.HandoffSwitchRoot && !bp.DryRun {
		go func() { cliLeft <- leaveCLI() }()
	}

	job := &stages.Job{ProbedESP: probedESP, Params: p, Facts: m.Facts, Plan: bp, Bundle: m.Bundle, Dev: dev,
		DevDir: "/dev", RunDir: runDir, NewRoot: newRoot, Log: eventsFile, FlushLog: jsonLines.Flush, SSHKey: scr.sshKey}
	if scr.sess != nil {
		// The chosen console follows the run on the progress page, then the done page.
		follow, finish := scr.follow(ctx)
		eng.Sink = stages.Fanout{sinks, follow}
		err := eng.Run(ctx, bp, job)
		eng.Sink = sinks
		finish()
		if err != nil {
			job.Close()
			if dir, lerr := job.MountLogDir(); lerr == nil {
				env.LogDir = dir
			}
			return err
		}
	} else if err := eng.Run(ctx, bp, job); err != nil {
		job.Close()
		// Keep the log where it survives the reboot: the ESP, when there is one.
		if dir, lerr := job.MountLogDir(); lerr == nil {
			env.LogDir = dir
		}
		return err
	}
	if bp.DryRun {
		job.Close()
		fmt.Fprintln(env.Out, "nodeinit: dry run finished; nothing was written")
		return nil
	}
	handoff := bp.Handoff
	if why := job.RebootReason(); why != "" {
		// The slot cannot be booted (a failed loader trial): the ledger now
		// says so, and the firmware's next boot starts the other slot.
		fmt.Fprintf(env.Out, "nodeinit: %s; rebooting into the other slot\n", why)
		handoff = plan.HandoffReboot
	}
	switch handoff {
	case plan.HandoffSwitchRoot:
		return eng.Step(ctx, plan.StageSwitchRoot, "switch_root into the node's "+nodeInit, func(r *stages.Reporter) error {
			// The node needs nothing more from the image source (a stateless root is in
			// RAM already): unmount a medium rather than leave it mounted under /run for
			// every process of the node to read, adminpw.hash included.
			if err := m.Close(); err != nil {
				r.Info("release the image source: %v", err)
			}
			if err := <-cliLeft; err != nil {
				r.Info("the node gets no nodeinit CLI under %s: %v", NodeCLI, err)
			}
			fmt.Fprintln(env.Out, timingReport(env))
			jsonLines.Flush()
			return env.SwitchRoot(newRoot, nodeInit)
		})
	case plan.HandoffReboot:
		return eng.Step(ctx, plan.StageReboot, "reboot into the disk", func(r *stages.Reporter) error {
			if err := job.Close(); err != nil {
				r.Info("cleanup: %v", err)
			}
			fmt.Fprintf(env.Out, "nodeinit: %s complete\n", bp.Action)
			fmt.Fprintln(env.Out, timingReport(env))
			if d := p.RebootDelay; d > 0 {
				fmt.Fprintf(env.Out, "nodeinit: rebooting in %ds (reboot_delay)\n", d)
				time.Sleep(time.Duration(d) * time.Second)
			}
			jsonLines.Flush()
			unix.Sync()
			return env.Power.Reboot()
		})
	}
	return nil
}

// decide returns the plan to run and the params it was made from. When the screen is
// needed (tui.Needed) and a console answers, that is the screen's choice, planned again on
// the same facts; otherwise, as without a screen, p through adjust (the probe's
// Machine.Params). Every error means nothing was written.
func decide(ctx context.Context, scr *screen, p *cmdline.Params, f *plan.Facts, adjust func(*cmdline.Params) *cmdline.Params,
	terms []early.Terminal) (*plan.Blueprint, *cmdline.Params, error) {
	if tui.Needed(p, f) {
		res, err := scr.choose(ctx, terms, p, f)
		if err != nil {
			return nil, nil, err
		}
		if res != nil {
			q, bp, err := planChosen(res, f, adjust)
			if err != nil {
				scr.close()
				return nil, nil, err
			}
			if res.SSHKey != "" {
				// No kernel argument carries the key: the job seeds it beside the line's config.
				if err := (nodeconfig.Config{AdminSSHKey: res.SSHKey}).Validate(); err != nil {
					scr.close()
					return nil, nil, fmt.Errorf("nothing was written: the installer screen's SSH key: %w", err)
				}
				scr.sshKey = res.SSHKey
			}
			return bp, q, nil
		}
	}
	q := adjust(p)
	bp, err := plan.Plan(q, f)
	if err != nil {
		return nil, nil, fmt.Errorf("nothing was written: %w", err)
	}
	return bp, q, nil
}

// sysBlock lists the kernel's block devices.
const sysBlock = "/sys/block"

// Drivers probe disks asynchronously after their modules load, and there is
// no udev to wait for. How long the probe waits for disks to appear:
const (
	// disksQuiet is how long the disk list must stay unchanged before a
	// destructive action (or the installer screen) chooses from it.
	disksQuiet = 300 * time.Millisecond
	// disksWait bounds every wait for disks: a USB stick comes after
	// usb-storage's delay_use (1 s) and the SCSI scan behind it.
	disksWait = 10 * time.Second
)

// probeDisks runs probe when the disks the action needs are there. A
// destructive action waits first until the disk list has been quiet for
// disksQuiet and no USB disk is pending (early.PendingDisks), so that a bare
// storage_init or glob chooses from every disk, and the medium is there;
// so does nodeinit.interactive=1, whose screen lists them (any other line
// that shows the screen is an install, which is destructive).
// Anything else (a plain boot, stateless, rescue) probes at once, and again
// each time the list changes while what it needs is missing (the plan is
// refused), for at most disksWait: a boot does not wait for disks it has.
func probeDisks(ctx context.Context, p *cmdline.Params, sysBlock string, note func(string), probe func() (*stages.Machine, error)) (*stages.Machine, error) {
	if p.Destructive() || p.Node.Interactive != nil && *p.Node.Interactive {
		early.WaitBlockDevices(ctx, sysBlock, disksQuiet, disksWait)
		return probe()
	}
	deadline := time.Now().Add(disksWait)
	for {
		seen := early.BlockDevices(sysBlock)
		m, err := probe()
		if err != nil {
			return nil, err
		}
		if _, perr := plan.Plan(m.Params(p), m.Facts); perr == nil || !early.WaitBlockChange(ctx, sysBlock, seen, deadline) {
			return m, nil
		}
		m.Close()
		note(fmt.Sprintf("disks changed while what %s needs was missing: probing again", p.Action))
	}
}

// startsWithMountRoot says whether the plan's first step mounts the root
// of a slot on disk: a plain boot, which reads the probed ESP.
func startsWithMountRoot(bp *plan.Blueprint) bool {
	if len(bp.Steps) == 0 {
		return false
	}
	mr, ok := bp.Steps[0].Input.(plan.MountRoot)
	return ok && mr.Slot != "ram"
}

// lateSink forwards to a sink set once it exists (the status poster, whose URL may
// need the network first).
type lateSink struct {
	mu   sync.Mutex
	next stages.Sink
}

func (l *lateSink) set(s stages.Sink) {
	l.mu.Lock()
	l.next = s
	l.mu.Unlock()
}

// Emit forwards e when the sink is set.
func (l *lateSink) Emit(e stages.Event) {
	l.mu.Lock()
	next := l.next
	l.mu.Unlock()
	if next != nil {
		next.Emit(e)
	}
}

// eventSinks fans events out to every console (one line a second for progress), the
// JSON-lines log, and nodeinit.status_url. The JSON lines (the log file, and
// nodeinit.events=) are written from a queue, off the steps' path: the caller
// flushes it before anything reads them and before the boot hands over.
func eventSinks(env *early.Env, status stages.Sink, eventsTTY string) (stages.Sink, *stages.Queue, func()) {
	human := &stages.Throttle{Next: &stages.HumanSink{W: env.Out}, Interval: time.Second}
	var jsonSinks stages.Fanout
	var closers []func()
	if f, err := os.Create(eventsFile); err == nil {
		jsonSinks = append(jsonSinks, &stages.JSONSink{W: f})
		closers = append(closers, func() { f.Close() })
	}
	// nodeinit.events=ttyS1: the same JSON lines on a serial port of their own,
	// for test harnesses and serial concentrators that read events, not prose.
	if eventsTTY != "" {
		if tty, err := openRawSerial("/dev/" + eventsTTY); err != nil {
			fmt.Fprintf(env.Out, "nodeinit: nodeinit.events=%s: %v\n", eventsTTY, err)
		} else {
			jsonSinks = append(jsonSinks, &stages.JSONSink{W: tty})
			closers = append(closers, func() { tty.Close() })
		}
	}
	lines := stages.NewQueue(jsonSinks)
	return stages.Fanout{human, timing, status, lines}, lines, func() {
		lines.Close()
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
	if self, children, err := peakRSS(); err == nil {
		fmt.Fprintf(&b, ", peak RSS %.1f MiB (children %.1f MiB)", float64(self)/(1<<20), float64(children)/(1<<20))
	}
	return b.String()
}

// peakRSS is the most resident memory /init has held, and the most any one of its
// finished children held, in bytes: getrusage's ru_maxrss.
func peakRSS() (self, children int64, err error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, err
	}
	self = ru.Maxrss << 10
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		return 0, 0, err
	}
	return self, ru.Maxrss << 10, nil
}

// breakShell opens the rescue shell for nodeinit.break.
type breakShell struct {
	env   *early.Env
	facts **plan.Facts // nil until the probe ran
	flush func()       // writes out the queued JSON lines
}

// Break opens the rescue shell before stage.
func (b breakShell) Break(ctx context.Context, stage string) error {
	fmt.Fprintf(b.env.Out, "nodeinit: BREAK before stage %s: nothing of it has run; exit the shell to continue\n", stage)
	text := "facts: not probed yet\n"
	if *b.facts != nil {
		text = factsText(*b.facts)
	}
	b.flush()
	b.env.WaitLate() // a failed late mount was reported; the shell opens anyway
	return b.env.RescueShell(text)
}

func writeFacts(f *plan.Facts) {
	b, err := json.MarshalIndent(f, "", "  ")
	if err == nil {
		os.WriteFile(filepath.Join(runDir, "facts.json"), b, 0o600)
	}
}

// factsText is the summary shown in the rescue shell.
func factsText(f *plan.Facts) string {
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

// openRawSerial opens a serial console for writing JSON lines, with output
// processing off so that "\n" is not turned into "\r\n".
func openRawSerial(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS); err == nil {
		t.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
	}
	return f, nil
}
