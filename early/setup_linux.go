package early

import (
	"fmt"
	"log"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

// Setup does everything before the engine: the early mounts, output to every console and
// kmsg, and the kernel modules listed in ModuleListPath. It starts the late mounts
// (efivarfs), which run while the engine probes: Env.WaitLate waits for them. It always
// returns a usable Env (writing at least to /dev/console when it can); the error is the
// first step that failed and was not optional.
func Setup() (*Env, error) {
	env := &Env{Power: KernelPower{}, Started: Uptime()}
	results, mountErr := RunSteps(EarlyMounts)
	env.Steps = results

	cmdline, err := os.ReadFile("/proc/cmdline")
	if err == nil {
		env.Cmdline = strings.TrimSpace(string(cmdline))
	}
	out, outErr := OpenOutput("/dev", ConsoleNames(env.Cmdline))
	out.Verbose = verbose(env.Cmdline)
	env.Out = out
	env.Log = slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{ReplaceAttr: dropTime}))
	log.SetFlags(0)
	log.SetPrefix("nodeinit: ")
	log.SetOutput(out.Detail())

	fmt.Fprintf(out, "nodeinit: /init started %.3fs after kernel start, writing to %d console(s): %s\n",
		env.Started.Seconds(), out.Consoles(), strings.Join(ConsoleNames(env.Cmdline), " "))
	if outErr != nil {
		fmt.Fprintf(out, "nodeinit: %v\n", outErr)
	}
	reportSteps(out, results)
	if mountErr != nil {
		return env, mountErr
	}

	if err := useModprobeHelper(); err != nil {
		fmt.Fprintf(out, "nodeinit: modules: %v\n", err)
	}
	names, err := ReadModuleList(ModuleListPath)
	if err != nil {
		fmt.Fprintf(out, "nodeinit: modules: %v\n", err)
	}
	start := time.Now()
	env.Modules = LoadModules("/", names, ForcedModules(env.Cmdline))
	fmt.Fprintf(out, "nodeinit: modules: %s in %s\n", env.Modules, time.Since(start).Round(time.Millisecond))
	out.Detailf("nodeinit: modules: %s", env.Modules.Phases())
	for _, n := range slices.Sorted(maps.Keys(env.Modules.Failed)) {
		fmt.Fprintf(out, "nodeinit: module %s: %s\n", n, env.Modules.Failed[n])
	}

	// efivarfs takes its driver's load and a mount (about 45 ms under emulation);
	// nothing reads EFI variables before the plan's steps.
	env.late = make(chan lateSteps, 1)
	go func() {
		results, err := RunSteps(LateMounts)
		env.late <- lateSteps{results, err}
	}()
	return env, nil
}

// WaitLate waits for the late mounts that Setup started, records and reports
// them, and returns the first that failed and was not optional. The engine
// calls it before anything that may read EFI variables (the plan's steps, a
// rescue shell); later calls return at once.
func (e *Env) WaitLate() error {
	if e.late == nil {
		return e.lateErr
	}
	l := <-e.late
	e.late = nil
	e.Steps = append(e.Steps, l.results...)
	reportSteps(e.Out, l.results)
	e.lateErr = l.err
	return l.err
}

// reportSteps shows a failed early step on the console; one that went well,
// or was skipped because its When path is not there (efivarfs on a BIOS
// machine), is detail, on the console only with nodeinit.debug.
func reportSteps(out *Output, results []StepResult) {
	for _, r := range results {
		if r.Err == nil {
			out.Detailf("nodeinit: early %s", r)
			continue
		}
		fmt.Fprintf(out, "nodeinit: early %s\n", r)
	}
}

// Uptime returns the time since the kernel started (CLOCK_BOOTTIME), or 0 if unknown.
func Uptime() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// SwitchRoot moves /dev, /proc, /sys and /run into newRoot, makes it the root, deletes the
// initramfs contents and executes init (through u-root's pkg/mount). It returns only on error.
func (e *Env) SwitchRoot(newRoot, init string) error {
	fmt.Fprintf(e.Out, "nodeinit: switch_root into %s, exec %s at %.3fs after kernel start\n", newRoot, init, Uptime().Seconds())
	unix.Sync()
	if err := mount.SwitchRoot(newRoot, init); err != nil {
		return fmt.Errorf("switch_root to %s (init %s): %w", newRoot, init, err)
	}
	return nil
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// ModprobeHelper is the rescue shell's modprobe, which the kernel runs to load a
// module it needs (request_module: a filesystem to mount, a crypto algorithm).
const ModprobeHelper = "/bbin/modprobe"

// useModprobeHelper points the kernel's usermode helper at ModprobeHelper when the
// initramfs has it, so that the modules /init does not load at boot still load
// when asked for.
func useModprobeHelper() error {
	if _, err := os.Stat(ModprobeHelper); err != nil {
		return nil // an initramfs built with a --cmd list without modprobe
	}
	if err := os.WriteFile("/proc/sys/kernel/modprobe", []byte(ModprobeHelper+"\n"), 0o644); err != nil {
		return fmt.Errorf("kernel's module helper: %w", err)
	}
	return nil
}
