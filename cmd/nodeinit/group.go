package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// group is a command made of subcommands (image, mkmedia): the subcommand's name
// comes right after the command's, and its flags and arguments after that, in any
// order (parseFlags).
type group struct {
	name    string // the command, e.g. "image"
	usage   string // shown for -h and before an unknown or missing subcommand
	example string // a whole command line, shown in hints
	subs    map[string]func(args []string, stdout, stderr io.Writer) error
}

func (g group) names() string {
	names := make([]string, 0, len(g.subs))
	for n := range g.subs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, "|")
}

// run dispatches args[0]. A flag ahead of the subcommand is refused, not guessed
// at: only the subcommand knows whether that flag takes a value.
func (g group) run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		io.WriteString(stderr, g.usage)
		return usageError(g.name, "no subcommand given", fmt.Sprintf("nodeinit %s %s …, e.g. %s", g.name, g.names(), g.example))
	}
	switch a := args[0]; {
	case a == "-h" || a == "-help" || a == "--help":
		io.WriteString(stderr, g.usage)
		return nil
	case strings.HasPrefix(a, "-"):
		return usageError(g.name, fmt.Sprintf("flag %s before the subcommand", a),
			fmt.Sprintf("name the subcommand (%s) first and put the flags after it, e.g. %s", g.names(), g.example))
	}
	run, ok := g.subs[args[0]]
	if !ok {
		io.WriteString(stderr, g.usage)
		return usageError(g.name, fmt.Sprintf("unknown subcommand %q", args[0]), fmt.Sprintf("use one of %s, e.g. %s", g.names(), g.example))
	}
	return run(args[1:], stdout, stderr)
}
