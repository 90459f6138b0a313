package rescue

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func init() { register("free", "[-m | -h]", free) }

// free prints memory and swap use from /proc/meminfo, in KiB (-m MiB, -h human).
func free(c *call, args []string) error {
	fs := c.flags()
	mib := fs.Bool("m", false, "in MiB")
	hum := fs.Bool("h", false, "human-readable")
	if err := parse(fs, args); err != nil {
		return err
	}
	m, err := meminfo("/proc/meminfo")
	if err != nil {
		return err
	}
	show := func(kib uint64) string {
		switch {
		case *hum:
			return human(kib * 1024)
		case *mib:
			return strconv.FormatUint(kib/1024, 10)
		}
		return strconv.FormatUint(kib, 10)
	}
	cache := m["Buffers"] + m["Cached"] + m["SReclaimable"]
	used := m["MemTotal"] - m["MemFree"] - cache
	fmt.Fprintf(c.stdout, "%-6s %11s %11s %11s %11s %11s %11s\n", "", "total", "used", "free", "shared", "buff/cache", "available")
	fmt.Fprintf(c.stdout, "%-6s %11s %11s %11s %11s %11s %11s\n", "Mem:", show(m["MemTotal"]), show(used), show(m["MemFree"]),
		show(m["Shmem"]), show(cache), show(m["MemAvailable"]))
	fmt.Fprintf(c.stdout, "%-6s %11s %11s %11s\n", "Swap:", show(m["SwapTotal"]), show(m["SwapTotal"]-m["SwapFree"]), show(m["SwapFree"]))
	return nil
}

// meminfo reads /proc/meminfo's "Name: N kB" lines, in KiB.
func meminfo(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if fields := strings.Fields(value); ok && len(fields) > 0 {
			m[name], _ = strconv.ParseUint(fields[0], 10, 64)
		}
	}
	return m, sc.Err()
}
