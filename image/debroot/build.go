package debroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/image/deb"
)

// CacheSubdir is the directory below the cache (NODEINIT_CACHE) that holds
// one entry per Key: <key>/root, <key>/packages.txt and <key>/key.txt.
const CacheSubdir = "debian-root"

// DpkgOptions keep documentation, manual pages and translations out of the
// root (copyright files stay), as Debian's own minimal images do: a smaller
// squashfs writes and boots faster, and a node has no use for them.
var DpkgOptions = []string{
	"path-exclude=/usr/share/doc/*", "path-include=/usr/share/doc/*/copyright",
	"path-exclude=/usr/share/man/*", "path-exclude=/usr/share/info/*", "path-exclude=/usr/share/locale/*",
}

// Root is one cached Debian root.
type Root struct {
	Dir           string // the root directory (owned by root: read it as root)
	Key           string
	Packages      []Pkg  // what dpkg says the root holds
	KernelVersion string // e.g. 6.1.0-57-cloud-amd64
	Vmlinuz       string // Dir/boot/vmlinuz-<KernelVersion>
	ModulesDir    string // Dir/lib/modules/<KernelVersion>, with modules.dep
	Cached        bool   // true when Ensure found it in the cache
}

// Ensure returns the root of r from cacheDir, building it with mmdebstrap when
// the cache has no entry for its Key. Progress goes to logw (nil discards it).
// Two processes asking for the same root wait for each other (a lock file next
// to the entry). It runs as root: mmdebstrap's root mode, and the root's files
// keep their owners.
func Ensure(ctx context.Context, r Recipe, cacheDir string, logw io.Writer) (*Root, error) {
	if logw == nil {
		logw = io.Discard
	}
	r = r.withDefaults()
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("debian root: mmdebstrap builds it as root, and its files keep their owners: run as root")
	}
	start := time.Now()
	pkgs, err := Resolve(ctx, r)
	if err != nil {
		return nil, err
	}
	key := Key(r, pkgs)
	dir := filepath.Join(cacheDir, CacheSubdir, key)
	fmt.Fprintf(logw, "debroot: %d packages resolved in %s: key %s\n", len(pkgs), time.Since(start).Round(time.Millisecond), key)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("debian root cache: %w", err)
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	defer prune(filepath.Dir(dir), filepath.Base(dir), PruneAfter, logw)
	if root, err := Open(dir); err == nil {
		root.Cached = true
		fmt.Fprintf(logw, "debroot: cached root %s (kernel %s)\n", root.Dir, root.KernelVersion)
		return root, nil
	}
	start = time.Now()
	if err := build(ctx, r, pkgs, dir, logw); err != nil {
		return nil, err
	}
	root, err := Open(dir)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "debroot: built %s in %s (kernel %s)\n", root.Dir, time.Since(start).Round(time.Second), root.KernelVersion)
	return root, nil
}

// PruneAfter is how long a cache entry may go unused before Ensure removes it
// (each new package version in the archive makes a new entry of about 300 MB).
const PruneAfter = 14 * 24 * time.Hour

// prune marks the entry keep as used now and removes the other complete
// entries of cache not used for longer than after.
func prune(cache, keep string, after time.Duration, logw io.Writer) {
	now := time.Now()
	os.Chtimes(filepath.Join(cache, keep, "packages.txt"), now, now)
	ents, _ := os.ReadDir(cache)
	for _, e := range ents {
		if !e.IsDir() || e.Name() == keep || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		st, err := os.Stat(filepath.Join(cache, e.Name(), "packages.txt"))
		if err != nil || now.Sub(st.ModTime()) < after {
			continue
		}
		if err := removeUnmounted(filepath.Join(cache, e.Name())); err == nil {
			os.Remove(filepath.Join(cache, e.Name()+".lock"))
			fmt.Fprintf(logw, "debroot: removed %s, unused since %s\n", e.Name(), st.ModTime().Format(time.DateOnly))
		}
	}
}

// Open reads the cache entry dir that Ensure made.
func Open(dir string) (*Root, error) {
	data, err := os.ReadFile(filepath.Join(dir, "packages.txt"))
	if err != nil {
		return nil, fmt.Errorf("debian root %s: %w", dir, err)
	}
	root := &Root{Dir: filepath.Join(dir, "root"), Key: filepath.Base(dir)}
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if n, v, ok := strings.Cut(l, " "); ok {
			root.Packages = append(root.Packages, Pkg{Name: n, Version: v})
		}
	}
	mods, _ := filepath.Glob(filepath.Join(root.Dir, "lib", "modules", "*", "modules.dep"))
	if len(mods) != 1 {
		return nil, fmt.Errorf("debian root %s: want one kernel's modules.dep, found %d", dir, len(mods))
	}
	root.ModulesDir = filepath.Dir(mods[0])
	root.KernelVersion = filepath.Base(root.ModulesDir)
	root.Vmlinuz = filepath.Join(root.Dir, "boot", "vmlinuz-"+root.KernelVersion)
	if _, err := os.Stat(root.Vmlinuz); err != nil {
		return nil, fmt.Errorf("debian root %s: %w", dir, err)
	}
	return root, nil
}

