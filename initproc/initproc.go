// Command init is PID 1 in the nodeinit initramfs: it does the early setup (mounts, consoles,
// kernel modules), then hands over to the engine (runEngine, in engine.go), which parses the
// command line, probes, plans and runs the stages and usually ends in switch_root or a reboot.
// Between the probe and the plan it may run the installer screen (screen.go) on the first
// console that answers, when the line leaves a choice open.
// If the engine fails, init shows the failure screen on every console and applies
// nodeinit.onfail (default halt; see early.DefaultOnFail).
package initproc

import (
	"context"
	"fmt"
	"math"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/early"
)

// bootHeapLimit bounds the heap while the collector is off (bootGC): a plain
// boot allocates about 15 MiB in all, and collecting it three times cost
// about 0.15 s of CPU under QEMU's emulation.
const bootHeapLimit = 48 << 20

// bootGC turns the collector back on, as the Go runtime's defaults have it,
// unless the action is a plain boot: an install, an upgrade or a shell may run
// long and stream gigabytes through the heap. The engine calls it with the
// command line's action, and again with the plan's (the installer screen may
// have chosen another).
func bootGC(action cmdline.Action) {
	if action == cmdline.ActionBoot {
		return
	}
	debug.SetGCPercent(100)
	debug.SetMemoryLimit(math.MaxInt64)
}

// EngineStartMarker is printed just before the engine runs; tests wait for it.
const engineStartMarker = "nodeinit: engine start"

// Main runs PID 1. It never returns: the boot ends in switch_root, a reboot, a power-off or
// a halt with the failure screen shown.
func Main() {
	// /init is a short-lived process: until the plan says more than a boot, the
	// garbage collector runs only if the heap nears bootHeapLimit (see bootGC).
	debug.SetGCPercent(-1)
	debug.SetMemoryLimit(bootHeapLimit)
	env, err := early.Setup()
	if err != nil {
		stop(env, fmt.Errorf("early setup: %w", err))
	}
	fmt.Fprintf(env.Out, "nodeinit: block devices: %s\n", strings.Join(early.BlockDevices(sysBlock), " "))
	fmt.Fprintf(env.Out, "%s at %.3fs after kernel start\n", engineStartMarker, early.Uptime().Seconds())

	if err := runEngine(context.Background(), env); err != nil {
		stop(env, err)
	}
	// The engine returned without switching root or rebooting (a dry run, or the rescue
	// shell exited): end the boot as nodeinit.onfail says, without a failure screen.
	fmt.Fprintln(env.Out, "nodeinit: engine finished without a hand-off")
	policy, _ := early.ParseOnFail(env.Cmdline)
	finish(env, env.Finish(policy))
}

// stop shows the failure screen and applies nodeinit.onfail.
func stop(env *early.Env, err error) {
	env.WaitLate() // onfail=shell opens a shell, which may read EFI variables
	finish(env, env.Fail(err))
}

// finish never returns: PID 1 exiting panics the kernel, so if the Power call failed, say so
// and wait forever with the screen visible.
func finish(env *early.Env, err error) {
	if err != nil {
		fmt.Fprintf(env.Out, "nodeinit: %v; halting here\n", err)
	}
	for {
		time.Sleep(time.Hour)
	}
}
