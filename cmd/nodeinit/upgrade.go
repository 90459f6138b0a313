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
	"strings"

	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/stages"
	"golang.org/x/sys/unix"
)

func init() {
	register("upgrade", "upgrade this node from an image (--image DIR|label:NAME|URL) into the other slot, then reboot", runUpgrade)
}

func runUpgrade(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("upgrade", flag.ContinueOnError)
	fs.SetOutput(stderr)
	img := fs.String("image", "", "image bundle: a directory, label:NAME of a medium, or an http(s) URL")
	sha := fs.String("sha256", "", "SHA-256 of the bundle's manifest.json (required over plain http)")
	insecure := fs.Bool("insecure", false, "accept an unsigned image")
	force := fs.Bool("force", false, "allow a downgrade, a major-version jump, or the running version")
	tries := fs.Int("tries", 0, "boot attempts of the new slot before falling back (default 3)")
	dryRun := fs.Bool("dry-run", false, "print the plan and write nothing")
	reboot := fs.Bool("reboot", true, "reboot into the new slot when done")
	keys := fs.String("keys", "/etc/nodeinit/keys", "directory of trusted public keys (*.pub)")
	esp := fs.String("esp", defaultESP, "mounted ESP directory")
	config := fs.String("config", defaultConfig, "mounted node-config directory")
	events := fs.String("events", "", "also write every event as a JSON line to this file or device (default: the boot's nodeinit.events= serial port, if any)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("upgrade", fmt.Sprintf("unexpected argument %q", fs.Arg(0)), "the image goes in --image: nodeinit upgrade --image "+fs.Arg(0))
	}
	if *img == "" {
		return usageError("upgrade", "no image", "nodeinit upgrade --image /path/to/bundle, label:NAME or https://host/bundle/")
	}
	if *tries < 0 {
		return usageError("upgrade", fmt.Sprintf("--tries %d is negative", *tries), "--tries 1 or more, or 0 for the default 3")
	}
	line, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return fmt.Errorf("upgrade: read the boot's command line: %w", err)
	}
	ev, closeEvents, err := openEvents(*events, string(line))
	if err != nil {
		return err
	}
	defer closeEvents()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	plan, err := stages.UpgradeRunning(ctx, stages.RunningUpgradeOptions{
		Image: *img, SHA256: *sha, Insecure: *insecure, Force: *force, DryRun: *dryRun, Tries: *tries,
		KeysDir: *keys, ESPDir: *esp, ConfigDir: *config, Cmdline: string(line), Out: stdout, Events: ev,
	})
	if err != nil {
		return err
	}
	if plan.DryRun {
		return nil
	}
	fmt.Fprintf(stdout, "nodeinit: upgrade complete: slot %s holds %s %s on trial; it boots next\n", plan.Slot, plan.Image.Name, plan.Image.Version)
	if !*reboot {
		fmt.Fprintln(stdout, "nodeinit: reboot to run it (--reboot=false was given)")
		return nil
	}
	return rebootNode(stdout)
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
