package nodeconfig

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// ErrNotPersisted means Unpersist was asked for a path that is not in the list.
var ErrNotPersisted = errors.New("not persisted")

// volatileRoots are trees whose contents are made at run time; persisting
// anything below them makes no sense.
var volatileRoots = []string{"/proc", "/sys", "/dev", "/run", "/tmp", "/var/run", "/var/tmp", "/var/log", "/data"}

// CheckPersistPath cleans p and refuses what must not be persisted: relative
// paths, "/" and top-level directories such as /etc or /usr (bind-mounting
// them would hide the image), and run-time trees such as /proc or /run.
func CheckPersistPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("persist %q: path must be absolute, e.g. /etc/hosts", p)
	}
	clean := path.Clean(p)
	if strings.Count(clean, "/") < 2 {
		return "", fmt.Errorf("persist %s: refusing a top-level path; persist the files below it, e.g. %s/hosts", clean, strings.TrimSuffix(clean, "/"))
	}
	for _, v := range volatileRoots {
		if clean == v || isBelow(clean, v) {
			return "", fmt.Errorf("persist %s: %s is rebuilt at every boot or has its own partition", clean, v)
		}
	}
	return clean, nil
}

// Persist copies files or directories from the running root (rootDir, "/"
// on a node) into the config directory and records them, so they are
// bind-mounted over the root at every boot. Persisting a path again refreshes
// its copy; a path below an already persisted directory is already covered.
// All paths are checked before anything is written.
func Persist(configDir, rootDir string, paths ...string) error {
	if len(paths) == 0 {
		return errors.New("persist: no path given (hint: nodeinit persist /etc/hosts)")
	}
	cleaned := make([]string, 0, len(paths))
	for _, p := range paths {
		c, err := CheckPersistPath(p)
		if err != nil {
			return err
		}
		info, err := os.Lstat(filepath.Join(rootDir, c))
		if err != nil {
			return fmt.Errorf("persist %s: %w", c, err)
		}
		if info.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("persist %s: it is a symbolic link; persist the file it points to", c)
		}
		if !info.IsDir() && !info.Mode().IsRegular() {
			return fmt.Errorf("persist %s: only regular files and directories can be persisted", c)
		}
		cleaned = append(cleaned, c)
	}
	list, err := Persisted(configDir)
	if err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	for _, c := range cleaned {
		if parent := coveredBy(list, c); parent != "" && parent != c {
			continue // the parent's copy is what the root shows
		}
		src, dst := filepath.Join(rootDir, c), filepath.Join(configDir, c)
		if same(src, dst) {
			continue // the root already shows the config copy through the bind mount
		}
		if err := copyTree(src, dst, nil); err != nil {
			return fmt.Errorf("persist %s: %w", c, err)
		}
	}
	if err := addPersisted(configDir, cleaned...); err != nil {
		return fmt.Errorf("persist: %w", err)
	}
	return nil
}

// same reports whether a and b are the same file (a bind mount of b over a).
func same(a, b string) bool {
	ia, err1 := os.Stat(a)
	ib, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(ia, ib)
}

// Unpersist removes paths from the persisted list and deletes their copies
// in the config directory. The running root keeps showing the copy until the
// next boot; from then on the image's own file is back.
func Unpersist(configDir string, paths ...string) error {
	if len(paths) == 0 {
		return errors.New("unpersist: no path given (hint: nodeinit persist -list shows what is persisted)")
	}
	list, err := Persisted(configDir)
	if err != nil {
		return fmt.Errorf("unpersist: %w", err)
	}
	var drop []string
	for _, p := range paths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("unpersist %q: path must be absolute", p)
		}
		c := path.Clean(p)
		if !slices.Contains(list, c) {
			if parent := coveredBy(list, c); parent != "" {
				return fmt.Errorf("unpersist %s: %w on its own; it is part of persisted directory %s", c, ErrNotPersisted, parent)
			}
			return fmt.Errorf("unpersist %s: %w (hint: nodeinit persist -list)", c, ErrNotPersisted)
		}
		drop = append(drop, c)
	}
	list = slices.DeleteFunc(list, func(c string) bool { return slices.Contains(drop, c) })
	if err := writePersisted(configDir, list); err != nil {
		return fmt.Errorf("unpersist: %w", err)
	}
	for _, c := range drop {
		if err := os.RemoveAll(filepath.Join(configDir, c)); err != nil {
			return fmt.Errorf("unpersist %s: remove copy: %w", c, err)
		}
	}
	return nil
}
