// Package qemutests boots Debian's cloud kernel with the nodeinit initramfs in QEMU (TCG) and
// asserts on the serial console. The kernel, OVMF and systemd-boot come from the cache that
// `make fetch` fills (NODEINIT_CACHE, default /var/cache/nodeinit).
package qemutests

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

var (
	buildOnce sync.Once
	built     string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// artifacts returns the cached Debian files, fetching them when missing; the test is
// skipped only when they can be neither found nor fetched.
func artifacts(t *testing.T) vm.Artifacts {
	t.Helper()
	vm.SkipWithoutQEMU(t)
	a, err := vm.Cached(vm.DefaultCacheDir())
	if err == nil {
		return a
	}
	a, ferr := vm.Fetch(context.Background(), vm.DefaultCacheDir())
	if ferr != nil {
		t.Skipf("no Debian kernel: %v; fetch failed: %v", err, ferr)
	}
	return a
}

// testInitramfs builds the initramfs once per test binary: our /init, the default rescue
// commands and the default modules of the cached kernel.
func testInitramfs(t *testing.T, a vm.Artifacts) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "nodeinit-qemu-tests-")
		if buildErr != nil {
			return
		}
		wd, _ := os.Getwd()
		var res initramfs.Result
		res, buildErr = initramfs.Build(context.Background(), initramfs.Options{
			Output:     filepath.Join(buildDir, "initrd.img"),
			ModulesDir: a.ModulesDir,
			WorkDir:    filepath.Dir(wd),
		})
		built = res.Path
		t.Logf("initramfs: %s", res)
	})
	if buildErr != nil {
		t.Fatalf("build initramfs: %v", buildErr)
	}
	return built
}
