package rescue

import (
	"os"
	"path/filepath"
)

func init() { register("ln", "[-sf] TARGET [LINK] | [-sf] TARGET... DIR", ln) }

func ln(c *call, args []string) error {
	fs := c.flags()
	symbolic := fs.Bool("s", false, "make symbolic links")
	force := fs.Bool("f", false, "replace existing links")
	if err := parse(fs, args); err != nil {
		return err
	}
	targets, dest := fs.Args(), "."
	switch len(targets) {
	case 0:
		return usagef("missing TARGET")
	case 1:
	default:
		targets, dest = targets[:len(targets)-1], targets[len(targets)-1]
	}
	st, err := os.Stat(dest)
	dir := err == nil && st.IsDir()
	if len(targets) > 1 && !dir {
		return usagef("%s is not a directory", dest)
	}
	link := os.Link
	if *symbolic {
		link = os.Symlink
	}
	for _, t := range targets {
		name := dest
		if dir {
			name = filepath.Join(dest, filepath.Base(t))
		}
		if *force {
			os.Remove(name)
		}
		if err := link(t, name); err != nil {
			return err
		}
	}
	return nil
}
