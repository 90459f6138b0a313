// Command testos is the test node OS's /sbin/init: a tiny static program that
// runs as PID 1 in the node's overlay root after nodeinit's switch_root.
//
// On every boot it prints "TESTOS-START uptime=<seconds since kernel start>s",
// mounts /proc, /sys and /dev if needed, sets the hostname
// from /etc/hostname, and prints to /dev/console and /dev/ttyS0 one line
//
//	TESTOS version=<v> build=<b> slot=<a|b> hostname=<h> persisted=<p1,p2> mounts=<dir:fstype,…>
//
// then acts on instructions and prints the marker TESTOS-READY.
//
// Instructions come from /etc/testos/actions (persist it to keep it across
// boots), one per line, or from the kernel argument testos.action=a,b which
// replaces the file. On the command line, actions are separated by ',' and
// words by ':'; a word may hold %XX escapes (label%3ANODEUPD is label:NODEUPD):
//
//	write /etc/testos/written some text   write the text to the file and persist it
//	put /data/file some text              write the text to the file, not persisted
//	run /usr/sbin/nodeinit status         run a program, its output on the console,
//	                                      then TESTOS-RUN <program> exit=<code>
//	put /data/file some text              write the text to the file without persisting it
//	show /etc/hostname                    print the file (or a directory's entries) on one line
//	bless                                 mark this boot good (rename the loader entry)
//	crash                                 exit as PID 1: the kernel panics (boot counting test)
//	poweroff | reboot                     after TESTOS-READY
//
// Agreed locations (set up by nodeinit's normal boot before switch_root): the
// node-config partition at /run/nodeinit/config and the ESP at
// /run/nodeinit/esp. bless uses the boot package directly, so the node image
// needs no nodeinit binary.
//
// Build: CGO_ENABLED=0 go build -ldflags "-X main.version=1" -o build/testos ./testos
package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/nodeconfig"
)

// version is set at build time with -ldflags "-X main.version=N".
var version = "dev"

// Paths the node OS finds after nodeinit's switch_root.
const (
	ConfigMount = "/run/nodeinit/config"
	ESPMount    = "/run/nodeinit/esp"
	ActionsFile = "/etc/testos/actions"
	// ImageActionsFile is baked into an image and runs before any other actions.
	ImageActionsFile = "/etc/testos/image-actions"
	ReleaseFile      = "/etc/node-release"
	Marker           = "TESTOS-READY"
)

// action is one instruction.
type action struct {
	verb string
	args []string // for write: path, then the text words
}

// node is the view of the running system testos reports on; root is "/" on
// a real node and a temp dir in tests.
type node struct {
	root    string
	cmdline string
	mounts  string // contents of /proc/self/mounts
	out     io.Writer
}

func (n node) path(p string) string { return filepath.Join(n.root, p) }

// cmdlineValue returns the last value of key on a kernel command line.
func cmdlineValue(cmdline, key string) string {
	val := ""
	for _, tok := range strings.Fields(cmdline) {
		k, v, _ := strings.Cut(tok, "=")
		if strings.ReplaceAll(k, "-", "_") == strings.ReplaceAll(key, "-", "_") {
			val = strings.Trim(v, `"`)
		}
	}
	return val
}

// parseActions reads instructions, one a line; # starts a comment.
func parseActions(text string) ([]action, error) {
	var out []action
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		a := action{verb: f[0], args: f[1:]}
		switch a.verb {
		case "write", "put":
			if len(a.args) < 1 || !strings.HasPrefix(a.args[0], "/") {
				return nil, fmt.Errorf("line %d: %s needs an absolute path and text", n, a.verb)
			}
		case "run":
			if len(a.args) < 1 || !strings.HasPrefix(a.args[0], "/") {
				return nil, fmt.Errorf("line %d: run needs the absolute path of a program", n)
			}
		case "show":
			if len(a.args) != 1 || !strings.HasPrefix(a.args[0], "/") {
				return nil, fmt.Errorf("line %d: show needs one absolute path", n)
			}
		case "bless", "crash", "poweroff", "reboot":
		default:
			return nil, fmt.Errorf("line %d: unknown action %q (write, put, show, run, bless, crash, poweroff, reboot)", n, a.verb)
		}
		out = append(out, a)
	}
	return out, nil
}

// actions returns the image's own actions (ImageActionsFile, e.g. a crash baked into a
// broken release), then testos.action= from the command line if given, else the file.
func (n node) actions() ([]action, error) {
	var first []action
	if data, err := os.ReadFile(n.path(ImageActionsFile)); err == nil {
		if first, err = parseActions(string(data)); err != nil {
			return nil, err
		}
	}
	rest, err := n.configuredActions()
	return append(first, rest...), err
}

