// Package early is the first thing /init does: the early mounts, kernel modules, output to
// every console and /dev/kmsg, and the ways out when the engine stops — the failure screen,
// the saved log, the nodeinit.onfail policy, the rescue shell and switch_root.
//
// The pieces that do not touch the machine (command line reading, console names, the failure
// screen text, the onfail policy) are portable and unit-tested; the rest lives in *_linux.go.
package early

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/operr"
)

// Env is what early setup hands to the engine.
type Env struct {
	// Cmdline is the kernel command line as read from /proc/cmdline.
	Cmdline string
	// Out writes to every console named by console= and to /dev/kmsg, and keeps a copy for SaveLog.
	Out *Output
	// Log is a structured logger writing to Out.
	Log *slog.Logger
	// Steps records each early mount step and its outcome, in order.
	Steps []StepResult
	// Modules records which kernel modules were loaded, and which failed.
	Modules ModuleReport
	// Power reboots, powers off or halts the machine.
	Power Power
	// Started is the kernel uptime (CLOCK_BOOTTIME) when /init began.
	Started time.Duration
	// LogDir, when the engine sets it, is where the log is saved on failure: a directory
	// that survives a reboot (the ESP or the logging partition, mounted).
	LogDir string

	sleepFn  func(time.Duration) // tests replace time.Sleep
	rescueFn func(string) error  // tests replace the rescue shell
	late     chan lateSteps      // the late mounts, until WaitLate
	lateErr  error
}

// lateSteps is the outcome of the late mounts (Setup, WaitLate).
type lateSteps struct {
	results []StepResult
	err     error
}

// RescueShell prints facts and opens the rescue shell on the console; it returns when the
// shell exits. The engine calls it for the rescue action and for nodeinit.break.
func (e *Env) RescueShell(facts string) error { return e.rescue(facts) }

// OnFail is what /init does after the failure screen: nodeinit.onfail=shell|reboot|poweroff|halt.
type OnFail string

// The onfail policies.
const (
	OnFailShell    OnFail = "shell"
	OnFailReboot   OnFail = "reboot"
	OnFailPowerOff OnFail = "poweroff"
	OnFailHalt     OnFail = "halt"
)

// DefaultOnFail is used when nodeinit.onfail is absent. Halt keeps the failure screen on
// every console for the operator to read, writes nothing more, and cannot turn a PXE
// reinstall into a reboot loop; a shell would need someone at the console and would leave an
// unattended root shell behind.
const DefaultOnFail = OnFailHalt

// ParseOnFail reads nodeinit.onfail from a kernel command line. Absent means DefaultOnFail;
// an unknown value is an error and DefaultOnFail is returned with it.
func ParseOnFail(cmdline string) (OnFail, error) {
	v, ok := LookupArg(cmdline, "nodeinit.onfail")
	if !ok {
		return DefaultOnFail, nil
	}
	switch p := OnFail(strings.ToLower(v)); p {
	case OnFailShell, OnFailReboot, OnFailPowerOff, OnFailHalt:
		return p, nil
	}
	return DefaultOnFail, fmt.Errorf("nodeinit.onfail=%q: want shell, reboot, poweroff or halt; using %s", v, DefaultOnFail)
}

// Fields splits a kernel command line the way the kernel does: on whitespace, with double
// quotes grouping and removed. Tokens after a bare "--" belong to the OS init and are dropped.
func Fields(cmdline string) []string {
	var (
		out    []string
		cur    strings.Builder
		quoted bool
		inTok  bool
	)
	flush := func() {
		if inTok {
			out = append(out, cur.String())
		}
		cur.Reset()
		inTok = false
	}
	for _, r := range cmdline {
		switch {
		case r == '"':
			quoted = !quoted
			inTok = true
		case !quoted && (r == ' ' || r == '\t' || r == '\n'):
			flush()
		default:
			cur.WriteRune(r)
			inTok = true
		}
	}
	flush()
	for i, f := range out {
		if f == "--" {
			return out[:i]
		}
	}
	return out
}

// LookupArg returns the last value of key on the command line ("-" and "_" are the same in
// keys). A bare flag has the value "".
func LookupArg(cmdline, key string) (string, bool) {
	want := normKey(key)
	var val string
	var found bool
	for _, f := range Fields(cmdline) {
		k, v, _ := strings.Cut(f, "=")
		if normKey(k) == want {
			val, found = v, true
		}
	}
	return val, found
}

// Values returns every value of key, in order (console= may be given several times).
func Values(cmdline, key string) []string {
	want := normKey(key)
	var vals []string
	for _, f := range Fields(cmdline) {
		if k, v, ok := strings.Cut(f, "="); ok && normKey(k) == want {
			vals = append(vals, v)
		}
	}
	return vals
}

func normKey(k string) string { return strings.ReplaceAll(k, "-", "_") }

// ConsoleNames returns the device names under /dev of every console= on the command line, in
// order and without repeats ("console=ttyS0,115200n8 console=tty0" gives ttyS0 and tty0).
// With none given it returns "console", the kernel's own choice.
func ConsoleNames(cmdline string) []string {
	var names []string
	seen := map[string]bool{}
	for _, v := range Values(cmdline, "console") {
		name, _, _ := strings.Cut(v, ",")
		name = strings.TrimPrefix(name, "/dev/")
		if name == "" || name == "null" || strings.ContainsAny(name, "/.") || seen[name] {
			continue
		}
		seen[name] = true
		names = append(names, name)
	}
	if len(names) == 0 {
		names = []string{"console"}
	}
	return names
}

// FailureScreenMarker starts every failure screen; tests wait for it on the serial console.
const FailureScreenMarker = "NODEINIT FAILURE"

// FailureScreen renders the full-screen failure message for err. The fix and the
// kernel argument come from the operator error (operr.Error) in err's chain.
// logPath names the saved log ("" when it could not be saved).
func FailureScreen(err error, policy OnFail, logPath string) string {
	d := operr.Describe(err)
	what, fix, arg := d.Message, d.Fix, d.Arg
	if err == nil {
		what = "unknown failure"
	}
	if fix == "" {
		fix = "Read the log above, correct the kernel command line or the machine, and boot again."
	}
	if arg == "" {
		arg = "(none: see how to fix)"
	}
	rule := strings.Repeat("=", 72)
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s\n  %s\n%s\n", rule, FailureScreenMarker, rule)
	fmt.Fprintf(&b, "  What went wrong:\n%s\n", indent(what))
	fmt.Fprintf(&b, "  How to fix:\n%s\n", indent(fix))
	fmt.Fprintf(&b, "  Kernel argument to add:\n%s\n", indent(arg))
	if logPath != "" {
		fmt.Fprintf(&b, "  Log saved to: %s\n", logPath)
	} else {
		b.WriteString("  Log: not saved (no persistent place was mounted)\n")
	}
	fmt.Fprintf(&b, "  Next: %s (nodeinit.onfail=%s; choose shell, reboot, poweroff or halt)\n", policyText(policy), policy)
	b.WriteString(rule + "\n")
	return b.String()
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = "    " + l
	}
	return strings.Join(lines, "\n")
}

func policyText(p OnFail) string {
	switch p {
	case OnFailShell:
		return "opening the rescue shell on the console; the machine reboots when it exits"
	case OnFailReboot:
		return "rebooting in 10 seconds"
	case OnFailPowerOff:
		return "powering off"
	default:
		return "halting; this screen stays"
	}
}
