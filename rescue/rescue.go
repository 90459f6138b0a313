// Package rescue is the initramfs rescue shell and its commands, as library code linked into
// the nodeinit binary. The initramfs holds that one binary as /init and /bbin/<name> as
// symlinks to it; cmd/nodeinit calls Main with the name it was started as. So mkinitramfs
// needs no compiler.
//
// The shell is mvdan.cc/sh. cat, chmod, cp, find, ls, mkdir, more, mv and rm are u-root's
// pkg/core commands; the others are small commands of our own, one file each, with the flags
// an operator types in a rescue shell. The shell runs commands as processes found on $PATH,
// as any shell does, so a command that fails badly does not take the shell with it.
//
// Every command parses its whole command line before it has any effect, so tests run the
// parsing of mount, shutdown, ip and the like without touching the machine.
package rescue

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// command is one rescue command: the one-line usage after its name, and its function.
type command struct {
	usage string
	run   func(c *call, args []string) error
}

// commands are filled by each command's file, in init.
var commands = map[string]command{}

func register(name, usage string, run func(c *call, args []string) error) {
	commands[name] = command{usage: usage, run: run}
}

// Names lists every command name the package runs, sorted; the initramfs makes /bbin/<name>
// for each.
func Names() []string {
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Has tells whether name is one of Names.
func Has(name string) bool {
	_, ok := commands[name]
	return ok
}

// Main runs the command name with args (without the name itself) on os.Stdin, os.Stdout and
// os.Stderr, and returns its exit status. It never calls os.Exit.
func Main(name string, args []string) int {
	return run(name, args, os.Stdin, os.Stdout, os.Stderr)
}

// call is one run of a command: its name and where it reads and writes.
type call struct {
	name   string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is Main on the given streams.
func run(name string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "%s: not a rescue command (these are: %s)\n", name, strings.Join(Names(), " "))
		return 127
	}
	c := &call{name: name, stdin: stdin, stdout: stdout, stderr: stderr}
	err := cmd.run(c, args)
	var usage usageError
	var status exitStatus
	line := strings.TrimSpace("usage: " + name + " " + cmd.usage)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintln(stdout, line)
		return 0
	case errors.As(err, &status):
		return int(status)
	case errors.As(err, &usage):
		fmt.Fprintf(stderr, "%s: %s\n%s\n", name, usage, line)
		return 2
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, name+": ") {
		msg = name + ": " + msg
	}
	fmt.Fprintln(stderr, msg)
	return 1
}

// usageError is a command line the command does not take: exit status 2, with the usage.
type usageError string

func (e usageError) Error() string { return string(e) }

func usagef(format string, a ...any) error { return usageError(fmt.Sprintf(format, a...)) }

// exitStatus ends a command with a status and no message: grep that found nothing, a shell
// script's exit, a command that has already said what went wrong.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// flags returns an empty flag set for the call; parse reads the command line with it.
func (c *call) flags() *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parse parses args with fs. -h and --help give flag.ErrHelp (unless fs has an -h), and a
// bad flag is a usage error.
func parse(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(splitFlags(fs, args))
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError(err.Error())
}

// splitFlags turns the Unix forms -abc into -a -b -c and -n5 into -n 5, for the Go flag
// package, up to the first operand or "--".
func splitFlags(fs *flag.FlagSet, args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-" || a == "--" || !strings.HasPrefix(a, "-"):
			return append(out, args[i:]...)
		case strings.HasPrefix(a, "--"): // --help, or a long flag: the flag package takes both
			out = append(out, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			out = append(out, "-"+a[j:j+1])
			if f := fs.Lookup(a[j : j+1]); f == nil || isBool(f) {
				continue
			}
			if j+1 < len(a) {
				out = append(out, a[j+1:])
			} else if i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			break
		}
	}
	return out
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// operands parses a command line without flags (only -h and --help) and returns its operands.
func (c *call) operands(args []string) ([]string, error) {
	fs := c.flags()
	err := parse(fs, args)
	return fs.Args(), err
}

// open opens a file operand for reading; "-" is stdin.
func (c *call) open(name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(c.stdin), nil
	}
	return os.Open(name)
}

// human writes a byte count the short way, as df -h and free -h do: 512, 4.0K, 1.5G.
func human(n uint64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprint(n)
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%c", v, units[i])
}
