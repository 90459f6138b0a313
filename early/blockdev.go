package early

import (
	"context"
	"os"
	"slices"
	"time"
)

// WaitBlockDevices polls sysBlock (normally /sys/block) until its entries have not changed for
// quiet, or until max has passed or ctx is done, and returns the names seen last. Drivers
// probe disks asynchronously after their module loads, and there is no udev to wait for.
func WaitBlockDevices(ctx context.Context, sysBlock string, quiet, max time.Duration) []string {
	deadline := time.Now().Add(max)
	last := listDir(sysBlock)
	stableSince := time.Now()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return last
		case <-time.After(50 * time.Millisecond):
		}
		now := listDir(sysBlock)
		if !slices.Equal(now, last) {
			last, stableSince = now, time.Now()
			continue
		}
		if time.Since(stableSince) >= quiet {
			break
		}
	}
	return last
}

// BlockDevices returns the names under sysBlock (normally /sys/block) now.
func BlockDevices(sysBlock string) []string { return listDir(sysBlock) }

// WaitBlockChange polls sysBlock until its entries differ from last, and
// reports whether they did before the deadline (or ctx ended).
func WaitBlockChange(ctx context.Context, sysBlock string, last []string, deadline time.Time) bool {
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
		if !slices.Equal(listDir(sysBlock), last) {
			return true
		}
	}
	return false
}

func listDir(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