func (n node) configuredActions() ([]action, error) {
	if v := cmdlineValue(n.cmdline, "testos.action"); v != "" {
		return parseActions(cmdlineActions(v))
	}
	data, err := os.ReadFile(n.path(ActionsFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return parseActions(string(data))
}

// cmdlineActions turns the command-line form (actions separated by ',', words by ':',
// %XX escapes inside a word) into the file form, one action a line.
func cmdlineActions(v string) string {
	var lines []string
	for _, act := range strings.Split(v, ",") {
		words := strings.Split(act, ":")
		for i, w := range words {
			if u, err := url.PathUnescape(w); err == nil {
				words[i] = u
			}
		}
		lines = append(lines, strings.Join(words, " "))
	}
	return strings.Join(lines, "\n")
}

// release reads VERSION= (or the first line) of /etc/node-release.
func (n node) release() string {
	data, err := os.ReadFile(n.path(ReleaseFile))
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "VERSION="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return strings.TrimSpace(lines[0])
}

func (n node) hostname() string {
	data, err := os.ReadFile(n.path("/etc/hostname"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// mountList is "dir:fstype" for every mount, in mount order.
func mountList(mounts string) []string {
	var out []string
	for _, l := range strings.Split(mounts, "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 {
			out = append(out, f[1]+":"+f[2])
		}
	}
	return out
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ",")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// startLine is the first line testos prints, e.g. "TESTOS-START uptime=3.141s":
// how long after kernel start the boot handed over to the node OS's init
// (bench/boot reads it).
func startLine(uptime time.Duration) string {
	return fmt.Sprintf("TESTOS-START uptime=%.3fs", uptime.Seconds())
}

// report is the TESTOS line.
func (n node) report() string {
	persisted, err := nodeconfig.Persisted(n.path(ConfigMount))
	if err != nil {
		persisted = []string{"error"}
	}
	v := n.release()
	if v == "" {
		v = version
	}
	return fmt.Sprintf("TESTOS version=%s build=%s slot=%s hostname=%s persisted=%s mounts=%s",
		v, version, orUnknown(cmdlineValue(n.cmdline, "nodeinit.slot")), orUnknown(n.hostname()),
		orNone(persisted), orNone(mountList(n.mounts)))
}

// run performs the boot-time actions before the marker and returns the final
// one (poweroff or reboot) if any. crash returns errCrash.
func (n node) run(acts []action) (final string, err error) {
	for _, a := range acts {
		switch a.verb {
		case "write":
			p, text := a.args[0], strings.Join(a.args[1:], " ")
			if err := os.MkdirAll(filepath.Dir(n.path(p)), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(n.path(p), []byte(text+"\n"), 0o644); err != nil {
				return "", fmt.Errorf("write %s: %w", p, err)
			}
			if err := nodeconfig.Persist(n.path(ConfigMount), n.root, p); err != nil {
				return "", fmt.Errorf("write %s: %w", p, err)
			}
			fmt.Fprintf(n.out, "TESTOS-WROTE %s\n", p)
		case "put":
			p, text := a.args[0], strings.Join(a.args[1:], " ")
			if err := os.MkdirAll(filepath.Dir(n.path(p)), 0o755); err != nil {
				return "", err
			}
			if err := os.WriteFile(n.path(p), []byte(text+"\n"), 0o644); err != nil {
				return "", fmt.Errorf("put %s: %w", p, err)
			}
			fmt.Fprintf(n.out, "TESTOS-PUT %s\n", p)
		case "run":
			fmt.Fprintf(n.out, "TESTOS-RUN %s exit=%d\n", a.args[0], n.runProgram(a.args))
		case "show":
			fmt.Fprintln(n.out, n.show(a.args[0]))
		case "bless":
			slot := cmdlineValue(n.cmdline, "nodeinit.slot")
			if err := boot.Bless(boot.DirFS(n.path(ESPMount)), slot); err != nil {
				return "", err
			}
			fmt.Fprintf(n.out, "TESTOS-BLESSED slot=%s\n", slot)
		case "crash":
			fmt.Fprintln(n.out, "TESTOS-CRASH")
			return "", errCrash
		case "poweroff", "reboot":
			final = a.verb
		}
	}
	return final, nil
}

var errCrash = fmt.Errorf("crash requested")

// runProgram runs argv with its output on the console and returns its exit code
// (-1 when it could not start).
func (n node) runProgram(argv []string) int {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = n.out, n.out
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit):
		return exit.ExitCode()
	default:
		fmt.Fprintf(n.out, "TESTOS-ERROR run %s: %v\n", argv[0], err)
		return -1
	}
}

// show renders a file, or a directory's entries, as one line: TESTOS-SHOW <path> <content>.
func (n node) show(p string) string {
	full := n.path(p)
	if entries, err := os.ReadDir(full); err == nil {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return fmt.Sprintf("TESTOS-SHOW %s dir=%s", p, strings.Join(names, ","))
	}
	data, err := os.ReadFile(full)
	if err != nil {
		return fmt.Sprintf("TESTOS-SHOW %s missing", p)
	}
	return fmt.Sprintf("TESTOS-SHOW %s %q", p, string(data))
}

// boot is everything testos does on one boot, minus the power action.
func (n node) boot() (final string, err error) {
	fmt.Fprintln(n.out, n.report())
	acts, err := n.actions()
	if err != nil {
		fmt.Fprintf(n.out, "TESTOS-ERROR actions: %v\n", err)
	}
	final, err = n.run(acts)
	if err == errCrash {
		return "", err
	}
	if err != nil {
		fmt.Fprintf(n.out, "TESTOS-ERROR %v\n", err)
	}
	fmt.Fprintln(n.out, Marker)
	return final, nil
}

// consoles opens /dev/console and /dev/ttyS0 for writing (each once).
func consoles(root string) io.Writer {
	var ws []io.Writer
	var seen []string
	names := []string{"/dev/console", "/dev/ttyS0"}
	// console=ttyS0 makes /dev/console the serial port already: write once.
	if active, err := os.ReadFile(filepath.Join(root, "/sys/class/tty/console/active")); err == nil &&
		slices.Contains(strings.Fields(string(active)), "ttyS0") {
		names = names[:1]
	}
	for _, p := range names {
		real, err := filepath.EvalSymlinks(filepath.Join(root, p))
		if err != nil || slices.Contains(seen, real) {
			continue
		}
		f, err := os.OpenFile(real, os.O_WRONLY|syscall.O_NOCTTY, 0)
		if err != nil {
			continue
		}
		seen = append(seen, real)
		ws = append(ws, f)
	}
	if len(ws) == 0 {
		return os.Stdout
	}
	return io.MultiWriter(ws...)
}

func main() {
	os.Exit(initMain())
}
