package rescue

import (
	"bufio"
	"fmt"
	"io"

	"github.com/nodeinit/nodeinit/internal/lazyre"
)

func init() {
	register("head", "[-n LINES] [FILE...]", func(c *call, args []string) error { return lines(c, args, head) })
	register("tail", "[-n LINES] [FILE...]", func(c *call, args []string) error { return lines(c, args, tail) })
}

// oldCount is the old form -5 of -n 5.
var oldCount = lazyre.New(`^-[0-9]+$`)

// lines is head and tail: pick writes the chosen n lines of r.
func lines(c *call, args []string, pick func(r io.Reader, w io.Writer, n int) error) error {
	if len(args) > 0 && oldCount().MatchString(args[0]) {
		args = append([]string{"-n", args[0][1:]}, args[1:]...)
	}
	fs := c.flags()
	n := fs.Int("n", 10, "lines")
	if err := parse(fs, args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	for i, name := range files {
		if len(files) > 1 {
			if i > 0 {
				fmt.Fprintln(c.stdout)
			}
			fmt.Fprintf(c.stdout, "==> %s <==\n", name)
		}
		f, err := c.open(name)
		if err != nil {
			return err
		}
		err = pick(f, c.stdout, *n)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

func head(r io.Reader, w io.Writer, n int) error {
	br := bufio.NewReader(r)
	for ; n > 0; n-- {
		line, err := br.ReadString('\n')
		io.WriteString(w, line)
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
	return nil
}

func tail(r io.Reader, w io.Writer, n int) error {
	if n <= 0 {
		return nil
	}
	ring := make([]string, 0, n)
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if len(ring) == n {
				ring = append(ring[:0], ring[1:]...)
			}
			ring = append(ring, line)
		}
		if err == io.EOF {
			break
		} else if err != nil {
			return err
		}
	}
	for _, line := range ring {
		io.WriteString(w, line)
	}
	return nil
}
