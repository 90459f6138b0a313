// Command demo is `make demo`: it builds the nodeinit initramfs and a signed demo node
// image, boots a VM (OVMF, TCG) from the installer initrd with
// `install storage_init=… BOOTIF=link adminpw=…`, then boots the installed node from
// its own NVMe disk through systemd-boot.
//
// It shows what matters: the plan, each stage with its progress and timing (read from
// the JSON events nodeinit streams on the VM's second serial port), the reboot, the
// node's first lines, and a summary. The full serial console of each boot goes to a
// log file, named at the end.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/qemu-tests/fixture"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// demoHash is the SHA-512 crypt hash of "nodeinit" (openssl passwd -6 -salt demo nodeinit).
const demoHash = "$6$demo$VkuVXfxR29AghwdAr6JFDpWSLMAVxBt.X0WLj/CSLdvjjL6cCqsq/lD1WmxjIY8w98mCIZcQ7nl0tonW/bTKp1"

func main() {
	out := flag.String("out", "build/demo", "build directory")
	diskGiB := flag.Int64("disk-gib", 16, "size of the blank NVMe disk")
	flag.Parse()
	if err := run(*out, *diskGiB); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// boot is what one VM run left: its wall time, its events and its log files.
type boot struct {
	name    string
	wall    time.Duration
	events  []stages.Event
	console string
}

func run(out string, diskGiB int64) error {
	ctx := context.Background()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	buildLog := filepath.Join(out, "build.log")
	say("building the nodeinit binary, the initramfs and the signed demo image (log: %s)", buildLog)
	lf, err := os.Create(buildLog)
	if err != nil {
		return err
	}
	start := time.Now()
	a, err := fixture.Build(ctx, fixture.Options{CacheDir: vm.DefaultCacheDir(), OutDir: out,
		Versions: []fixture.Version{{Version: "1.0"}}, Log: lf})
	lf.Close()
	if err != nil {
		return fmt.Errorf("%w (see %s)", err, buildLog)
	}
	buildTime := time.Since(start)
	installer, err := a.Installer("1.0")
	if err != nil {
		return err
	}
	diskPath := filepath.Join(out, "nvme.img")
	if err := vm.CreateDisk(diskPath, diskGiB<<30); err != nil {
		return err
	}
	vars := filepath.Join(out, "OVMF_VARS.fd")
	if err := vm.CopyVars(a.Debian.OVMFVars, vars); err != nil {
		return err
	}
	cfg := vm.Config{OVMFCode: a.Debian.OVMFCode, OVMFVars: vars, NoReboot: true, MemoryMiB: 1536, Net: true,
		Disks: []vm.Disk{{Path: diskPath, Interface: vm.NVMe, Serial: "DEMO0001"}}}

	line := "console=ttyS0 panic=5 nodeinit.events=ttyS1 install storage_init=serial:DEMO0001 BOOTIF=link adminpw=" + demoHash +
		" hostname=demo-node1.example.com testos.action=poweroff"
	say("boot 1: the installer, from the kernel and installer initrd, onto a blank %d GiB NVMe disk\n   kernel command line: %s",
		diskGiB, strings.Replace(line, demoHash, "<hash of \"nodeinit\">", 1))
	b1, err := qemu(cfg, out, "install", []string{"-kernel", a.Debian.Vmlinuz, "-initrd", installer, "-append", line})
	if err != nil {
		return err
	}
	say("boot 2: the installed node, from the NVMe disk: OVMF → systemd-boot → nodeinit → demo node OS")
	b2, err := qemu(cfg, out, "node", nil)
	if err != nil {
		return err
	}
	summary(buildTime, diskPath, b1, b2)
	return nil
}

// qemu runs one VM until the guest powers off or reboots. The console goes to
// <out>/<name>-console.log, of which only the node OS's own lines are shown;
// the events go to <out>/<name>-events.jsonl and are shown as they arrive.
func qemu(cfg vm.Config, out, name string, extra []string) (boot, error) {
	b := boot{name: name, console: filepath.Join(out, name+"-console.log")}
	cfg.Events = filepath.Join(out, name+"-events.jsonl")
	os.Remove(cfg.Events)
	args, err := cfg.Args()
	if err != nil {
		return b, err
	}
	args = append(args, "-display", "none")
	args = append(args, extra...)
	con, err := os.Create(b.console)
	if err != nil {
		return b, err
	}
	defer con.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	pr, pw := io.Pipe()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	cmd.Stdout, cmd.Stderr = io.MultiWriter(con, pw), io.MultiWriter(con, os.Stderr)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return b, err
	}
	nodeLines := make(chan struct{})
	go func() { // the node OS's own lines (the test OS prints TESTOS…)
		defer close(nodeLines)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "TESTOS") {
				fmt.Printf("   node: %s\n", l)
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var shown int
	var werr error
	for running := true; running; {
		select {
		case werr = <-done:
			running = false
		case <-time.After(500 * time.Millisecond):
		}
		b.events = readEvents(cfg.Events)
		for _, e := range b.events[shown:] {
			show(e)
		}
		shown = len(b.events)
	}
	pw.Close()
	<-nodeLines
	b.wall = time.Since(start)
	if werr != nil {
		return b, fmt.Errorf("qemu (%s boot): %w; console log: %s", name, werr, b.console)
	}
	return b, nil
}

// readEvents reads the events streamed so far; a line cut short is skipped.
func readEvents(path string) []stages.Event {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []stages.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e stages.Event
		if l := strings.TrimSpace(sc.Text()); strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &e) == nil && e.Stage != "" {
			out = append(out, e)
		}
	}
	return out
}