// build runs mmdebstrap into dir+".tmp" and renames it to dir when complete.
func build(ctx context.Context, r Recipe, pkgs []Pkg, dir string, logw io.Writer) error {
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return fmt.Errorf("build the Debian root: %w (install the Debian package mmdebstrap)", err)
	}
	tmp := dir + ".tmp"
	if err := removeUnmounted(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("build the Debian root: %w", err)
	}
	rootDir := filepath.Join(tmp, "root")
	args := []string{"--variant=minbase", "--mode=root", "--include=" + strings.Join(r.Includes(), ",")}
	for _, o := range DpkgOptions {
		args = append(args, "--dpkgopt="+o)
	}
	args = append(append(args, r.Suite, rootDir), r.Mirrors...)
	fmt.Fprintf(logw, "debroot: mmdebstrap %s\n", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "mmdebstrap", args...)
	// The kernel's postinst hooks make no initrd with INITRD=No: the node boots
	// nodeinit's initramfs, never one from initramfs-tools.
	cmd.Env = append(os.Environ(), "INITRD=No")
	var tail bytes.Buffer
	cmd.Stdout = io.MultiWriter(logw, &tail)
	cmd.Stderr = io.MultiWriter(logw, &tail)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build the Debian root: mmdebstrap: %w: %s", err, tailLines(tail.String(), 8))
	}
	if err := Tidy(rootDir); err != nil {
		return err
	}
	installed, err := installedPackages(rootDir)
	if err != nil {
		return err
	}
	var list strings.Builder
	for _, p := range installed {
		fmt.Fprintln(&list, p)
	}
	if err := os.WriteFile(filepath.Join(tmp, "packages.txt"), []byte(list.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "key.txt"), []byte(KeyText(r, pkgs)), 0o644); err != nil {
		return err
	}
	if diff := diffPkgs(pkgs, installed); diff != "" {
		// The key still names what the host's apt expected, so the next run finds
		// this entry; the difference means the host's lists are older than the
		// archive mmdebstrap read.
		fmt.Fprintf(logw, "debroot: the root differs from what the host's apt resolved (%s): run apt-get update\n", diff)
	}
	if err := removeUnmounted(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// Tidy leaves out what mmdebstrap copies from the build machine and what a
// node gets from nodeinit: the host's /etc/hostname and /etc/resolv.conf, and
// any initrd a kernel hook made despite INITRD=No. /etc/machine-id stays empty
// (nodeinit binds the node's own over it).
func Tidy(root string) error {
	if err := os.WriteFile(filepath.Join(root, "etc/hostname"), []byte("localhost\n"), 0o644); err != nil {
		return fmt.Errorf("tidy the Debian root: %w", err)
	}
	hosts := "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("tidy the Debian root: %w", err)
	}
	if err := os.Remove(filepath.Join(root, "etc/resolv.conf")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("tidy the Debian root: %w", err)
	}
	initrds, _ := filepath.Glob(filepath.Join(root, "boot", "initrd.img*"))
	for _, p := range initrds {
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("tidy the Debian root: %w", err)
		}
	}
	return nil
}

func installedPackages(root string) ([]Pkg, error) {
	f, err := os.Open(filepath.Join(root, "var/lib/dpkg/status"))
	if err != nil {
		return nil, fmt.Errorf("the Debian root's packages: %w", err)
	}
	defer f.Close()
	st, err := deb.ParseStatus(f)
	if err != nil {
		return nil, err
	}
	pkgs := make([]Pkg, 0, len(st))
	for _, p := range st {
		pkgs = append(pkgs, Pkg{Name: p.Name, Version: p.Version})
	}
	sortPkgs(pkgs)
	return pkgs, nil
}

// diffPkgs names up to five packages whose version differs between want and got.
func diffPkgs(want, got []Pkg) string {
	g := map[string]string{}
	for _, p := range got {
		g[p.Name] = p.Version
	}
	var out []string
	for _, p := range want {
		if v := g[p.Name]; v != p.Version {
			out = append(out, fmt.Sprintf("%s %s→%s", p.Name, p.Version, v))
		}
	}
	if len(out) > 5 {
		out = append(out[:5], fmt.Sprintf("and %d more", len(out)-5))
	}
	return strings.Join(out, ", ")
}

// removeUnmounted removes dir, refusing when anything is mounted below it: an
// mmdebstrap killed mid-build can leave its /proc, /sys and /dev mounts in the
// root, and removing through those would remove the host's files.
func removeUnmounted(dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if m, err := mountsBelow(abs); err != nil {
		return err
	} else if len(m) > 0 {
		return fmt.Errorf("debian root cache: %s has mounts below it (%s): unmount them (umount -R %s), then build again",
			abs, strings.Join(m, ", "), abs)
	}
	return os.RemoveAll(abs)
}

// mountsBelow lists the mount points at or below dir (/proc/self/mountinfo).
func mountsBelow(dir string) ([]string, error) {
	return mountsIn("/proc/self/mountinfo", dir)
}

// mountsIn lists the mount points at or below dir of the mountinfo table at
// path, deepest first; no table means no mounts.
func mountsIn(path, dir string) ([]string, error) {
	m, err := image.MountsUnder(dir, path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return m, err
}
