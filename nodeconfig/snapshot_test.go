package nodeconfig

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSnapshotRestore(t *testing.T) {
	cfg := t.TempDir()
	mkfile(t, filepath.Join(cfg, "etc/hostname"), "one\n")
	mkfile(t, filepath.Join(cfg, "etc/keep/x"), "x")
	if err := Snapshot(cfg, "pre-upgrade"); err != nil {
		t.Fatal(err)
	}
	mkfile(t, filepath.Join(cfg, "etc/hostname"), "two\n")
	mkfile(t, filepath.Join(cfg, "etc/added"), "added")
	os.RemoveAll(filepath.Join(cfg, "etc/keep"))
	// A second snapshot must not nest the first.
	if err := Snapshot(cfg, "later"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(cfg, SnapshotsDir, "later", SnapshotsDir)); !os.IsNotExist(err) {
		t.Errorf("snapshot contains .snapshots: %v", err)
	}
	names, _ := Snapshots(cfg)
	if !slices.Equal(names, []string{"later", "pre-upgrade"}) {
		t.Errorf("Snapshots = %v", names)
	}
	if err := Restore(cfg, "pre-upgrade"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(cfg, "etc/hostname")); got != "one\n" {
		t.Errorf("hostname = %q", got)
	}
	if got := readFile(t, filepath.Join(cfg, "etc/keep/x")); got != "x" {
		t.Errorf("keep/x = %q", got)
	}
	if _, err := os.Stat(filepath.Join(cfg, "etc/added")); !os.IsNotExist(err) {
		t.Errorf("file added after the snapshot survived the restore")
	}
	if _, err := os.Stat(filepath.Join(cfg, SnapshotsDir, "later", "etc/added")); err != nil {
		t.Errorf("other snapshot damaged: %v", err)
	}
	for _, bad := range []string{"", "..", "a/b"} {
		if err := Snapshot(cfg, bad); err == nil {
			t.Errorf("Snapshot(%q) accepted", bad)
		}
	}
	if err := Restore(cfg, "nope"); err == nil {
		t.Error("restore of a missing snapshot accepted")
	}
	if got := readFile(t, filepath.Join(cfg, "etc/hostname")); got != "one\n" {
		t.Errorf("failed restore touched the tree: %q", got)
	}
}

// TestReplaceLeavesOnlyTheNewConfig: after Replace the tree holds the new
// config's files and the snapshots, nothing of the old config; an invalid
// config clears nothing.
func TestReplaceLeavesOnlyTheNewConfig(t *testing.T) {
	cfg := t.TempDir()
	mkfile(t, filepath.Join(cfg, "etc/hostname"), "old\n")
	mkfile(t, filepath.Join(cfg, "etc/ssh/ssh_host_ed25519_key"), "old key")
	if err := Snapshot(cfg, "1.0"); err != nil {
		t.Fatal(err)
	}
	if err := Replace(cfg, Config{Hostname: "bad host name"}); err == nil {
		t.Fatal("Replace accepted an invalid hostname")
	}
	if got := readFile(t, filepath.Join(cfg, "etc/hostname")); got != "old\n" {
		t.Fatalf("a refused Replace changed the config: hostname %q", got)
	}
	if err := Replace(cfg, Config{Hostname: "new.example.com"}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(cfg, "etc/hostname")); got != "new.example.com\n" {
		t.Errorf("hostname = %q", got)
	}
	if _, err := os.Stat(filepath.Join(cfg, "etc/ssh/ssh_host_ed25519_key")); !os.IsNotExist(err) {
		t.Errorf("the old config's host key survived Replace: %v", err)
	}
	if got := readFile(t, filepath.Join(cfg, SnapshotsDir, "1.0", "etc/hostname")); got != "old\n" {
		t.Errorf("the snapshot changed: hostname %q", got)
	}
	list, err := Persisted(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(list, "/etc/hostname") {
		t.Errorf("the persisted list lacks /etc/hostname: %v", list)
	}
}