// show prints one event: the plan in full, progress at most every few
// seconds' worth, and every start, done, info and failure.
func show(e stages.Event) {
	switch e.Kind {
	case stages.EventPlan:
		var p struct {
			Action   string   `json:"action"`
			Destroys []string `json:"destroys"`
			Keeps    []string `json:"keeps"`
			Steps    []struct {
				Name        string `json:"name"`
				Description string `json:"description"`
			} `json:"steps"`
		}
		json.Unmarshal(e.Plan, &p)
		fmt.Printf("   plan: %s\n", e.Message)
		for _, d := range p.Destroys {
			fmt.Printf("     destroys: %s\n", d)
		}
		for _, k := range p.Keeps {
			fmt.Printf("     keeps:    %s\n", k)
		}
		for i, s := range p.Steps {
			fmt.Printf("     %d. %-16s %s\n", i+1, s.Name, s.Description)
		}
	case stages.EventProgress:
		if e.Total > 0 && (e.Done*4/e.Total != (e.Done-1)*4/e.Total || e.Done == e.Total) {
			fmt.Printf("   %s\n", stages.FormatHuman(e))
		}
	default:
		fmt.Printf("   %s\n", stages.FormatHuman(e))
	}
}

// summary says what was installed, where, and how long each part took.
func summary(build time.Duration, disk string, boots ...boot) {
	say("summary")
	for _, b := range boots {
		for _, e := range b.events {
			if e.Kind == stages.EventPlan && b.name == "install" {
				fmt.Printf("   installed: %s, on %s\n", e.Message, disk)
			}
		}
	}
	fmt.Printf("   build: %s\n", build.Round(time.Second))
	for _, b := range boots {
		var parts []string
		for _, e := range b.events {
			if e.Kind == stages.EventDone {
				parts = append(parts, fmt.Sprintf("%s %s", e.Stage, e.Duration.Round(10*time.Millisecond)))
			}
		}
		fmt.Printf("   %s boot: %s wall clock (TCG); stages: %s\n", b.name, b.wall.Round(time.Second), strings.Join(parts, ", "))
		fmt.Printf("     full console log: %s\n", b.console)
	}
}

func say(format string, args ...any) {
	fmt.Printf("\n=== demo: %s\n\n", fmt.Sprintf(format, args...))
}
