package rescue

import (
	"flag"
	"fmt"
	"strings"
)

func init() { register("echo", "[-n] [WORD...]", echo) }

// echo takes only -n: any other word, dashed or not, is printed.
func echo(c *call, args []string) error {
	if len(args) == 1 && args[0] == "--help" {
		return flag.ErrHelp
	}
	end := "\n"
	for len(args) > 0 && args[0] == "-n" {
		end, args = "", args[1:]
	}
	_, err := fmt.Fprint(c.stdout, strings.Join(args, " ")+end)
	return err
}
