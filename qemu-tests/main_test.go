// Package qemutests boots Debian's cloud kernel with the nodeinit initramfs in QEMU (TCG) and
// asserts on the serial console. The kernel, OVMF and systemd-boot come from the cache that
// `make fetch` fills (NODEINIT_CACHE, default /var/cache/nodeinit).
package qemutests

import (
	"context"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/qemu-tests/fixture"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// versions are the releases of the test node OS the tests install and upgrade between.
// 2.0 upgrades 1.x and migrates a setting; 3.0 is a broken release whose init crashes;
// 1.5 carries a large incompressible file so that its slot write can be cut midway;
// 2.1's boot loader does not start.
var versions = []fixture.Version{
	{Version: "1.0"},
	{Version: "1.5", UpgradeFrom: []string{"1.x"}, FillerMiB: 160},
	{Version: "2.0", UpgradeFrom: []string{"1.x"},
		Migrations: []image.Migration{{Op: image.OpSet, Path: "/etc/testos/migrated", Value: "from-1.0\n"}}},
	{Version: "3.0", UpgradeFrom: []string{"2.x"}, Actions: []string{"crash"}},
	// 2.1 ships a boot loader the firmware cannot start.
	{Version: "2.1", UpgradeFrom: []string{"1.x"}, BrokenLoader: true},
	// 2.2 ships a new boot loader that starts.
	{Version: "2.2", UpgradeFrom: []string{"1.x"}, NewLoader: true},
}

var (
	buildOnce sync.Once
	built     *fixture.Artifacts
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

// longTest marks one of the long tests that run two at a time, after every other
// test of the package (t.Parallel; go test's -parallel is GOMAXPROCS, 2 here). A TCG
// guest keeps about one host core busy for most of a test (its boot is serial on one
// vCPU), so the last CI run's QEMU tests held a load average of 1.3-1.6 on two cores:
// the generic kernel's sweeps and media, the Debian node and five long install and
// upgrade flows took about 32 of its 67 minutes, and side by side they use the
// idle core (the nine generic and Debian tests: 23 minutes alone, 15 in pairs). The
// fleet test, whose six VMs want every core, and the TPM and installer-screen tests,
// which wait on swtpm and on the console, are not among them, nor the automatic
// rollback: beside another guest, one of its two crashing boots of 3.0 went by
// unseen (one TESTOS-CRASH line, not two) in a trial run.
func longTest(t *testing.T) {
	t.Helper()
	t.Parallel()
}

// artifacts returns the cached Debian files, fetching them when missing; the test is
// skipped only when they can be neither found nor fetched.
func artifacts(t *testing.T) vm.Artifacts {
	t.Helper()
	if testing.Short() {
		t.Skip("QEMU tests are skipped with -short")
	}
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

// fixtures builds, once per test binary, the initramfs, a signing key and the signed
// bundles of every version of the test node OS.
func fixtures(t *testing.T) *fixture.Artifacts {
	t.Helper()
	artifacts(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "nodeinit-qemu-tests-")
		if buildErr != nil {
			return
		}
		var logw io.Writer = io.Discard
		if testing.Verbose() {
			logw = os.Stderr
		}
		built, buildErr = fixture.Build(context.Background(), fixture.Options{
			CacheDir: vm.DefaultCacheDir(), OutDir: buildDir, Versions: versions, Log: logw})
	})
	if buildErr != nil {
		t.Fatalf("build fixtures: %v", buildErr)
	}
	return built
}

// testInitramfs is the nodeinit initramfs of the fixtures.
func testInitramfs(t *testing.T, _ vm.Artifacts) string {
	return fixtures(t).Initramfs
}
