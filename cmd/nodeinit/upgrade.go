package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
	"golang.org/x/sys/unix"
)

func init() {
	register("upgrade", "upgrade this node from an image (--image DIR|FILE.iso|-|label:NAME|URL) into the other slot, then reboot", runUpgrade)
}

const upgradeUsage = `usage: nodeinit upgrade --image SPEC [flags]

Writes the image into the slot this node does not run from, makes that slot
the next boot, on trial, and reboots. SPEC is one of:

  DIR                   a bundle directory (the one holding manifest.json)
  FILE[/dir/in/iso]     an ISO 9660 image, such as ` + "`nodeinit mkmedia iso`" + ` writes,
                        recognised by its content and read without mounting; the
                        bundle at its root, or in /dir/in/iso
  -                     an ISO on standard input, received into --tmpdir first
                        (a temporary file without a name, so nothing is left there)
  label:NAME[/dir]      the medium labelled NAME, mounted read-only
  http(s)://HOST/PATH/  a bundle URL (plain http needs --sha256)

oVirt's spellings work too: --iso FILE is --image FILE, and --reboot=N reboots
N seconds after the upgrade (0: at once; --reboot=false: not at all).

--status prints one JSON object per line on stdout, the events' own format
(see --events), and the human text goes to stderr. There is one line per stage
transition, in order: receive-image (for -), probe (opens the image and
plans), then the plan's stages (fetch-boot-files, write-slot, copy-boot-files,
migrate-config, add-boot-entry, …), each
  {"time":"…","stage":"write-slot","kind":"start","message":"…"}
with kind start, then done (with "duration_ns"), skipped (a dry run) or
failed (with "error", "hint" and "kernel_arg"). The last line is the outcome,
stage "upgrade", kind done or failed:
  {"time":"…","stage":"upgrade","kind":"done","message":"slot b holds node 1.2 on trial; it boots next; rebooting in 30s"}
If the reboot itself fails, a line with stage "reboot", kind failed follows.
Progress and remarks are left out of --status; --events has every event.

flags:
`

// upgradeEnv is what `nodeinit upgrade` reads from the machine besides its
// flags; tests point it at a fake node.
type upgradeEnv struct {
	stdin   io.Reader
	cmdline string // the boot's kernel command line: /proc/cmdline
	root    string // where sysfs, /proc and /dev are read: "/"
	runDir  string // for mounts and staging ("" for stages' default)
}

func runUpgrade(args []string, stdout, stderr io.Writer) error {
	return upgradeEnv{stdin: os.Stdin, cmdline: "/proc/cmdline", root: "/"}.run(args, stdout, stderr)
}

