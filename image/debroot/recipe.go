package debroot

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"sort"
	"strings"
)

// RecipeVersion is part of every Key: raise it when what Ensure does to a root
// changes (mmdebstrap's options, Tidy), so that old cache entries are not taken.
const RecipeVersion = 1

// Defaults of a Recipe.
const (
	DefaultSuite  = "bookworm"
	DefaultKernel = "linux-image-cloud-amd64"
)

// BasePackages are installed on top of minbase in every root: an init that
// reaches multi-user.target (systemd-sysv), device management (udev), module
// loading (kmod) and the ip command.
var BasePackages = []string{"systemd-sysv", "udev", "kmod", "iproute2"}

// Recipe says which Debian root to build.
type Recipe struct {
	Suite string // default DefaultSuite
	// Mirrors are mmdebstrap's MIRROR arguments ("http://…", "deb …" lines, or
	// a sources file). None means mmdebstrap's default: deb.debian.org, with the
	// updates and security suites of a stable release. The versions in the Key
	// still come from the host's apt lists: point the host at the same archive.
	Mirrors []string
	// Kernel is the kernel package; default DefaultKernel (the cloud kernel, whose
	// virtio, NVMe and ext4 drivers nodeinit's tests use). linux-image-amd64 is
	// the one with drivers for real hardware.
	Kernel string
	// Packages are installed besides BasePackages and Kernel.
	Packages []string
}

func (r Recipe) withDefaults() Recipe {
	if r.Suite == "" {
		r.Suite = DefaultSuite
	}
	if r.Kernel == "" {
		r.Kernel = DefaultKernel
	}
	return r
}

// Includes are the packages mmdebstrap is asked for on top of minbase, sorted.
func (r Recipe) Includes() []string {
	r = r.withDefaults()
	seen := map[string]bool{}
	var out []string
	for _, p := range append(append(append([]string{}, BasePackages...), r.Kernel), r.Packages...) {
		if p = strings.TrimSpace(p); p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// Pkg is one binary package at one version.
type Pkg struct {
	Name, Version string
}

// String is "name version", the form of packages.txt and KeyText.
func (p Pkg) String() string { return p.Name + " " + p.Version }

// Resolve returns the packages a root of r will hold, with their versions, as
// the host's apt resolves them: the Essential and Priority: required packages
// (what minbase installs), apt, and r's Includes, with their dependencies but
// no Recommends, installed onto an empty system. The list is sorted by name.
func Resolve(ctx context.Context, r Recipe) ([]Pkg, error) {
	base, err := minbasePackages(ctx)
	if err != nil {
		return nil, err
	}
	args := []string{"--simulate", "-q", "-o", "Dir::State::status=/dev/null", "-o", "APT::Install-Recommends=false",
		"-o", "APT::Install-Suggests=false", "install"}
	args = append(append(append(args, base...), "apt"), r.Includes()...)
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("resolve the Debian root's packages: apt-get --simulate install: %w: %s (run `apt-get update`; check the package names)",
			err, tailLines(stderr.String(), 5))
	}
	pkgs := ParseSimulation(out)
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("resolve the Debian root's packages: apt-get --simulate installs nothing (run `apt-get update`)")
	}
	return pkgs, nil
}

// minbasePackages lists the Essential: yes and Priority: required packages of
// the host's apt lists (apt-cache dumpavail), as mmdebstrap's minbase variant
// selects them.
func minbasePackages(ctx context.Context) ([]string, error) {
	cmd := exec.CommandContext(ctx, "apt-cache", "dumpavail")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("apt-cache dumpavail: %w (install apt)", err)
	}
	names := ParseMinbase(stdout)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("apt-cache dumpavail: %w: %s", err, tailLines(stderr.String(), 5))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("apt-cache dumpavail lists no Essential or required package: run `apt-get update`")
	}
	return names, nil
}

// ParseMinbase returns the sorted names of the packages that control
// paragraphs (apt-cache dumpavail, a Packages file) mark Essential: yes or
// Priority: required.
func ParseMinbase(r io.Reader) []string {
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	name := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			name = ""
		case strings.HasPrefix(line, "Package:"):
			name = strings.TrimSpace(strings.TrimPrefix(line, "Package:"))
		case name != "" && (line == "Priority: required" || line == "Essential: yes"):
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

var instRE = regexp.MustCompile(`(?m)^Inst (\S+) (?:\[\S+\] )?\((\S+) `)

// ParseSimulation reads `apt-get --simulate install` output: one Pkg per
// "Inst NAME (VERSION …)" line, sorted by name, architecture qualifiers
// (":amd64") dropped.
func ParseSimulation(out []byte) []Pkg {
	var pkgs []Pkg
	for _, m := range instRE.FindAllSubmatch(out, -1) {
		name, _, _ := strings.Cut(string(m[1]), ":")
		pkgs = append(pkgs, Pkg{Name: name, Version: string(m[2])})
	}
	sortPkgs(pkgs)
	return pkgs
}

func sortPkgs(pkgs []Pkg) {
	sort.Slice(pkgs, func(i, j int) bool {
		if pkgs[i].Name != pkgs[j].Name {
			return pkgs[i].Name < pkgs[j].Name
		}
		return pkgs[i].Version < pkgs[j].Version
	})
}

// KeyText is what Key hashes: the recipe version, suite, mirrors and
// includes, then one "name version" line per package, sorted.
func KeyText(r Recipe, pkgs []Pkg) string {
	r = r.withDefaults()
	var b strings.Builder
	fmt.Fprintf(&b, "nodeinit debroot recipe %d\nsuite %s\nvariant minbase\n", RecipeVersion, r.Suite)
	for _, m := range r.Mirrors {
		fmt.Fprintf(&b, "mirror %s\n", m)
	}
	fmt.Fprintf(&b, "include %s\n", strings.Join(r.Includes(), ","))
	for _, o := range DpkgOptions {
		fmt.Fprintf(&b, "dpkgopt %s\n", o)
	}
	sorted := append([]Pkg(nil), pkgs...)
	sortPkgs(sorted)
	for _, p := range sorted {
		fmt.Fprintf(&b, "%s\n", p)
	}
	return b.String()
}

// Key names the cache entry of the root r makes with pkgs: the first 20 hex
// digits of the SHA-256 of KeyText.
func Key(r Recipe, pkgs []Pkg) string {
	sum := sha256.Sum256([]byte(KeyText(r, pkgs)))
	return hex.EncodeToString(sum[:])[:20]
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "; ")
}
