package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/stages"
	"golang.org/x/sys/unix"
)

func init() {
	register("apply", "run a kernel command line's action on this machine (install onto a disk from a rescue system)", runApply)
}

func runApply(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	fs.SetOutput(stderr)
	line := fs.String("cmdline", "", `the kernel command line to act on, e.g. "install storage_init=/dev/disk/by-id/… BOOTIF=link"`)
	keys := fs.String("keys", "/etc/nodeinit/keys", "directory of trusted image public keys (*.pub)")
	runDir := fs.String("run-dir", "", "directory for temporary mounts (default: a new one under /run)")
	only := fs.String("disks", "", "consider only these disks, by kernel name or serial (comma-separated): the others,\n"+
		"and any install they hold, stay out of the plan (e.g. to install onto one disk while another holds a node)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("apply", fmt.Sprintf("unexpected argument %q", fs.Arg(0)),
			`put the whole kernel command line, quoted, in --cmdline "install storage_init=… nodeinit.image=…"`)
	}
	if *line == "" {
		return usageError("apply", "no command line", `pass --cmdline "install storage_init=… nodeinit.image=…"`)
	}
	dir := *runDir
	if dir == "" {
		d, err := os.MkdirTemp("/run", "nodeinit-apply-")
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	names, err := diskNames(diskio.Root{Dir: "/"}, *only)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	sink := &stages.Throttle{Next: &stages.HumanSink{W: stdout}, Interval: time.Second}
	bp, err := stages.Apply(ctx, stages.ApplyOptions{Cmdline: *line, Dev: &linuxdev.Machine{}, KeysDir: *keys,
		RunDir: dir, Sink: sink, Out: stdout, OnlyDisks: names})
	if err != nil {
		return err
	}
	if bp.DryRun {
		fmt.Fprintln(stdout, "nodeinit: dry run: nothing was written")
		return nil
	}
	fmt.Fprintf(stdout, "nodeinit: %s complete; boot the disk to start the node\n", bp.Action)
	return nil
}

// diskNames resolves apply's --disks list (kernel names or serials) to kernel names,
// from the disks' identity in sysfs alone (nothing is read from a device). An entry
// that names no disk is an error that lists the disks there are.
func diskNames(root diskio.Root, list string) ([]string, error) {
	if list == "" {
		return nil, nil
	}
	root.SkipProbe = true
	disks, err := diskio.Discover(root)
	if err != nil {
		return nil, fmt.Errorf("apply --disks: %w", err)
	}
	var names, known []string
	for _, want := range strings.Split(list, ",") {
		want = strings.TrimSpace(want)
		i := slices.IndexFunc(disks, func(d disk.Disk) bool { return d.Name == want || (d.Serial != "" && d.Serial == want) })
		if i < 0 {
			for _, d := range disks {
				known = append(known, d.Name+" (serial "+d.Serial+")")
			}
			return nil, usageError("apply", fmt.Sprintf("--disks: no disk has the kernel name or serial %q", want),
				"name disks this machine has: "+strings.Join(known, ", "))
		}
		names = append(names, disks[i].Name)
	}
	return names, nil
}
