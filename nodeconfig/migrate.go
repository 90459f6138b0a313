package nodeconfig

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Migration operations.
const (
	OpMove   = "move"   // move Path to To (any directory)
	OpRename = "rename" // same as move; kept for manifests that say rename
	OpDelete = "delete" // remove Path
	OpSet    = "set"    // write Value to Path with Mode
)

// Migration is one declarative change to the config tree shipped with an
// image. Path and To are paths in the node's root (/etc/foo), stored under
// the config directory; the persisted list follows the change.
type Migration struct {
	Op    string
	Path  string
	To    string
	Value string
	Mode  os.FileMode // for set; 0 means 0644
}

// ApplyMigrations applies ops in order. Each op is idempotent: a move whose
// source is gone and whose destination exists is done already, a delete of a
// missing path is done, a set with the same content rewrites nothing. All ops
// are checked before the first change.
func ApplyMigrations(configDir string, ops []Migration) error {
	for i, op := range ops {
		if err := op.check(); err != nil {
			return fmt.Errorf("migration %d (%s %s): %w", i+1, op.Op, op.Path, err)
		}
	}
	for i, op := range ops {
		if err := op.apply(configDir); err != nil {
			return fmt.Errorf("migration %d (%s %s): %w", i+1, op.Op, op.Path, err)
		}
	}
	return nil
}

func rootPath(p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("empty path")
	}
	c := path.Clean("/" + p)
	if strings.Contains(p, "..") || c == "/" {
		return "", fmt.Errorf("path %q must name a file below the root and not use ..", p)
	}
	if c == "/"+SnapshotsDir || isBelow(c, "/"+SnapshotsDir) || c == "/"+MetaDir || isBelow(c, "/"+MetaDir) {
		return "", fmt.Errorf("path %q is nodeinit's own bookkeeping", p)
	}
	return c, nil
}

func (m Migration) check() error {
	if _, err := rootPath(m.Path); err != nil {
		return err
	}
	switch m.Op {
	case OpMove, OpRename:
		if _, err := rootPath(m.To); err != nil {
			return fmt.Errorf("to: %w", err)
		}
	case OpDelete, OpSet:
	default:
		return fmt.Errorf("unknown op %q (known: move, rename, delete, set)", m.Op)
	}
	return nil
}

func (m Migration) apply(configDir string) error {
	from, _ := rootPath(m.Path)
	src := filepath.Join(configDir, from)
	switch m.Op {
	case OpMove, OpRename:
		to, _ := rootPath(m.To)
		dst := filepath.Join(configDir, to)
		if _, err := os.Lstat(src); os.IsNotExist(err) {
			return nil // done before, or nothing to move
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Rename(src, dst); err != nil {
			return err
		}
		return replacePersisted(configDir, from, to)
	case OpDelete:
		if err := os.RemoveAll(src); err != nil {
			return err
		}
		return replacePersisted(configDir, from, "")
	case OpSet:
		mode := m.Mode.Perm()
		if mode == 0 {
			mode = 0o644
		}
		if old, err := os.ReadFile(src); err != nil || string(old) != m.Value {
			if err := writeFileAtomic(src, []byte(m.Value), mode); err != nil {
				return err
			}
		}
		if err := os.Chmod(src, mode); err != nil {
			return err
		}
		return addPersisted(configDir, from)
	}
	return nil
}

// replacePersisted renames (or, with to == "", drops) from and everything
// below it in the persisted list.
func replacePersisted(configDir, from, to string) error {
	list, err := Persisted(configDir)
	if err != nil {
		return err
	}
	changed := false
	out := slices.DeleteFunc(slices.Clone(list), func(p string) bool {
		hit := p == from || isBelow(p, from)
		changed = changed || hit
		return hit && to == ""
	})
	if to != "" {
		for i, p := range out {
			if p == from || isBelow(p, from) {
				out[i] = to + strings.TrimPrefix(p, from)
			}
		}
	}
	if !changed {
		return nil
	}
	return writePersisted(configDir, out)
}
