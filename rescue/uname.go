package rescue

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

func init() { register("uname", "[-asnrvm]", uname) }

// uname prints the kernel name (-s, the default), host name (-n), release (-r), version (-v)
// and machine (-m), or all of them (-a).
func uname(c *call, args []string) error {
	fs := c.flags()
	show := map[rune]*bool{}
	for _, f := range "asnrvm" {
		show[f] = fs.Bool(string(f), false, "")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected %q", fs.Arg(0))
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return err
	}
	var out []string
	for i, v := range [][]byte{u.Sysname[:], u.Nodename[:], u.Release[:], u.Version[:], u.Machine[:]} {
		if *show['a'] || *show[rune("snrvm"[i])] || i == 0 && fs.NFlag() == 0 {
			out = append(out, unix.ByteSliceToString(v))
		}
	}
	fmt.Fprintln(c.stdout, strings.Join(out, " "))
	return nil
}
