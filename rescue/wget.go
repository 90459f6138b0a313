package rescue

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
)

func init() { register("wget", "[-q] [-O FILE|-] URL", wget) }

// wget saves URL in FILE (default: the URL's last path element, or index.html); -O - writes
// to stdout.
func wget(c *call, args []string) error {
	fs := c.flags()
	out := fs.String("O", "", "output file, - for stdout")
	quiet := fs.Bool("q", false, "quiet")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one URL")
	}
	raw := fs.Arg(0)
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return usagef("%v", err)
	}
	name := *out
	if name == "" {
		name = path.Base(u.Path)
		if name == "/" || name == "." {
			name = "index.html"
		}
	}
	resp, err := http.Get(u.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	if name == "-" {
		_, err := io.Copy(c.stdout, resp.Body)
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if !*quiet {
		fmt.Fprintf(c.stderr, "wget: %s: %d bytes saved in %s\n", u, n, name)
	}
	return nil
}
