// Command nodeinit is the operator CLI: it previews plans, builds the initramfs,
// builds and signs image bundles, builds install media and runs online upgrades.
//
// It is also everything the initramfs runs, chosen by the name it is started as:
// as /init it is PID 1 (package initproc), and as one of the rescue shell's
// commands (/bbin/ls, /bbin/gosh, …; package rescue) it is that command. So
// `nodeinit mkinitramfs` puts its own binary in, and needs no compiler.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodeinit/nodeinit/initproc"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/rescue"
)

// command is one subcommand: it parses its own flags and calls a package.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) error
}

// commands is filled by one file per subcommand.
var commands = map[string]command{}

func register(name, summary string, run func(args []string, stdout, stderr io.Writer) error) {
	commands[name] = command{summary: summary, run: run}
}

func main() {
	switch name := filepath.Base(os.Args[0]); {
	case name == "init":
		initproc.Main()
	case rescue.Has(name):
		os.Exit(rescue.Main(name, os.Args[1:]))
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		printError(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return operr.New("no command given", "", "nodeinit COMMAND [flags] [arguments], e.g. nodeinit status", "")
		}
		return nil
	}
	if strings.HasPrefix(args[0], "-") {
		return operr.New(fmt.Sprintf("flag %s before the command", args[0]), "",
			"name the command first and put its flags after it, e.g. nodeinit plan --json --cmdline \"…\"", "")
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(stderr)
		return operr.New(fmt.Sprintf("unknown command %q", args[0]), "", "use one of the commands listed above; nodeinit COMMAND -h shows its flags", "")
	}
	err := c.run(args[1:], stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the flag set printed the usage; asking for it is no error
	}
	return err
}

func usage(w io.Writer) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("usage: nodeinit COMMAND [flags] [arguments]\n\n" +
		"Flags may stand before, between or after a command's arguments; \"--\" ends them.\n\ncommands:\n")
	for _, n := range names {
		fmt.Fprintf(&b, "  %-12s %s\n", n, commands[n].summary)
	}
	io.WriteString(w, b.String())
}

// printError shows an error the way the failure screen does: the message, then
// the operator error's fix and kernel argument on lines of their own.
func printError(w io.Writer, err error) {
	msg := err.Error()
	fmt.Fprintln(w, "nodeinit:", msg)
	if strings.Contains(msg, "\nfix: ") {
		return // already laid out (plan's refusal)
	}
	d := operr.Describe(err)
	if d.Fix != "" {
		fmt.Fprintln(w, "fix:", d.Fix)
	}
	if d.Arg != "" {
		fmt.Fprintln(w, "kernel argument:", d.Arg)
	}
}
