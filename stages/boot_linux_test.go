package stages

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/plan"
)

// newFilesystems fakes mounts at the device edge: every mount records itself
// and then does what the mount of a filesystem just made by mke2fs does to the
// target, leave lost+found in it, plus the files in extra. Any other effect
// panics on the nil device.Machine it embeds.
type newFilesystems struct {
	device.Machine
	mounts []string
	extra  map[string]string // name in the mounted filesystem → content
}

func (m *newFilesystems) Mount(source, target, fstype string, flags uintptr, data string) error {
	m.mounts = append(m.mounts, fmt.Sprintf("%s on %s type %s", source, target, fstype))
	for name, content := range m.extra {
		if err := os.WriteFile(filepath.Join(target, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(target, "lost+found"), 0o700)
}

// TestMountLoggingSeedsANewPartition: the boot mounts node-logging through the
// device edge on the new root's /var/log; a new one gets the image's /var/log
// (from the slot's lower directory) and a journal directory, a later boot
// keeps what the node wrote, and a failed copy is reported without stopping
// the boot.
func TestMountLoggingSeedsANewPartition(t *testing.T) {
	lower := t.TempDir()
	if err := os.MkdirAll(filepath.Join(lower, "var/log/apt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "var/log/apt/history.log"), []byte("from the image\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	dev := &newFilesystems{}
	j := &Job{Dev: dev, NewRoot: t.TempDir(), RunDir: t.TempDir()}
	var infos []string
	r := &Reporter{stage: plan.StageMountRoot, now: time.Now, sink: SinkFunc(func(e Event) {
		if e.Kind == EventInfo {
			infos = append(infos, e.Message)
		}
	})}
	logDir := filepath.Join(j.NewRoot, "var/log")

	if err := j.mountLogging("/dev/vda5", lower, r); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/dev/vda5 on " + logDir + " type ext4"}; !slices.Equal(dev.mounts, want) {
		t.Errorf("mounts %q, want %q", dev.mounts, want)
	}
	if b, err := os.ReadFile(filepath.Join(logDir, "apt/history.log")); err != nil || string(b) != "from the image\n" {
		t.Errorf("the image's log on node-logging: %q, %v", b, err)
	}
	if st, err := os.Stat(filepath.Join(logDir, "journal")); err != nil || !st.IsDir() {
		t.Errorf("no journal directory on node-logging: %v", err)
	}
	if len(infos) != 1 || !strings.Contains(infos[0], "the image's /var/log copied") {
		t.Errorf("events %q, want one saying the image's /var/log was copied", infos)
	}

	// The next boot: the node's own log stays and nothing is copied.
	if err := os.WriteFile(filepath.Join(logDir, "apt/history.log"), []byte("written by the node\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	infos = nil
	if err := j.mountLogging("/dev/vda5", lower, r); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(logDir, "apt/history.log")); string(b) != "written by the node\n" {
		t.Errorf("the second boot replaced the node's log with %q", b)
	}
	if len(infos) != 0 {
		t.Errorf("the second boot reports %q", infos)
	}

	// A node-logging that SeedLogging cannot use (its staging name taken by a
	// file) is reported, and the boot goes on.
	j.NewRoot = t.TempDir()
	dev.extra = map[string]string{".nodeinit-seed": "not a directory"}
	if err := j.mountLogging("/dev/vda5", lower, r); err != nil {
		t.Fatalf("a failed copy stopped the boot: %v", err)
	}
	if len(infos) != 1 || !strings.Contains(infos[0], "booting with /var/log as it is") {
		t.Errorf("events %q, want one reporting the failed copy", infos)
	}
}
