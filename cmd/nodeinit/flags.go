package main

import (
	"errors"
	"flag"
	"strings"

	"github.com/nodeinit/nodeinit/operr"
)

// parseFlags parses args into fs with the flags allowed before, between and after
// the positional arguments, as operators type them (`image sign DIR --key K`).
// The standard flag package stops at the first positional argument and would
// leave every later flag in fs.Args(), unparsed. "--" ends the flags: whatever
// follows it is positional, even when it starts with "-". A lone "-" is positional.
//
// Every subcommand parses with it, so the rule is the same for all of them. Errors
// other than -h (flag.ErrHelp, returned as is) are usage errors with a fix.
func parseFlags(fs *flag.FlagSet, args []string) error {
	flags, positional, complete := splitFlags(fs, args)
	// When the last flag lacks its value, Parse must see it last and say so,
	// not take the "--" that ends the flags for the value.
	if complete {
		flags = append(append(flags, "--"), positional...)
	}
	err := fs.Parse(flags)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError(fs.Name(), err.Error(), "`nodeinit "+fs.Name()+" -h` lists its flags")
}

// splitFlags moves the flags in args, each with its value, ahead of the positional
// arguments, keeping the order within each. Whether a flag takes the next argument
// as its value is asked of fs: a boolean flag never does (it is set with -b or
// -b=false), a flag written -f=v already holds it. An unknown flag stays alone for
// fs.Parse to report. complete is false when the last argument is a flag that
// needs a value.
func splitFlags(fs *flag.FlagSet, args []string) (flags, positional []string, complete bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(positional, args[i+1:]...), true
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, a)
			continue
		}
		flags = append(flags, a)
		name, _, inline := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(name)
		if inline || f == nil || isBoolFlag(f) {
			continue
		}
		if i+1 == len(args) {
			return flags, positional, false
		}
		i++
		flags = append(flags, args[i])
	}
	return flags, positional, true
}

// isBoolFlag tells a flag that needs no value, as the flag package does.
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// usageError is a command line that cmd cannot run: what is wrong with it, and in
// fix what to write instead. It is an operator error, so the fix is printed on a
// line of its own.
func usageError(cmd, what, fix string) error {
	return operr.New(cmd+": "+what, "", fix, "")
}
