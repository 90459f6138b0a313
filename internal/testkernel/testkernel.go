// Package testkernel finds, for tests, the Debian kernel's module tree that
// the QEMU fixture fetched (make fetch) under $NODEINIT_CACHE.
package testkernel

import (
	"os"
	"path/filepath"
	"testing"
)

// ModulesDir returns the cached kernel's lib/modules/<version> that holds
// the file rel (e.g. "modules.dep" or "kernel/net/802/garp.ko"), the newest
// one when there are several, or skips the test when there is none.
func ModulesDir(t testing.TB, rel string) string {
	t.Helper()
	cache := os.Getenv("NODEINIT_CACHE")
	if cache == "" {
		cache = "/var/cache/nodeinit"
	}
	dirs, _ := filepath.Glob(filepath.Join(cache, "root/lib/modules/*"))
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], rel)); err == nil {
			return dirs[i]
		}
	}
	t.Skipf("no cached kernel with %s under %s: run make fetch", rel, cache)
	return ""
}
