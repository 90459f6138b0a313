package rescue

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"regexp"
)

func init() { register("grep", "[-ivnrclqEF] PATTERN [FILE...]", grep) }

// grep exits 0 when a line matched, 1 when none did, and 2 on an error.
func grep(c *call, args []string) error {
	fl := c.flags()
	ignoreCase := fl.Bool("i", false, "ignore case")
	g := grepper{c: c}
	fl.BoolVar(&g.invert, "v", false, "select non-matching lines")
	fl.BoolVar(&g.number, "n", false, "print line numbers")
	fl.BoolVar(&g.count, "c", false, "print only a count per file")
	fl.BoolVar(&g.list, "l", false, "print only the names of files that match")
	fl.BoolVar(&g.quiet, "q", false, "print nothing")
	recurse := fl.Bool("r", false, "search directories")
	fl.Bool("E", false, "extended regular expressions (always)")
	fixed := fl.Bool("F", false, "PATTERN is a fixed string")
	if err := parse(fl, args); err != nil {
		return err
	}
	if fl.NArg() == 0 {
		return usagef("missing PATTERN")
	}
	pattern, files := fl.Arg(0), fl.Args()[1:]
	if *fixed {
		pattern = regexp.QuoteMeta(pattern)
	}
	if *ignoreCase {
		pattern = "(?i)" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return usagef("%v", err)
	}
	g.re, g.names = re, len(files) > 1 || *recurse
	if len(files) == 0 {
		files = []string{"-"}
		if *recurse {
			files = []string{"."}
		}
	}
	for _, name := range files {
		g.walk(name, *recurse)
	}
	switch {
	case g.failed:
		return exitStatus(2)
	case !g.matched:
		return exitStatus(1)
	}
	return nil
}

// grepper is one grep run: its options and whether any line has matched.
type grepper struct {
	c                                  *call
	re                                 *regexp.Regexp
	invert, number, count, list, quiet bool
	names, matched, failed             bool
}

// walk greps the file root, or with recurse every regular file below the directory root.
func (g *grepper) walk(root string, recurse bool) {
	if root == "-" {
		g.report(g.file(root))
		return
	}
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			g.report(err)
		case d.IsDir() && !recurse:
			g.report(fmt.Errorf("%s: is a directory", path))
			return fs.SkipDir
		case d.IsDir(), !d.Type().IsRegular() && path != root: // a named file may be a link or a device
		default:
			g.report(g.file(path))
		}
		return nil
	})
}

func (g *grepper) report(err error) {
	if err != nil {
		fmt.Fprintf(g.c.stderr, "grep: %v\n", err)
		g.failed = true
	}
}

func (g *grepper) file(name string) error {
	f, err := g.c.open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return g.scan(f, name)
}

func (g *grepper) scan(r io.Reader, name string) error {
	prefix := ""
	if g.names {
		prefix = name + ":"
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	count := 0
	for n := 1; sc.Scan(); n++ {
		if g.re.Match(sc.Bytes()) == g.invert {
			continue
		}
		count++
		g.matched = true
		switch {
		case g.quiet || g.count:
		case g.list:
			fmt.Fprintln(g.c.stdout, name)
			return nil
		case g.number:
			fmt.Fprintf(g.c.stdout, "%s%d:%s\n", prefix, n, sc.Bytes())
		default:
			fmt.Fprintf(g.c.stdout, "%s%s\n", prefix, sc.Bytes())
		}
	}
	if g.count && !g.quiet {
		fmt.Fprintf(g.c.stdout, "%s%d\n", prefix, count)
	}
	return sc.Err()
}
