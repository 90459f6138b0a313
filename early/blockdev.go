package early

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// WaitBlockDevices polls sysBlock (normally /sys/block) until its entries have not changed for
// quiet and no announced disk is still on its way (PendingDisks of the sysfs above
// sysBlock), or until max has passed or ctx is done, and returns the names seen last.
// Drivers probe disks asynchronously after their module loads, and there is no udev to
// wait for.
func WaitBlockDevices(ctx context.Context, sysBlock string, quiet, max time.Duration) []string {
	sys := filepath.Dir(sysBlock)
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
		if time.Since(stableSince) >= quiet && len(PendingDisks(sys)) == 0 {
			break
		}
	}
	return last
}

// PendingDisks returns the sysfs paths of the USB mass-storage interfaces under sys
// (normally /sys) that usb-storage or uas has bound but that have no block device yet.
// usb-storage waits delay_use (a second by default) before it scans a stick, longer
// than any quiet period, so a disk list that looks settled may still lack the stick:
// such an interface is a disk announced and on its way. An interface no driver has
// bound is not pending: nothing will come of it.
func PendingDisks(sys string) []string {
	devs, _ := os.ReadDir(filepath.Join(sys, "bus", "usb", "devices"))
	var pending []string
	for _, d := range devs {
		dir := filepath.Join(sys, "bus", "usb", "devices", d.Name())
		if class, _ := os.ReadFile(filepath.Join(dir, "bInterfaceClass")); strings.TrimSpace(string(class)) != "08" {
			continue
		}
		driver, err := os.Readlink(filepath.Join(dir, "driver"))
		if err != nil || (filepath.Base(driver) != "usb-storage" && filepath.Base(driver) != "uas") {
			continue
		}
		if real, err := filepath.EvalSymlinks(dir); err == nil && !hasBlockDevice(real) {
			pending = append(pending, dir)
		}
	}
	return pending
}

// hasBlockDevice reports whether a "block" directory (a disk's) lies under dir, within
// the depth of host/target/device/block below a USB interface.
func hasBlockDevice(dir string) bool {
	found := false
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || found {
			return fs.SkipDir
		}
		if e.IsDir() && e.Name() == "block" && path != dir {
			found = true
			return fs.SkipAll
		}
		if e.IsDir() && strings.Count(strings.TrimPrefix(path, dir), "/") >= 5 {
			return fs.SkipDir
		}
		return nil
	})
	return found
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
