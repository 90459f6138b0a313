package nodeconfig

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Paths inside the config directory.
const (
	MetaDir       = ".nodeinit"
	PersistedFile = ".nodeinit/persisted"
	SnapshotsDir  = ".snapshots"
)

// Persisted returns the persisted paths (absolute, in the node's root), sorted.
func Persisted(configDir string) ([]string, error) {
	data, err := os.ReadFile(filepath.Join(configDir, PersistedFile))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read persisted list: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, path.Clean(line))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func writePersisted(configDir string, paths []string) error {
	paths = slices.Clone(paths)
	slices.Sort(paths)
	paths = slices.Compact(paths)
	var b strings.Builder
	b.WriteString("# Files and directories bind-mounted from node-config over the root at boot. Managed by nodeinit persist.\n")
	for _, p := range paths {
		b.WriteString(p + "\n")
	}
	if err := writeFileAtomic(filepath.Join(configDir, PersistedFile), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write persisted list: %w", err)
	}
	return nil
}

// addPersisted records paths, dropping entries already covered by a
// persisted parent directory and entries that a new directory now covers.
func addPersisted(configDir string, paths ...string) error {
	cur, err := Persisted(configDir)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if coveredBy(cur, p) != "" {
			continue
		}
		cur = slices.DeleteFunc(cur, func(c string) bool { return isBelow(c, p) })
		cur = append(cur, p)
	}
	return writePersisted(configDir, cur)
}

// coveredBy returns the persisted entry equal to p or a directory above it.
func coveredBy(list []string, p string) string {
	for _, c := range list {
		if c == p || isBelow(p, c) {
			return c
		}
	}
	return ""
}

// isBelow reports whether p lies strictly below dir.
func isBelow(p, dir string) bool {
	return strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}
