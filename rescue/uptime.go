package rescue

import (
	"fmt"
	"os"
	"strings"
	"time"
)

func init() { register("uptime", "", uptime) }

// uptime prints the time, how long the system has been up and the load averages.
func uptime(c *call, args []string) error {
	if _, err := c.operands(args); err != nil {
		return err
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return err
	}
	load, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return err
	}
	var secs float64
	if _, err := fmt.Sscan(string(up), &secs); err != nil {
		return fmt.Errorf("/proc/uptime: %w", err)
	}
	l := strings.Fields(string(load))
	if len(l) < 3 {
		return fmt.Errorf("/proc/loadavg: %q", load)
	}
	d := time.Duration(secs) * time.Second
	days, hm := int(d.Hours())/24, d%(24*time.Hour)
	fmt.Fprintf(c.stdout, " %s up %d days, %2d:%02d,  load average: %s, %s, %s\n", time.Now().Format("15:04:05"),
		days, int(hm.Hours()), int(hm.Minutes())%60, l[0], l[1], l[2])
	return nil
}
