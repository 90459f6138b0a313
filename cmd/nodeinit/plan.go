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
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	keys := fs.String("keys", "/etc/nodeinit/keys", "directory of trusted image public keys, for checking the image")
	if err := fs.Parse(args); err != nil {
		return err
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
	var f *stages.Facts
	if *factsFile != "" {
		f, err = stages.LoadFacts(*factsFile)
	} else {
		f, err = stages.Gather(context.Background(), p, stages.GatherOptions{Root: "/", KeysDir: *keys, Mount: stages.SysMounter{}, DefaultImages: []string{"label:NODEINIT"}})
	}
	if err != nil {
		return err
	}
	plan, err := stages.Plan(p, f)
	if err != nil {
		return fmt.Errorf("nothing will be written: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(plan)
	}
	return plan.WriteText(stdout)
}
