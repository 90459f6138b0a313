package initproc

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
)

// TestBootGCOnlyAPlainBootKeepsTheCollectorOff: Main starts with the
// collector off under bootHeapLimit; a boot plan leaves it so until the hand-off,
// any other plan (or none, after a failure) gets the runtime's defaults back.
func TestBootGCOnlyAPlainBootKeepsTheCollectorOff(t *testing.T) {
	prevPercent := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(prevPercent); debug.SetMemoryLimit(prevLimit) })

	for _, tc := range []struct {
		action      cmdline.Action
		wantPercent int
		wantLimit   int64
	}{
		{cmdline.ActionBoot, -1, bootHeapLimit},
		{cmdline.ActionInstall, 100, math.MaxInt64},
		{cmdline.ActionUpgrade, 100, math.MaxInt64},
		{"", 100, math.MaxInt64},
	} {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(bootHeapLimit)
		bootGC(tc.action)
		// Setting a value returns the one in force.
		if got := debug.SetGCPercent(-1); got != tc.wantPercent {
			t.Errorf("%q: GC percent %d, want %d", tc.action, got, tc.wantPercent)
		}
		if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
			t.Errorf("%q: memory limit %d, want %d", tc.action, got, tc.wantLimit)
		}
	}
}
