package rescue

import (
	"errors"
	"flag"
	"strings"

	"github.com/u-root/u-root/pkg/core"
	"github.com/u-root/u-root/pkg/core/cat"
	"github.com/u-root/u-root/pkg/core/chmod"
	"github.com/u-root/u-root/pkg/core/cp"
	"github.com/u-root/u-root/pkg/core/find"
	"github.com/u-root/u-root/pkg/core/ls"
	"github.com/u-root/u-root/pkg/core/mkdir"
	"github.com/u-root/u-root/pkg/core/mv"
	"github.com/u-root/u-root/pkg/core/rm"
)

// u-root's library commands. more is cat: the console is a serial line with TERM=dumb,
// where a pager has no screen to fill.
func init() {
	for name, c := range map[string]struct {
		usage string
		new   func() core.Command
	}{
		"cat":   {"[FILE...]", cat.New},
		"more":  {"[FILE...]", cat.New},
		"chmod": {"MODE FILE...", chmod.New},
		"cp":    {"[-rf] SOURCE... DEST", cp.New},
		"find":  {"[-name GLOB] [-type f|d|l] [-l] DIR", find.New},
		"ls":    {"[-laRFhS] [FILE...]", ls.New},
		"mkdir": {"[-p] [-m MODE] DIR...", mkdir.New},
		"mv":    {"SOURCE... DEST", mv.New},
		"rm":    {"[-rfv] FILE...", rm.New},
	} {
		register(name, c.usage, uroot(c.new))
	}
}

// uroot runs a u-root core command on the call's streams.
func uroot(newCommand func() core.Command) func(c *call, args []string) error {
	return func(c *call, args []string) error {
		cmd := newCommand()
		cmd.SetIO(c.stdin, c.stdout, c.stderr)
		err := cmd.Run(args...)
		switch {
		case errors.Is(err, flag.ErrHelp):
			return nil // it has printed its usage
		case err != nil && strings.HasPrefix(err.Error(), "flag "):
			return exitStatus(2) // it has printed the bad flag and its usage
		}
		return err
	}
}
