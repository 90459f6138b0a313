package rescue

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

func init() {
	const usage = "[-c COMMAND [NAME [ARG...]] | FILE [ARG...]]"
	register("sh", usage, shell)
	register("gosh", usage, shell)
}

// shell runs sh -c, a script file, or (with no operands) the interactive rescue shell.
func shell(c *call, args []string) error {
	fs := c.flags()
	var script *string
	fs.Func("c", "run COMMAND", func(s string) error { script = &s; return nil })
	if err := parse(fs, args); err != nil {
		return err
	}
	rest := fs.Args()
	if script == nil && len(rest) == 0 {
		return interactive(c)
	}
	var src io.Reader
	name := "sh"
	switch {
	case script != nil:
		src = strings.NewReader(*script)
		if len(rest) > 0 {
			rest = rest[1:] // $0 is not settable in the interpreter
		}
	default:
		f, err := os.Open(rest[0])
		if err != nil {
			return err
		}
		defer f.Close()
		src, name, rest = f, rest[0], rest[1:]
	}
	prog, err := syntax.NewParser().Parse(src, name)
	if err != nil {
		fmt.Fprintf(c.stderr, "%s: %v\n", c.name, err)
		return exitStatus(2)
	}
	r, err := interp.New(interp.StdIO(c.stdin, c.stdout, c.stderr), interp.Params(append([]string{"--"}, rest...)...))
	if err != nil {
		return err
	}
	return shellStatus(r.Run(context.Background(), prog))
}

// interactive prompts with $PS1 (default "rescue# ") and runs each line, after errors too,
// until exit or the end of input, and returns the last status. Multi-line constructs prompt
// with $PS2. Input is read plainly, a line at a time: the console is a serial line.
func interactive(c *call) error {
	// Ctrl-C stops the command in the foreground, not the shell: a caught signal (unlike an
	// ignored one) is back to its default in the commands the shell starts.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)

	// The parser and the commands share stdin, as on a terminal. The interpreter gives
	// commands a reader other than a file through a pipe that it fills from the whole reader,
	// so such a reader (a test's) is put behind a pipe of our own.
	stdin, ok := c.stdin.(*os.File)
	if !ok {
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		defer pr.Close()
		go func() {
			io.Copy(pw, c.stdin)
			pw.Close()
		}()
		stdin = pr
	}
	r, err := interp.New(interp.Interactive(true), interp.StdIO(stdin, c.stdout, c.stderr))
	if err != nil {
		return err
	}
	prompt := func(name, def string) {
		if v, ok := r.Vars[name]; ok {
			def = v.String()
		} else if v := r.Env.Get(name); v.IsSet() {
			def = v.String()
		}
		fmt.Fprint(c.stdout, def)
	}
	parser := syntax.NewParser()
	var last error
	for {
		prompt("PS1", "rescue# ")
		exited := false
		err := parser.Interactive(lineReader{stdin}, func(stmts []*syntax.Stmt) bool {
			if parser.Incomplete() {
				prompt("PS2", "> ")
				return true
			}
			for _, stmt := range stmts {
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt) // Ctrl-C ends loops too
				last = shellStatus(r.Run(ctx, stmt))
				if ctx.Err() != nil {
					last = exitStatus(130) // 128 + SIGINT, as sh has it
				}
				stop()
				if _, ok := last.(exitStatus); last != nil && !ok {
					fmt.Fprintf(c.stderr, "%s: %v\n", c.name, last)
					last = exitStatus(1)
				}
				if r.Exited() {
					exited = true
					return false
				}
			}
			prompt("PS1", "rescue# ")
			return true
		})
		if err == nil || exited {
			return last
		}
		fmt.Fprintf(c.stderr, "%s: %v\n", c.name, err) // a syntax error: the shell goes on
		last = exitStatus(2)
	}
}

// shellStatus turns the interpreter's exit status into ours.
func shellStatus(err error) error {
	if s, ok := interp.IsExitStatus(err); ok {
		return exitStatus(s)
	}
	return err
}

// lineReader gives the parser at most one line per Read, read a byte at a time, as sh reads a
// terminal or pipe: no input past the line is taken from the commands that read stdin
// themselves, and a syntax error costs only its own line.
type lineReader struct{ r io.Reader }

func (l lineReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := l.r.Read(p[n : n+1])
		n += m
		if err != nil {
			return n, err
		}
		if m == 1 && p[n-1] == '\n' {
			break
		}
	}
	return n, nil
}
