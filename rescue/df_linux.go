package rescue

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

func init() { register("df", "[-h] [-a] [PATH...]", df) }

// df prints the size and use of each mounted filesystem with blocks (-a: all of them), or of
// the filesystems holding the PATHs.
func df(c *call, args []string) error {
	fs := c.flags()
	hum := fs.Bool("h", false, "human-readable sizes")
	all := fs.Bool("a", false, "include filesystems without blocks (proc, sysfs, …)")
	if err := parse(fs, args); err != nil {
		return err
	}
	mounts, err := readMounts("/proc/self/mounts")
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		var chosen [][2]string
		for _, p := range fs.Args() {
			m, err := mountOf(mounts, p)
			if err != nil {
				return err
			}
			chosen = append(chosen, m)
		}
		mounts, *all = chosen, true
	}
	size := func(blocks, bsize uint64) string {
		if *hum {
			return human(blocks * bsize)
		}
		return strconv.FormatUint(blocks*bsize/1024, 10)
	}
	fmt.Fprintf(c.stdout, "%-20s %10s %10s %10s %4s %s\n", "Filesystem", "1K-blocks", "Used", "Available", "Use%", "Mounted on")
	for _, m := range mounts {
		var st unix.Statfs_t
		if err := unix.Statfs(m[1], &st); err != nil || st.Blocks == 0 && !*all {
			continue
		}
		bsize, used := uint64(st.Bsize), st.Blocks-st.Bfree
		pct := "-"
		if st.Blocks > 0 {
			pct = fmt.Sprintf("%d%%", (used*100+st.Blocks-1)/st.Blocks)
		}
		fmt.Fprintf(c.stdout, "%-20s %10s %10s %10s %4s %s\n", m[0], size(st.Blocks, bsize), size(used, bsize),
			size(st.Bavail, bsize), pct, m[1])
	}
	return nil
}

// readMounts returns the source and mount point of each line of a mounts file.
func readMounts(path string) ([][2]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts [][2]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := strings.Fields(sc.Text()); len(m) >= 2 {
			dir, err := strconv.Unquote(`"` + m[1] + `"`) // octal escapes: \040 is a space
			if err != nil {
				dir = m[1]
			}
			mounts = append(mounts, [2]string{m[0], dir})
		}
	}
	return mounts, sc.Err()
}

// mountOf is the mount that holds path: the last one on the longest prefix.
func mountOf(mounts [][2]string, path string) ([2]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return [2]string{}, err
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return [2]string{}, err
	}
	var best [2]string
	for _, m := range mounts {
		rel, err := filepath.Rel(m[1], abs)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && len(m[1]) >= len(best[1]) {
			best = m
		}
	}
	return best, nil
}
