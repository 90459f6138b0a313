//go:build !initramfs

package image

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/nodeinit/nodeinit/image/deb"
)

// Change is one difference between two bundles. Kind is "name", "version",
// "arch", "kernel", "bundle-file", "package" or "file"; Op is "+" (only in
// the second bundle), "-" (only in the first) or "~" (in both, different).
type Change struct {
	Kind string `json:"kind"`
	Op   string `json:"op"`
	Name string `json:"name"` // the package name, the path in the root, the bundle file
	Old  string `json:"old,omitempty"`
	New  string `json:"new,omitempty"`
}

func (c Change) String() string {
	switch c.Op {
	case "+":
		return fmt.Sprintf("%s +%s %s", c.Kind, c.Name, c.New)
	case "-":
		return fmt.Sprintf("%s -%s %s", c.Kind, c.Name, c.Old)
	}
	return fmt.Sprintf("%s ~%s %s -> %s", c.Kind, c.Name, c.Old, c.New)
}

// Diff lists what changed from bundle directory a to bundle directory b:
// name, version and arch; the kernel and the other bundle files, by digest;
// the packages of each root's dpkg status; and every path of the roots by
// type, mode, owner, size and SHA-256 (or link target). Both roots are
// unpacked into temporary directories, which are removed afterwards; run it
// as root so that owners are unpacked as they are.
//
// The manifests are read, not verified: verify a bundle with Open first when
// its signature matters.
func Diff(ctx context.Context, a, b string) ([]Change, error) {
	ma, err := readManifestFile(a)
	if err != nil {
		return nil, err
	}
	mb, err := readManifestFile(b)
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, f := range []struct{ kind, old, new string }{
		{"name", ma.Name, mb.Name}, {"version", ma.Version, mb.Version}, {"arch", ma.Arch, mb.Arch},
	} {
		if f.old != f.new {
			out = append(out, Change{Kind: f.kind, Op: "~", Name: "", Old: f.old, New: f.new})
		}
	}
	out = append(out, diffBundleFiles(a, b, ma, mb)...)

	tmp, err := os.MkdirTemp("", "nodeinit-diff-")
	if err != nil {
		return nil, fmt.Errorf("image diff: %w", err)
	}
	defer os.RemoveAll(tmp)
	var trees [2]map[string]treeEntry
	for i, dir := range []string{a, b} {
		root := filepath.Join(tmp, fmt.Sprint(i))
		cmd := exec.CommandContext(ctx, "unsquashfs", "-no-progress", "-quiet", "-d", root, filepath.Join(dir, RootfsName))
		if outb, err := cmd.CombinedOutput(); err != nil {
			return nil, newError("image diff", filepath.Join(dir, RootfsName), fmt.Errorf("unsquashfs: %w: %s", err, lastLines(outb, 5)),
				"install squashfs-tools, and check that the bundle is complete")
		}
		if trees[i], err = readTree(root); err != nil {
			return nil, fmt.Errorf("image diff: %w", err)
		}
	}
	pkgs, err := diffPackages(filepath.Join(tmp, "0"), filepath.Join(tmp, "1"))
	if err != nil {
		return nil, err
	}
	out = append(out, pkgs...)
	out = append(out, diffTrees(trees[0], trees[1])...)
	return out, nil
}

func readManifestFile(dir string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, newError("image diff", dir, err, "give two bundle directories, each holding manifest.json")
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, newError("image diff", filepath.Join(dir, ManifestName), err, "rebuild the bundle")
	}
	return m, nil
}

