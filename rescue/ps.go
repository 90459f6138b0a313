package rescue

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

func init() { register("ps", "[-ef] [aux]", ps) }

// ps lists every process from /proc, whatever its flags ask for (-ef, aux): PID, parent,
// state and command line.
func ps(c *call, args []string) error {
	fs := c.flags()
	for _, f := range "aefuxw" {
		fs.Bool(string(f), false, "ignored: ps lists every process")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var pids []int
	for _, d := range dirs {
		if pid, err := strconv.Atoi(d.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	fmt.Fprintf(c.stdout, "%7s %7s S CMD\n", "PID", "PPID")
	for _, pid := range pids {
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue // it has exited
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		s := string(stat)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		rest := strings.Fields(s[end+1:])
		if len(rest) < 2 {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		cmd := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		if cmd == "" {
			cmd = "[" + s[open+1:end] + "]" // a kernel thread
		}
		fmt.Fprintf(c.stdout, "%7d %7s %s %s\n", pid, rest[1], rest[0], cmd)
	}
	return nil
}
