package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/operr"
)

// Where nodeinit's normal boot exposes the ESP and the config partition in the node.
const (
	defaultESP    = "/run/nodeinit/esp"
	defaultConfig = "/run/nodeinit/config"
)

func init() {
	register("bless", "mark this boot good (stop boot counting) or -bad; records it in the ledger", runBless)
}

func runBless(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bless", flag.ContinueOnError)
	fs.SetOutput(stderr)
	esp := fs.String("esp", defaultESP, "mounted ESP directory")
	slot := fs.String("slot", "", "slot to bless (default: nodeinit.slot from /proc/cmdline)")
	bad := fs.Bool("bad", false, "mark the slot bad instead, so the other slot boots next")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("bless", fmt.Sprintf("unexpected argument %q", fs.Arg(0)), "name the slot with --slot a or --slot b; --bad marks it bad")
	}
	if *slot == "" {
		var err error
		if *slot, err = bootedSlot(); err != nil {
			return fmt.Errorf("bless: %w", err)
		}
	}
	state := boot.SlotGood
	if *bad {
		state = boot.SlotBad
	}
	if err := boot.MarkSlot(boot.DirFS(*esp), *slot, !*bad, time.Now()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "slot %s marked %s\n", *slot, state)
	return nil
}

// bootedSlot reads nodeinit.slot from /proc/cmdline (last value wins).
func bootedSlot() (string, error) {
	data, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return "", err
	}
	slot := ""
	for _, tok := range strings.Fields(string(data)) {
		if v, ok := strings.CutPrefix(tok, boot.SlotOption+"="); ok {
			slot = v
		}
	}
	if slot == "" {
		return "", operr.New("this boot has no nodeinit.slot= on its command line", "", "pass --slot a or --slot b", "")
	}
	return slot, nil
}
