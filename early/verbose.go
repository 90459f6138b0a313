package early

import "github.com/nodeinit/nodeinit/cmdline"

// verbose tells whether the command line asks for nodeinit.debug, read by
// the one command-line parser. Early setup runs before the engine parses the
// line and must not stop on it: a line the parser refuses gives false (the
// engine then shows the parser's error).
func verbose(line string) bool {
	p, err := cmdline.Parse(line)
	return err == nil && p.Node.Debug
}
