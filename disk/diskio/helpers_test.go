package diskio

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/internal/testcmd"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/internal/testloop"
)

// needTools skips the test when a tool the test needs is not installed.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices)")
	}
}

// sparseFile makes a sparse file of size bytes in the test's temp dir.
func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// run is testcmd.Run.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testcmd.Run(t, name, args...)
}

// loopDevice attaches path to a new loop device, detached in t.Cleanup.
func loopDevice(t *testing.T, path string, sectorSize int) string {
	t.Helper()
	needRoot(t)
	needTools(t, "losetup")
	return testloop.Attach(t, path, "--sector-size", itoa(sectorSize)).Dev
}

func itoa(n int) string { return strconv.Itoa(n) }

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// probeFile probes a file (or device) as a disk with the given sector size.
func probeFile(t *testing.T, path string, sectorSize int) disk.ProbeResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		t.Fatal(err)
	}
	res, err := disk.ProbeDevice(f, size, sectorSize)
	if err != nil {
		t.Fatalf("probe %s: %v", path, err)
	}
	return res
}

// blkidExport runs blkid -p on path at a byte offset and returns its key=value output.
func blkidExport(t *testing.T, path string, offset int64) map[string]string {
	t.Helper()
	out, _ := exec.Command("blkid", "-p", "-o", "export", "-O", itoa64(offset), path).Output()
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func zeroAt(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

func copyInto(t *testing.T, src, dst string, off int64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

const gibibyte = 1 << 30
