package kmod

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestFilesystemSharesALoadInFlight: callers that come while a type's driver
// is loading wait for that load and get its result, instead of loading again;
// a call after it has ended loads afresh (the type may still be missing).
func TestFilesystemSharesALoadInFlight(t *testing.T) {
	const fstype = "nodeinit-test-fs" // never in /proc/filesystems
	var loads, active atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{})
	errNoDriver := errors.New("no driver")
	orig := loadDriver
	t.Cleanup(func() { loadDriver = orig })
	loadDriver = func(got string) error {
		if got != fstype {
			t.Errorf("loaded %q, want %q", got, fstype)
		}
		if active.Add(1) > 1 {
			t.Errorf("a second load of %s started while one was in flight", got)
		}
		defer active.Add(-1)
		if loads.Add(1) == 1 {
			close(started)
		}
		<-release
		return errNoDriver
	}

	Preload(fstype)
	<-started // the preload is loading
	const callers = 5
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = Filesystem(fstype) }()
	}
	// Let the callers reach the in-flight load; the fake fails the test if
	// any of them starts a second one.
	for range 1000 {
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, errNoDriver) {
			t.Errorf("caller %d got %v, want the load's error", i, err)
		}
	}
	n := loads.Load()
	if err := Filesystem(fstype); !errors.Is(err, errNoDriver) {
		t.Fatalf("a call after the load ended: %v", err)
	}
	if loads.Load() != n+1 {
		t.Fatalf("a call after the load ended did not load again (%d loads before, %d after)", n, loads.Load())
	}
}