// diffBundleFiles compares the files the manifests list, other than the
// root (compared by content below) and its chunk lists, which change with
// it. The kernel is reported as "kernel", with its release when the file
// says it.
func diffBundleFiles(a, b string, ma, mb *Manifest) []Change {
	names := map[string]bool{}
	for _, f := range append(append([]File{}, ma.Files...), mb.Files...) {
		if f.Name != RootfsName && !strings.HasPrefix(f.Name, ChunkListName(RootfsName, "")) {
			names[f.Name] = true
		}
	}
	var sorted []string
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	var out []Change
	for _, n := range sorted {
		fa, inA := ma.File(n)
		fb, inB := mb.File(n)
		kind := "bundle-file"
		desc := func(dir string, f File) string {
			s := fmt.Sprintf("%d bytes sha256:%s", f.Size, f.SHA256)
			if n == KernelName {
				if v := bzImageVersion(filepath.Join(dir, n)); v != "" {
					s = v + " " + s
				}
			}
			return s
		}
		if n == KernelName {
			kind = "kernel"
		}
		switch {
		case inA && !inB:
			out = append(out, Change{Kind: kind, Op: "-", Name: n, Old: desc(a, fa)})
		case !inA && inB:
			out = append(out, Change{Kind: kind, Op: "+", Name: n, New: desc(b, fb)})
		case fa.SHA256 != fb.SHA256 || fa.Size != fb.Size:
			out = append(out, Change{Kind: kind, Op: "~", Name: n, Old: desc(a, fa), New: desc(b, fb)})
		}
	}
	return out
}

// diffPackages compares the dpkg status of two roots.
func diffPackages(a, b string) ([]Change, error) {
	pa, err := rootPackages(a)
	if err != nil {
		return nil, fmt.Errorf("image diff: first image: %w", err)
	}
	pb, err := rootPackages(b)
	if err != nil {
		return nil, fmt.Errorf("image diff: second image: %w", err)
	}
	desc := func(p deb.Package) string { return p.Version + " (" + p.Arch + ")" }
	byName := func(ps []deb.Package) map[string]deb.Package {
		m := map[string]deb.Package{}
		for _, p := range ps {
			m[p.Name] = p
		}
		return m
	}
	ma, mb := byName(pa), byName(pb)
	var names []string
	for n := range ma {
		names = append(names, n)
	}
	for n := range mb {
		if _, ok := ma[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []Change
	for _, n := range names {
		x, inA := ma[n]
		y, inB := mb[n]
		switch {
		case inA && !inB:
			out = append(out, Change{Kind: "package", Op: "-", Name: n, Old: desc(x)})
		case !inA && inB:
			out = append(out, Change{Kind: "package", Op: "+", Name: n, New: desc(y)})
		case desc(x) != desc(y):
			out = append(out, Change{Kind: "package", Op: "~", Name: n, Old: desc(x), New: desc(y)})
		}
	}
	return out, nil
}

// treeEntry is what the diff compares of one path.
type treeEntry string

// readTree describes every path below root: type and mode, owner, and the
// size and SHA-256 of a file or the target of a link.
func readTree(root string) (map[string]treeEntry, error) {
	out := map[string]treeEntry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		uid, gid := ownerOf(fi)
		desc := fmt.Sprintf("%s %d:%d", fi.Mode(), uid, gid)
		switch {
		case fi.Mode().IsRegular():
			sum, err := fileSHA256(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %d bytes sha256:%s", fi.Size(), sum)
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + t
		}
		out["/"+filepath.ToSlash(rel)] = treeEntry(desc)
		return nil
	})
	return out, err
}

// diffTrees compares two readTree results, in path order.
func diffTrees(a, b map[string]treeEntry) []Change {
	var paths []string
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var out []Change
	for _, p := range paths {
		x, inA := a[p]
		y, inB := b[p]
		switch {
		case inA && !inB:
			out = append(out, Change{Kind: "file", Op: "-", Name: p, Old: string(x)})
		case !inA && inB:
			out = append(out, Change{Kind: "file", Op: "+", Name: p, New: string(y)})
		case x != y:
			out = append(out, Change{Kind: "file", Op: "~", Name: p, Old: string(x), New: string(y)})
		}
	}
	return out
}
