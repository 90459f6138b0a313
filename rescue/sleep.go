package rescue

import (
	"strconv"
	"time"
)

func init() { register("sleep", "SECONDS[s|m|h]...", sleep) }

// sleep waits the sum of its operands: seconds (fractions too) or Go durations (1m30s).
func sleep(c *call, args []string) error {
	operands, err := c.operands(args)
	if err != nil {
		return err
	}
	if len(operands) == 0 {
		return usagef("missing SECONDS")
	}
	var total time.Duration
	for _, a := range operands {
		d, err := time.ParseDuration(a)
		if s, ferr := strconv.ParseFloat(a, 64); ferr == nil && s >= 0 {
			d, err = time.Duration(s*float64(time.Second)), nil
		}
		if err != nil || d < 0 {
			return usagef("bad duration %q", a)
		}
		total += d
	}
	time.Sleep(total)
	return nil
}