func (env upgradeEnv) run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("upgrade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	img := fs.String("image", "", "image: a bundle directory, an ISO file, - for an ISO on standard input, label:NAME of a medium, or an http(s) URL")
	iso := fs.String("iso", "", "the same as --image (oVirt's ovirt-node-upgrade --iso)")
	tmpDir := fs.String("tmpdir", "/var/tmp", "directory that holds the ISO received with --image - (it needs room for the whole ISO)")
	sha := fs.String("sha256", "", "SHA-256 of the bundle's manifest.json (required over plain http)")
	insecure := fs.Bool("insecure", false, "accept an unsigned image")
	force := fs.Bool("force", false, "allow a downgrade, a major-version jump, or the running version")
	tries := fs.Int("tries", 0, "boot attempts of the new slot before falling back (default 3)")
	dryRun := fs.Bool("dry-run", false, "print the plan and write nothing")
	reboot := &rebootFlag{on: true}
	fs.Var(reboot, "reboot", "reboot into the new slot when done: true or false, or =N to reboot N seconds later (oVirt's --reboot=N; 0: at once)")
	status := fs.Bool("status", false, "print one JSON line per stage transition and a last one with the outcome on stdout; the human text goes to stderr")
	keys := fs.String("keys", "/etc/nodeinit/keys", "directory of trusted public keys (*.pub)")
	esp := fs.String("esp", defaultESP, "mounted ESP directory")
	config := fs.String("config", defaultConfig, "mounted node-config directory")
	events := fs.String("events", "", "also write every event as a JSON line to this file or device (default: the boot's nodeinit.events= serial port, if any)")
	fs.Usage = func() {
		io.WriteString(stderr, upgradeUsage)
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// From here on, with --status, every way out ends with the outcome line.
	human, statusSink := stdout, stages.Sink(nil)
	if *status {
		human, statusSink = stderr, stages.Transitions{Next: &stages.JSONSink{W: stdout}}
	}
	outcome := func(err error, format string, args ...any) error {
		if statusSink != nil {
			statusSink.Emit(stages.Outcome(time.Now(), stages.StageUpgrade, err, fmt.Sprintf(format, args...)))
		}
		return err
	}
	if fs.NArg() > 0 {
		fix := "the image goes in --image: nodeinit upgrade --image " + fs.Arg(0)
		if _, err := strconv.Atoi(fs.Arg(0)); err == nil {
			fix = "write the reboot delay with =: --reboot=" + fs.Arg(0)
		}
		return outcome(usageError("upgrade", fmt.Sprintf("unexpected argument %q", fs.Arg(0)), fix), "")
	}
	if *img != "" && *iso != "" && *img != *iso {
		return outcome(usageError("upgrade", fmt.Sprintf("--image %s and --iso %s name different images", *img, *iso),
			"give one of them; --iso is another name for --image"), "")
	}
	if *img == "" {
		*img = *iso
	}
	if *img == "" {
		return outcome(usageError("upgrade", "no image", "nodeinit upgrade --image /path/to/bundle, FILE.iso, - (an ISO on standard input), label:NAME or https://host/bundle/"), "")
	}
	if *tries < 0 {
		return outcome(usageError("upgrade", fmt.Sprintf("--tries %d is negative", *tries), "--tries 1 or more, or 0 for the default 3"), "")
	}
	if f, ok := env.stdin.(*os.File); ok && *img == "-" {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			return outcome(usageError("upgrade", "--image - reads an ISO from standard input, but it is a terminal or device",
				"pipe the ISO in (nodeinit upgrade --image - < node.iso), or pass its path: --image node.iso"), "")
		}
	}

	line, err := os.ReadFile(env.cmdline)
	if err != nil {
		return outcome(fmt.Errorf("upgrade: read the boot's command line: %w", err), "")
	}
	ev, closeEvents, err := openEvents(*events, string(line))
	if err != nil {
		return outcome(err, "")
	}
	defer closeEvents()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	bp, err := stages.UpgradeRunning(ctx, stages.RunningUpgradeOptions{
		Image: *img, Stdin: env.stdin, TmpDir: *tmpDir, SHA256: *sha, Insecure: *insecure, Force: *force, DryRun: *dryRun, Tries: *tries,
		KeysDir: *keys, ESPDir: *esp, ConfigDir: *config, Cmdline: string(line), Out: human, Events: ev, Sink: statusSink,
		Root: env.root, RunDir: env.runDir,
	})
	if err != nil {
		return outcome(err, "")
	}
	if bp.DryRun {
		return outcome(nil, "dry run: nothing was written")
	}
	done := fmt.Sprintf("slot %s holds %s %s on trial; it boots next", bp.Slot, bp.Image.Name, bp.Image.Version)
	fmt.Fprintf(human, "nodeinit: upgrade complete: %s\n", done)
	if !reboot.on {
		fmt.Fprintln(human, "nodeinit: reboot to run it (--reboot=false was given)")
		return outcome(nil, "%s; not rebooting (--reboot=false)", done)
	}
	if reboot.delay == 0 {
		outcome(nil, "%s; rebooting now", done)
	} else {
		outcome(nil, "%s; rebooting in %s", done, reboot.delay)
		fmt.Fprintf(human, "nodeinit: rebooting in %s (Ctrl-C cancels the reboot, not the upgrade)\n", reboot.delay)
		select {
		case <-ctx.Done():
			fmt.Fprintf(human, "nodeinit: reboot cancelled; slot %s boots on the next reboot\n", bp.Slot)
			return nil
		case <-time.After(reboot.delay):
		}
	}
	if err := rebootNode(human); err != nil {
		if statusSink != nil {
			statusSink.Emit(stages.Outcome(time.Now(), plan.StageReboot, err, ""))
		}
		return err
	}
	return nil
}

// rebootFlag is --reboot: true or false as a boolean flag (--reboot alone is
// true), or oVirt's --reboot=N, reboot N seconds after the upgrade. A number
// is always a delay: --reboot=1 waits a second, --reboot=0 reboots at once.
type rebootFlag struct {
	on    bool
	delay time.Duration
}

// IsBoolFlag lets --reboot stand without a value.
func (r *rebootFlag) IsBoolFlag() bool { return true }

func (r *rebootFlag) String() string {
	switch {
	case r == nil || r.on && r.delay == 0:
		return "true"
	case !r.on:
		return "false"
	}
	return strconv.Itoa(int(r.delay / time.Second))
}

// Set takes true, false or a delay in whole seconds.
func (r *rebootFlag) Set(v string) error {
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return fmt.Errorf("negative delay %d: give the seconds to wait, 0 for at once", n)
		}
		r.on, r.delay = true, time.Duration(n)*time.Second
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true, false or a delay in seconds, e.g. --reboot=30")
	}
	r.on, r.delay = b, 0
	return nil
}

// openEvents opens where the JSON events go: path, or else the serial port
// the boot's nodeinit.events= names (what a management engine or a test reads
// stage by stage); nil when neither is given.
func openEvents(path, cmdline string) (io.Writer, func(), error) {
	if path == "" {
		for _, tok := range strings.Fields(cmdline) {
			if v, ok := strings.CutPrefix(tok, "nodeinit.events="); ok && v != "" {
				path = "/dev/" + filepath.Base(v)
			}
		}
	}
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_NOCTTY, 0o600)
	if err != nil {
		return nil, nil, usageError("upgrade", fmt.Sprintf("--events %s: %v", path, err), "name a writable file or serial device, e.g. --events /dev/ttyS1")
	}
	return f, func() { f.Close() }, nil
}

// rebootNode asks systemd when it runs the node, so services stop cleanly; otherwise
// it syncs and reboots directly.
func rebootNode(stdout io.Writer) error {
	fmt.Fprintln(stdout, "nodeinit: rebooting")
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if out, err := exec.Command("systemctl", "reboot").CombinedOutput(); err != nil {
			return fmt.Errorf("systemctl reboot: %v: %s", err, out)
		}
		return nil
	}
	unix.Sync()
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); err != nil {
		return operr.Wrap(err, "reboot", "reboot the node by hand; the upgrade is complete", "")
	}
	return nil
}
