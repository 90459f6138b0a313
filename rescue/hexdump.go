package rescue

import (
	"encoding/hex"
	"io"
)

func init() { register("hexdump", "[-C] [FILE...]", hexdump) }

// hexdump always prints the canonical form of hexdump -C.
func hexdump(c *call, args []string) error {
	fs := c.flags()
	fs.Bool("C", false, "canonical hex+ASCII (always)")
	if err := parse(fs, args); err != nil {
		return err
	}
	files := fs.Args()
	if len(files) == 0 {
		files = []string{"-"}
	}
	d := hex.Dumper(c.stdout)
	for _, name := range files {
		f, err := c.open(name)
		if err != nil {
			return err
		}
		_, err = io.Copy(d, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return d.Close()
}
