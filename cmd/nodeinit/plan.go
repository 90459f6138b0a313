package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
)

func init() {
	register("plan", "print what a kernel command line would do on a machine, writing nothing", runPlan)
}

func runPlan(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	line := fs.String("cmdline", "", "kernel command line (default: /proc/cmdline)")
	factsFile := fs.String("facts", "", "facts JSON file (default: probe this machine read-only)")
	asJSON := fs.Bool("json", false, `print {"params": what was parsed (redacted), "plan": the plan} as JSON`)
	keys := fs.String("keys", "/etc/nodeinit/keys", "directory of trusted image public keys, for checking the image")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("plan", fmt.Sprintf("unexpected argument %q", fs.Arg(0)),
			`put the whole kernel command line, quoted, in --cmdline "install storage_init=…"`)
	}
	if *line == "" {
		b, err := os.ReadFile("/proc/cmdline")
		if err != nil {
			return fmt.Errorf("read /proc/cmdline: %w", err)
		}
		*line = strings.TrimSpace(string(b))
	}
	p, err := cmdline.Parse(*line)
	if err != nil {
		return err
	}
	var f *plan.Facts
	if *factsFile != "" {
		var b []byte
		if b, err = os.ReadFile(*factsFile); err == nil {
			f, err = plan.ParseFacts(*factsFile, b)
		}
	} else {
		f, err = stages.Gather(context.Background(), p, stages.GatherOptions{Root: "/", KeysDir: *keys, Dev: &linuxdev.Machine{}, DefaultImages: []string{"label:NODEINIT"}})
	}
	if err != nil {
		return err
	}
	bp, err := plan.Plan(p, f)
	if err != nil {
		return refusal(err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false) // "<redacted>", not "\u003credacted\u003e"
		return enc.Encode(planJSON{Params: p.Redacted(), Plan: bp})
	}
	return bp.WriteText(stdout)
}

// planJSON is what `plan --json` prints: what was parsed from the command line (redacted:
// no password hash or URL credential) next to the plan, so an operator can check the line.
type planJSON struct {
	Params map[string]any  `json:"params"`
	Plan   *plan.Blueprint `json:"plan"`
}

// refusal is a plan refusal as the failure screen shows it: the message, then the fix and
// the kernel argument on their own lines (an operator error's message never holds them).
func refusal(err error) error {
	d := operr.Describe(err)
	var extra string
	if d.Fix != "" {
		extra += "\nfix: " + d.Fix
	}
	if d.Arg != "" {
		extra += "\nkernel argument: " + d.Arg
	}
	return fmt.Errorf("nothing will be written: %w%s", err, extra)
}
