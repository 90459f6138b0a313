package stages

import (
	"os"
	"path"
	"path/filepath"
	"strings"
)

// missingFilesystems returns those of names that the kernel under root can
// neither mount now (root/proc/filesystems) nor load a module for (a
// <name>.ko* that root/lib/modules/<release>/modules.dep lists and that is
// there). Without a readable /proc/filesystems nothing is known, and nothing
// is reported missing: a plan is never refused on a guess.
func missingFilesystems(root string, names []string) []string {
	b, err := os.ReadFile(filepath.Join(root, "proc/filesystems"))
	if err != nil {
		return nil
	}
	have := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			have[f[len(f)-1]] = true
		}
	}
	var missing []string
	for _, n := range names {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	modules := loadableModules(root)
	var out []string
	for _, n := range missing {
		if !modules[n] {
			out = append(out, n)
		}
	}
	return out
}

// loadableModules are the modules of the running kernel's modules.dep whose
// files are present, by name (ext4 for kernel/fs/ext4/ext4.ko.xz).
func loadableModules(root string) map[string]bool {
	release := readTrim(filepath.Join(root, "proc/sys/kernel/osrelease"))
	if release == "" {
		return nil
	}
	dir := filepath.Join(root, "lib/modules", release)
	b, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		file, _, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(path.Base(file), ".ko")
		if exists(filepath.Join(dir, file)) {
			out[strings.ReplaceAll(name, "-", "_")] = true
		}
	}
	return out
}
