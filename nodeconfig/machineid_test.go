package nodeconfig

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// machineIDFile is machine-id(5)'s format: 32 lower-case hex digits and a newline.
var machineIDFile = regexp.MustCompile(`^[0-9a-f]{32}\n$`)

// seededMachineID reads the machine ID Seed left in dir and checks its format,
// mode and place in the persisted list.
func seededMachineID(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, MachineIDPath)
	got := readFile(t, p)
	if !machineIDFile.MatchString(got) {
		t.Fatalf("%s = %q, want 32 lower-case hex digits and a newline", MachineIDPath, got)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o444 {
		t.Errorf("%s mode %v (%v), want 0444", MachineIDPath, st.Mode().Perm(), err)
	}
	if list, _ := Persisted(dir); !slices.Contains(list, MachineIDPath) {
		t.Errorf("%s is not in the persisted list %v", MachineIDPath, list)
	}
	return strings.TrimSuffix(got, "\n")
}

// TestSeedCreatesMachineIDOnce: the seed of an install creates a machine ID
// that is persisted like the hostname; seeding the same config again (a re-run
// of seed-config) keeps it, another install gets another, a reinstall
// (Replace) makes a new one, and restoring the snapshot taken before it brings
// the old one back.
func TestSeedCreatesMachineIDOnce(t *testing.T) {
	dir := t.TempDir()
	if err := Seed(dir, sampleConfig()); err != nil {
		t.Fatal(err)
	}
	id := seededMachineID(t, dir)
	if id[12] != '4' || !strings.ContainsRune("89ab", rune(id[16])) {
		t.Errorf("machine ID %s is not marked as a version 4 UUID", id)
	}

	if err := Seed(dir, sampleConfig()); err != nil {
		t.Fatal(err)
	}
	if again := seededMachineID(t, dir); again != id {
		t.Errorf("a second seed changed the machine ID from %s to %s", id, again)
	}

	other := t.TempDir()
	if err := Seed(other, sampleConfig()); err != nil {
		t.Fatal(err)
	}
	if o := seededMachineID(t, other); o == id {
		t.Errorf("two installs got the same machine ID %s", id)
	}

	if err := Snapshot(dir, "1.0"); err != nil {
		t.Fatal(err)
	}
	if err := Replace(dir, sampleConfig()); err != nil {
		t.Fatal(err)
	}
	newID := seededMachineID(t, dir)
	if newID == id {
		t.Errorf("a reinstall kept the machine ID %s", id)
	}
	if err := Restore(dir, "1.0"); err != nil {
		t.Fatal(err)
	}
	if back := seededMachineID(t, dir); back != id {
		t.Errorf("the restored snapshot has machine ID %s, want the old %s", back, id)
	}
}

// TestSeedMachineIDGivenOrBroken: a machine ID in the Config is written as it
// is, a malformed one is refused before anything is written, and a file that
// machine-id(5) would not accept (empty, "uninitialized") is replaced.
func TestSeedMachineIDGivenOrBroken(t *testing.T) {
	const given = "0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	c := sampleConfig()
	c.MachineID = given
	if err := Seed(dir, c); err != nil {
		t.Fatal(err)
	}
	if got := seededMachineID(t, dir); got != given {
		t.Errorf("machine ID %s, want the given %s", got, given)
	}

	for _, bad := range []string{"0123456789ABCDEF0123456789ABCDEF", "00000000000000000000000000000000", "0123456789abcdef", "0123456789abcdef0123456789abcdeg"} {
		dir := t.TempDir()
		c := sampleConfig()
		c.MachineID = bad
		if err := Seed(dir, c); err == nil || !strings.Contains(err.Error(), "machine ID") {
			t.Errorf("Seed with machine ID %q: %v, want a refusal", bad, err)
		}
		if des, _ := os.ReadDir(dir); len(des) != 0 {
			t.Errorf("Seed wrote %v despite a bad machine ID", des)
		}
	}

	for _, old := range []string{"", "\n", "uninitialized\n"} {
		dir := t.TempDir()
		mkfile(t, filepath.Join(dir, MachineIDPath), old)
		if err := Seed(dir, Config{}); err != nil {
			t.Fatal(err)
		}
		seededMachineID(t, dir)
	}
}

// TestMachineIDSurvivesMigrationAndBoot: an upgrade migrates the config and a
// boot binds it; neither rewrites the machine ID. The boot copies the ID into
// the root, read-only, and mounts nothing over /etc/machine-id (systemd's
// machine-id-commit unit would take a mount point there for a transient ID
// and fail), while the other persisted files are bound as before.
func TestMachineIDSurvivesMigrationAndBoot(t *testing.T) {
	cfg, root := t.TempDir(), t.TempDir()
	if err := Seed(cfg, Config{Hostname: "node1"}); err != nil {
		t.Fatal(err)
	}
	id := seededMachineID(t, cfg)
	if err := ApplyMigrations(cfg, []Migration{{Op: OpSet, Path: "/etc/migrated", Value: "yes\n"}, {Op: OpMove, Path: "/etc/hostname", To: "/etc/hostname.old"}}); err != nil {
		t.Fatal(err)
	}
	m := &recordingMounter{}
	if err := BindPersisted(cfg, root, m); err != nil {
		t.Fatal(err)
	}
	if got := seededMachineID(t, cfg); got != id {
		t.Errorf("machine ID after migration and boot %s, want %s", got, id)
	}
	if slices.Contains(m.calls, [2]string{filepath.Join(cfg, MachineIDPath), filepath.Join(root, MachineIDPath)}) {
		t.Errorf("the boot mounts over /etc/machine-id: %v", m.calls)
	}
	if !slices.Contains(m.calls, [2]string{filepath.Join(cfg, "etc/migrated"), filepath.Join(root, "etc/migrated")}) {
		t.Errorf("the boot does not bind the other persisted files: %v", m.calls)
	}
	b, err := os.ReadFile(filepath.Join(root, MachineIDPath))
	if err != nil || string(b) != id+"\n" {
		t.Errorf("the root's /etc/machine-id is %q (%v), want the stored %s", b, err, id)
	}
	if st, err := os.Stat(filepath.Join(root, MachineIDPath)); err != nil || st.Mode().Perm() != 0o444 {
		t.Errorf("the root's /etc/machine-id: %v, mode %v, want read-only 0444", err, st.Mode())
	}
}

func TestNewMachineIDIsRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 64 {
		id, err := NewMachineID()
		if err != nil {
			t.Fatal(err)
		}
		if !machineIDFile.MatchString(id + "\n") {
			t.Fatalf("NewMachineID = %q", id)
		}
		if seen[id] {
			t.Fatalf("NewMachineID repeated %s", id)
		}
		seen[id] = true
	}
}
