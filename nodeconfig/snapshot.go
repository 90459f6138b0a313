package nodeconfig

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// snapshotName refuses names that would escape .snapshots.
func snapshotName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("snapshot name %q must be one path element, e.g. pre-upgrade-2.0", name)
	}
	return nil
}

// skipTopLevel prunes .snapshots and lost+found from a config tree walk.
func skipTopLevel(rel string) bool {
	return rel == SnapshotsDir || rel == "lost+found"
}

// Snapshot copies the config tree, without .snapshots, into
// .snapshots/<name>, replacing an older snapshot of that name only once the
// new copy is complete.
func Snapshot(configDir, name string) error {
	if err := snapshotName(name); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	base := filepath.Join(configDir, SnapshotsDir)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	tmp, err := os.MkdirTemp(base, "."+name+".tmp")
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	defer os.RemoveAll(tmp)
	if err := copyTree(configDir, tmp, skipTopLevel); err != nil {
		return fmt.Errorf("snapshot %s: copy: %w", name, err)
	}
	final := filepath.Join(base, name)
	if err := os.RemoveAll(final); err != nil {
		return fmt.Errorf("snapshot %s: remove old: %w", name, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("snapshot %s: %w", name, err)
	}
	return syncDir(base)
}

// Snapshots lists the snapshot names.
func Snapshots(configDir string) ([]string, error) {
	des, err := os.ReadDir(filepath.Join(configDir, SnapshotsDir))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var names []string
	for _, d := range des {
		if d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			names = append(names, d.Name())
		}
	}
	return names, nil
}

// Restore replaces the config tree (all but .snapshots and lost+found) with
// the snapshot's contents. The snapshot itself is kept.
func Restore(configDir, name string) error {
	if err := snapshotName(name); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	snap := filepath.Join(configDir, SnapshotsDir, name)
	if st, err := os.Stat(snap); err != nil || !st.IsDir() {
		return fmt.Errorf("restore: snapshot %q not found in %s (hint: nodeinit status lists snapshots)", name, configDir)
	}
	if err := clearTree(configDir); err != nil {
		return fmt.Errorf("restore %s: %w", name, err)
	}
	if err := copyTree(snap, configDir, nil); err != nil {
		return fmt.Errorf("restore %s: copy: %w", name, err)
	}
	return syncDir(configDir)
}

// Replace validates c, then clears the config tree (all but .snapshots and
// lost+found) and seeds c into it: the config is then c alone, as after an
// install. Nothing is cleared when c is invalid.
func Replace(configDir string, c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("replace config: %w", err)
	}
	if err := clearTree(configDir); err != nil {
		return fmt.Errorf("replace config: %w", err)
	}
	if err := Seed(configDir, c); err != nil {
		return err
	}
	return syncDir(configDir)
}

// clearTree removes everything in configDir but .snapshots and lost+found.
func clearTree(configDir string) error {
	des, err := os.ReadDir(configDir)
	if err != nil {
		return err
	}
	for _, d := range des {
		if skipTopLevel(d.Name()) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(configDir, d.Name())); err != nil {
			return fmt.Errorf("clear %s: %w", d.Name(), err)
		}
	}
	return nil
}
