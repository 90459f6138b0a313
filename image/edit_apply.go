//go:build !initramfs

package image

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/nodeinit/nodeinit/image/deb"
	"github.com/nodeinit/nodeinit/internal/lazyre"
)

// debArch is the Debian architecture of a manifest's GOARCH-style arch.
func debArch(goarch string) string { return deb.Arch(goarch) }

// debFile is one .deb to install: asked for by the operator (as a package or
// a plugin) or pulled in as a dependency.
type debFile struct {
	pkg    deb.Package
	sha256 string
	plugin bool
}

// readDeb reads a .deb's control fields with dpkg-deb.
func readDeb(ctx context.Context, file string) (deb.Package, error) {
	out, err := exec.CommandContext(ctx, "dpkg-deb", "--field", file).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = bytes.TrimSpace(ee.Stderr)
		}
		return deb.Package{}, newError("image edit", file, fmt.Errorf("dpkg-deb --field: %w: %s", err, stderr), "pass a Debian binary package built with dpkg-deb --build (install dpkg if dpkg-deb is missing)")
	}
	ps, err := deb.ParseControl(bytes.NewReader(out))
	if err != nil || len(ps) != 1 {
		return deb.Package{}, newError("image edit", file, fmt.Errorf("control file: %v", err), "rebuild the package")
	}
	p := deb.FromParagraph(ps[0])
	if p.Name == "" || p.Version == "" || p.Arch == "" {
		return p, newError("image edit", file, errors.New("control file lacks Package, Version or Architecture"), "rebuild the package")
	}
	p.File = file
	return p, nil
}

// resolvePackages reads the requested .debs, refuses one for another
// architecture, and completes the set from --apt-dir against the packages
// the image already has (its dpkg status, read from the squashfs without
// unpacking it).
func (p *editPlan) resolvePackages(ctx context.Context) error {
	var want []deb.Package
	add := func(file string, plugin bool) error {
		pkg, err := readDeb(ctx, file)
		if err != nil {
			return err
		}
		if pkg.Arch != p.debArch && pkg.Arch != "all" {
			return newError("image edit", file, fmt.Errorf("package %s %s is built for %s, the image is %s", pkg.Name, pkg.Version, pkg.Arch, p.debArch),
				fmt.Sprintf("use the %s (or all) build of %s", p.debArch, pkg.Name))
		}
		sum, err := fileSHA256(file)
		if err != nil {
			return newError("image edit", file, err, "check the path")
		}
		want = append(want, pkg)
		p.debs = append(p.debs, debFile{pkg: pkg, sha256: sum, plugin: plugin})
		return nil
	}
	for _, f := range p.o.Debs {
		if err := add(f, false); err != nil {
			return err
		}
	}
	for _, f := range p.o.Plugins {
		if strings.HasSuffix(f, ".deb") {
			if err := add(f, true); err != nil {
				return err
			}
		}
	}
	if len(want) == 0 {
		return nil
	}
	var pool []deb.Package
	if p.o.AptDir != "" {
		files, err := filepath.Glob(filepath.Join(p.o.AptDir, "*.deb"))
		if err != nil || len(files) == 0 {
			if st, serr := os.Stat(p.o.AptDir); serr != nil || !st.IsDir() {
				return newError("image edit", "--apt-dir "+p.o.AptDir, errors.New("not a directory"), "give a directory of .deb files")
			}
			if st, serr := os.Stat(filepath.Join(p.o.AptDir, "dists")); serr == nil && st.IsDir() {
				return newError("image edit", "--apt-dir "+p.o.AptDir, errors.New("holds no .deb but a dists/ directory: it is an apt repository"),
					fmt.Sprintf("give it as --apt-source \"%s SUITE COMPONENT\"", p.o.AptDir))
			}
		}
		sort.Strings(files)
		for _, f := range files {
			pkg, err := readDeb(ctx, f)
			if err != nil {
				return err
			}
			pool = append(pool, pkg)
		}
	}
	from := map[string]aptPackage{}
	fetch := newAptFetcher(p.o.AptKeyring, p.o.Log)
	for i := range p.sources {
		pkgs, err := fetch.loadAptSource(ctx, &p.sources[i], p.debArch, from)
		if err != nil {
			return err
		}
		pool = append(pool, pkgs...)
	}
	installed, err := squashfsPackages(ctx, filepath.Join(p.o.Bundle, RootfsName))
	if err != nil {
		return err
	}
	extra, err := deb.Resolve(p.debArch, installed, want, pool)
	var me *deb.MissingError
	switch {
	case errors.As(err, &me):
		return p.missingError(me)
	case err != nil:
		return newError("image edit", "packages", err, "fix the package's control file")
	}
	for _, pkg := range extra {
		if pkg.File == "" { // from an apt source
			ap := from[aptKey(pkg)]
			if ap.src.local == "" && p.fetched == "" {
				if p.fetched, err = os.MkdirTemp(filepath.Dir(p.o.Out), "."+filepath.Base(p.o.Out)+".edit-apt-"); err != nil {
					return newError("image edit", p.o.Out, err, "the directory that will hold --out must exist and be writable")
				}
			}
			file, err := fetch.download(ctx, ap, p.fetched)
			if err != nil {
				return err
			}
			got, err := readDeb(ctx, file)
			if err != nil {
				return err
			}
			if got.Name != pkg.Name || got.Version != pkg.Version || got.Arch != pkg.Arch {
				return sourceError(ap.src, fmt.Errorf("%s is %s %s (%s), the index says %s %s (%s)", ap.filename, got.Name, got.Version, got.Arch, pkg.Name, pkg.Version, pkg.Arch),
					"regenerate the repository's Packages index")
			}
			pkg.File = file
			fmt.Fprintf(p.o.Log, "image edit: %s %s from %s, sha256 %s as the index says\n", pkg.Name, pkg.Version, ap.src.where(ap.filename), ap.sha256)
			p.debs = append(p.debs, debFile{pkg: pkg, sha256: ap.sha256})
			continue
		}
		sum, err := fileSHA256(pkg.File)
		if err != nil {
			return newError("image edit", pkg.File, err, "check --apt-dir")
		}
		p.debs = append(p.debs, debFile{pkg: pkg, sha256: sum})
	}
	return nil
}

// missingDepError is a dependency that no package source has, naming the
// sources that were searched.
type missingDepError struct {
	me    *deb.MissingError
	where string
}

func (e *missingDepError) Error() string {
	msg := fmt.Sprintf("%s depends on %s, which is neither in the image nor in %s", e.me.Package, e.me.Dependency, e.where)
	if len(e.me.WrongArch) > 0 {
		msg += " (only for another architecture: " + strings.Join(e.me.WrongArch, ", ") + ")"
	}
	return msg
}

func (e *missingDepError) Unwrap() error { return e.me }

// missingError is the operator error for a missing dependency: it names
// where the resolver looked and what to add.
func (p *editPlan) missingError(me *deb.MissingError) error {
	var where []string
	if p.o.AptDir != "" {
		where = append(where, "--apt-dir "+p.o.AptDir)
	}
	for _, s := range p.sources {
		where = append(where, fmt.Sprintf("--apt-source %q", s.raw))
	}
	dep := strings.Fields(me.Dependency)[0]
	fix := "add the package that provides " + dep + " to the --apt-source repository (and regenerate its Packages index), or put its .deb into an --apt-dir DIR"
	switch {
	case len(where) == 0:
		where = []string{"any package source (none was given)"}
		fix = "pass --apt-dir DIR, a directory holding the .debs it depends on, or --apt-source \"URI SUITE COMPONENT\", a repository that has them"
	case len(p.sources) == 0:
		fix = "put the .deb that provides " + dep + " into --apt-dir " + p.o.AptDir + ", or give a repository that has it with --apt-source"
	}
	return newError("image edit", me.Package, &missingDepError{me: me, where: strings.Join(where, " or ")}, fix)
}

// squashfsPackages reads var/lib/dpkg/status out of a squashfs; an image
// without one has no packages.
func squashfsPackages(ctx context.Context, sqfs string) ([]deb.Package, error) {
	out, err := exec.CommandContext(ctx, "unsquashfs", "-cat", sqfs, "var/lib/dpkg/status").Output()
	if err != nil {
		return nil, nil
	}
	pkgs, err := deb.ParseStatus(bytes.NewReader(out))
	if err != nil {
		return nil, newError("image edit", sqfs+": /var/lib/dpkg/status", err, "the image's dpkg database is damaged; rebuild the image")
	}
	return pkgs, nil
}

// unpack extracts the input root into root, as root, keeping owners, modes,
// xattrs and device nodes.
func (p *editPlan) unpack(ctx context.Context, root string) error {
	cmd := exec.CommandContext(ctx, "unsquashfs", "-no-progress", "-quiet", "-d", root, filepath.Join(p.o.Bundle, RootfsName))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return spaceHint(newError("image edit", filepath.Join(p.o.Bundle, RootfsName),
			fmt.Errorf("unsquashfs: %w: %s", err, lastLines(out, 5)), "install squashfs-tools, and check the input bundle"), p.o.Out)
	}
	return nil
}

// apply makes the changes in their fixed order and returns what it did.
func (p *editPlan) apply(ctx context.Context, root string) ([]Edit, error) {
	sb := sandbox{root: root, log: p.o.Log, epoch: p.created.Unix()}
	var edits []Edit
	base := p.base.Version
	for _, name := range p.o.RemovePlugins {
		e, err := p.removePlugin(ctx, sb, root, name)
		if err != nil {
			return nil, err
		}
		edits = append(edits, e)
	}
	var modules, otherModules []string // installed for the image's kernel, for another
	if len(p.debs) > 0 {
		if err := p.installDebs(ctx, sb, root); err != nil {
			return nil, err
		}
		if p.kver == "" {
			p.kver, _ = p.kernelVersion() // only to tell the packages' modules apart
		}
		modules, otherModules = p.debModules(root)
		if len(modules) > 0 && len(p.kmods) == 0 {
			if err := sb.host(ctx, "depmod", "-b", root, p.kver); err != nil {
				return nil, newError("image edit", "depmod", err, "see depmod's messages above")
			}
		}
		for _, d := range p.debs {
			e := Edit{Op: EditInstallPackage, Base: base, Name: d.pkg.Name, Version: d.pkg.Version, Arch: d.pkg.Arch,
				Source: filepath.Base(d.pkg.File), SHA256: d.sha256}
			if d.plugin {
				e.Op = EditInstallPlugin
			}
			if d.pkg.NeededBy != "" {
				e.Reason = "dependency of " + d.pkg.NeededBy
			}
			edits = append(edits, e)
		}
	}
	for _, d := range p.dirs {
		e, err := p.installDirPlugin(ctx, sb, root, d)
		if err != nil {
			return nil, err
		}
		edits = append(edits, e)
	}
	for _, a := range p.adds {
		o, err := lookupOwner(root, a.user, a.group)
		if err != nil {
			return nil, newError("image edit", "--add "+a.raw, err, "use a user and group the image has, or numbers")
		}
		paths, err := copyInto(root, a.src, a.dest, o, a.mode)
		if err != nil {
			return nil, spaceHint(newError("image edit", "--add "+a.raw, err, "check the source and the destination path"), p.o.Out)
		}
		e := Edit{Op: EditAdd, Base: base, Source: filepath.Base(a.src), Paths: paths}
		if sum, err := fileSHA256(a.src); err == nil {
			e.SHA256 = sum
		}
		edits = append(edits, e)
	}
	if len(p.kmods) > 0 {
		es, err := p.installKmods(ctx, sb, root)
		if err != nil {
			return nil, err
		}
		edits = append(edits, es...)
		for _, e := range es {
			modules = append(modules, e.Name)
		}
	}
	for _, pw := range p.passwds {
		if err := setPassword(root, pw[0], pw[1], p.created.Unix()/86400); err != nil {
			return nil, newError("image edit", "--passwd "+pw[0]+":…", err, "the user must exist in the image's /etc/passwd; create it with --script")
		}
		edits = append(edits, Edit{Op: EditPasswd, Base: base, Name: pw[0], Paths: []string{"/etc/shadow"}})
	}
	for _, k := range p.sshkeys {
		where, err := addSSHKeys(root, k[0], k[1])
		if err != nil {
			return nil, newError("image edit", "--sshkey "+k[0]+":"+k[1], err, "the user must exist in the image's /etc/passwd with a home directory")
		}
		sum, _ := fileSHA256(k[1])
		edits = append(edits, Edit{Op: EditSSHKey, Base: base, Name: k[0], Source: filepath.Base(k[1]), SHA256: sum, Paths: []string{where}})
	}
	for _, s := range p.o.Scripts {
		if err := sb.script(ctx, s); err != nil {
			return nil, err
		}
		sum, _ := fileSHA256(s)
		edits = append(edits, Edit{Op: EditScript, Base: base, Source: filepath.Base(s), SHA256: sum, Network: "none"})
	}
	es, err := p.initramfsStep(ctx, root, modules, otherModules)
	if err != nil {
		return nil, err
	}
	return append(edits, es...), nil
}

// installDebs runs the host's dpkg on the root (dpkg --root), in the
// sandbox: maintainer scripts run chrooted into the root by dpkg itself,
// with no network. A policy-rc.d that forbids starting services is in place
// while it runs, unless the image has its own.
func (p *editPlan) installDebs(ctx context.Context, sb sandbox, root string) error {
	admin := filepath.Join(root, "var/lib/dpkg")
	for _, d := range []string{"info", "updates", "triggers"} {
		if _, err := mkdirInRoot(root, "/var/lib/dpkg/"+d); err != nil {
			return newError("image edit", root, err, "the image's /var/lib/dpkg is not a directory")
		}
	}
	if _, err := os.Stat(filepath.Join(admin, "status")); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(filepath.Join(admin, "status"), nil, 0o644); err != nil {
			return spaceHint(newError("image edit", admin, err, "check the filesystem"), p.o.Out)
		}
	}
	undo, err := policyRCD(root)
	if err != nil {
		return err
	}
	defer undo()
	args := []string{"--root=" + root, "--log=/dev/null", "--force-confdef", "--force-confold", "--install"}
	for i := len(p.debs) - 1; i >= 0; i-- { // dependencies first; dpkg orders the configuration itself
		args = append(args, p.debs[i].pkg.File)
	}
	if err := sb.host(ctx, "dpkg", args...); err != nil {
		return spaceHint(newError("image edit", "dpkg --install", err, "see dpkg's messages above; --apt-dir must hold every dependency"), p.o.Out)
	}
	return nil
}

// policyRCD installs /usr/sbin/policy-rc.d saying "do not start services"
// unless the image has one, and returns the function that removes it again.
func policyRCD(root string) (func(), error) {
	host, err := inRoot(root, "/usr/sbin/policy-rc.d", false)
	if err != nil {
		return nil, newError("image edit", root, err, "check the image's /usr/sbin")
	}
	if _, err := os.Lstat(host); err == nil {
		return func() {}, nil
	}
	if _, err := mkdirInRoot(root, "/usr/sbin"); err != nil {
		return nil, newError("image edit", root, err, "check the image's /usr/sbin")
	}
	if err := os.WriteFile(host, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return nil, newError("image edit", host, err, "check the filesystem")
	}
	return func() { os.Remove(host) }, nil
}

// pluginDir is where directory plugins record what they installed.
const pluginDir = "/usr/lib/nodeinit/plugins"

// pluginManifestName is the file that makes a directory a plugin.
const pluginManifestName = "plugin.json"

// PluginManifest is a directory plugin's plugin.json: a name and version,
// the files to install (Src relative to the plugin directory, Dest absolute
// in the image; Owner, Group and Mode optional) and an optional script,
// relative to the directory, run in the image root after the files are in
// place.
type PluginManifest struct {
	Name    string       `json:"name"`
	Version string       `json:"version"`
	Files   []PluginFile `json:"files"`
	Script  string       `json:"script,omitempty"`
}

// PluginFile is one file or directory a plugin installs.
type PluginFile struct {
	Src   string `json:"src"`
	Dest  string `json:"dest"`
	Owner string `json:"owner,omitempty"`
	Group string `json:"group,omitempty"`
	Mode  string `json:"mode,omitempty"`
}

// pluginRecord is what an installed directory plugin leaves in pluginDir.
type pluginRecord struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Paths   []string `json:"paths"`
}

// dirPlugin is a checked directory plugin.
type dirPlugin struct {
	dir string
	m   PluginManifest
}

// pluginNameRE is what a plugin's name may be (compiled on first use: /init
// links this package and never edits an image).
var pluginNameRE = lazyre.New(`^[a-z0-9][a-z0-9.+-]*$`)

func validPluginName(n string) bool { return pluginNameRE().MatchString(n) }

// readDirPlugin reads and checks DIR/plugin.json (DIR may also name the file).
func readDirPlugin(p string) (dirPlugin, error) {
	dir := p
	if filepath.Base(p) == pluginManifestName {
		dir = filepath.Dir(p)
	}
	mf := filepath.Join(dir, pluginManifestName)
	const fix = `a plugin is a .deb, or a directory with plugin.json: {"name": "agent", "version": "1.0", "files": [{"src": "agent.conf", "dest": "/etc/agent.conf"}], "script": "setup.sh"}`
	b, err := os.ReadFile(mf)
	if err != nil {
		return dirPlugin{}, newError("image edit", "--install-plugin "+p, err, fix)
	}
	var m PluginManifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return dirPlugin{}, newError("image edit", mf, err, fix)
	}
	bad := func(format string, args ...any) error {
		return newError("image edit", mf, fmt.Errorf(format, args...), fix)
	}
	if !validPluginName(m.Name) || m.Version == "" {
		return dirPlugin{}, bad("name must be lower-case letters, digits and .+- and version must be set")
	}
	inDir := func(rel string) bool {
		return rel != "" && !filepath.IsAbs(rel) && filepath.IsLocal(rel)
	}
	for _, f := range m.Files {
		if !inDir(f.Src) {
			return dirPlugin{}, bad("file src %q must be a path inside the plugin directory", f.Src)
		}
		if _, err := os.Lstat(filepath.Join(dir, f.Src)); err != nil {
			return dirPlugin{}, bad("file src %q: %v", f.Src, err)
		}
		if !strings.HasPrefix(f.Dest, "/") || path.Clean(f.Dest) == "/" {
			return dirPlugin{}, bad("file dest %q must be an absolute path other than /", f.Dest)
		}
		if _, err := parseAdd(filepath.Join(dir, f.Src) + ":" + f.Dest + ":" + f.Owner + ":" + f.Group + ":" + f.Mode); err != nil {
			return dirPlugin{}, err
		}
	}
	if m.Script != "" {
		if !inDir(m.Script) {
			return dirPlugin{}, bad("script %q must be a path inside the plugin directory", m.Script)
		}
		if err := checkRegular(filepath.Join(dir, m.Script), "plugin script"); err != nil {
			return dirPlugin{}, err
		}
	}
	return dirPlugin{dir: dir, m: m}, nil
}

// installDirPlugin copies a plugin's files, runs its script and records it.
func (p *editPlan) installDirPlugin(ctx context.Context, sb sandbox, root string, d dirPlugin) (Edit, error) {
	subject := "plugin " + d.m.Name
	if _, err := readPluginRecord(root, d.m.Name); err == nil {
		return Edit{}, newError("image edit", subject, errors.New("the image already has this plugin"), "remove it in the same edit with --remove-plugin "+d.m.Name)
	}
	var paths []string
	for _, f := range d.m.Files {
		a, err := parseAdd(filepath.Join(d.dir, f.Src) + ":" + f.Dest + ":" + f.Owner + ":" + f.Group + ":" + f.Mode)
		if err != nil {
			return Edit{}, err
		}
		o, err := lookupOwner(root, a.user, a.group)
		if err != nil {
			return Edit{}, newError("image edit", subject, err, "use a user and group the image has, or numbers")
		}
		wrote, err := copyInto(root, a.src, a.dest, o, a.mode)
		if err != nil {
			return Edit{}, spaceHint(newError("image edit", subject, err, "check the plugin's files"), p.o.Out)
		}
		paths = append(paths, wrote...)
	}
	if d.m.Script != "" {
		if err := sb.script(ctx, filepath.Join(d.dir, d.m.Script)); err != nil {
			return Edit{}, err
		}
	}
	rec := pluginRecord{Name: d.m.Name, Version: d.m.Version, Paths: paths}
	b, _ := json.MarshalIndent(rec, "", "  ")
	if _, err := mkdirInRoot(root, pluginDir); err != nil {
		return Edit{}, newError("image edit", subject, err, "check the image's /usr/lib")
	}
	recPath := pluginDir + "/" + d.m.Name + ".json"
	if err := rewriteFile(root, recPath, append(b, '\n'), 0o644); err != nil {
		return Edit{}, spaceHint(newError("image edit", subject, err, "check the filesystem"), p.o.Out)
	}
	sum, _ := fileSHA256(filepath.Join(d.dir, pluginManifestName))
	return Edit{Op: EditInstallPlugin, Base: p.base.Version, Name: d.m.Name, Version: d.m.Version,
		Source: filepath.Base(d.dir), SHA256: sum, Paths: append(paths, recPath)}, nil
}

func readPluginRecord(root, name string) (pluginRecord, error) {
	var rec pluginRecord
	host, err := inRoot(root, pluginDir+"/"+name+".json", true)
	if err != nil {
		return rec, err
	}
	b, err := os.ReadFile(host)
	if err != nil {
		return rec, err
	}
	return rec, json.Unmarshal(b, &rec)
}

// removePlugin removes a directory plugin's files and record, or purges the
// package of that name with dpkg.
func (p *editPlan) removePlugin(ctx context.Context, sb sandbox, root, name string) (Edit, error) {
	if rec, err := readPluginRecord(root, name); err == nil {
		paths := append([]string{}, rec.Paths...)
		sort.Sort(sort.Reverse(sort.StringSlice(paths))) // children before their directories
		for _, ip := range paths {
			host, err := inRoot(root, ip, false)
			if err != nil {
				return Edit{}, newError("image edit", "--remove-plugin "+name, err, "check the plugin record in "+pluginDir)
			}
			if st, err := os.Lstat(host); err == nil && st.IsDir() {
				os.Remove(host) // only when empty: other files may live there
				continue
			}
			if err := os.Remove(host); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return Edit{}, newError("image edit", "--remove-plugin "+name, err, "check the image")
			}
		}
		recPath := pluginDir + "/" + name + ".json"
		host, _ := inRoot(root, recPath, false)
		if err := os.Remove(host); err != nil {
			return Edit{}, newError("image edit", "--remove-plugin "+name, err, "check the image")
		}
		sort.Strings(paths)
		return Edit{Op: EditRemovePlugin, Base: p.base.Version, Name: name, Version: rec.Version, Paths: append(paths, recPath)}, nil
	}
	pkgs, err := rootPackages(root)
	if err != nil {
		return Edit{}, err
	}
	for _, pkg := range pkgs {
		if pkg.Name == name {
			if err := sb.host(ctx, "dpkg", "--root="+root, "--log=/dev/null", "--purge", name); err != nil {
				return Edit{}, newError("image edit", "--remove-plugin "+name, err, "see dpkg's messages above: packages that depend on it must be removed too")
			}
			return Edit{Op: EditRemovePackage, Base: p.base.Version, Name: name, Version: pkg.Version, Arch: pkg.Arch}, nil
		}
	}
	var have []string
	if ents, err := os.ReadDir(filepath.Join(root, pluginDir)); err == nil {
		for _, e := range ents {
			have = append(have, strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	fix := "the image has no directory plugins"
	if len(have) > 0 {
		fix = "its plugins are: " + strings.Join(have, ", ")
	}
	return Edit{}, newError("image edit", "--remove-plugin "+name, errors.New("the image has neither a plugin nor a package of that name"), fix)
}

// rootPackages reads the installed packages of an unpacked root.
func rootPackages(root string) ([]deb.Package, error) {
	host, err := inRoot(root, "/var/lib/dpkg/status", true)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(host)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return deb.ParseStatus(f)
}

// kernelVersion is the release of the image's kernel: --kernel-version, else
// the version in the bundle's vmlinuz (an x86 bzImage says it in its setup
// header), else the one directory under the squashfs's lib/modules.
func (p *editPlan) kernelVersion() (string, error) {
	if p.o.KernelVersion != "" {
		return p.o.KernelVersion, nil
	}
	if v := bzImageVersion(filepath.Join(p.o.Bundle, KernelName)); v != "" {
		return v, nil
	}
	out, err := exec.Command("unsquashfs", "-lls", "-d", "", filepath.Join(p.o.Bundle, RootfsName), "lib/modules", "usr/lib/modules").Output()
	var found []string
	if err == nil {
		re := regexp.MustCompile(`(?m)^d\S+\s.*?\s/?(?:usr/)?lib/modules/([^/\s]+)$`)
		for _, m := range re.FindAllStringSubmatch(string(out), -1) {
			if !contains(found, m[1]) {
				found = append(found, m[1])
			}
		}
	}
	if len(found) == 1 {
		return found[0], nil
	}
	return "", newError("image edit", "--install-kmod", fmt.Errorf("cannot tell the image kernel's version (lib/modules has %d versions: %s)", len(found), strings.Join(found, ", ")),
		"pass --kernel-version, the kernel's uname -r")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// bzImageVersion reads the kernel release from an x86 bzImage setup header,
// or "" when the file is not one.
func bzImageVersion(p string) string {
	f, err := os.Open(p)
	if err != nil {
		return ""
	}
	defer f.Close()
	hdr := make([]byte, 0x210)
	if _, err := f.ReadAt(hdr, 0); err != nil || string(hdr[0x202:0x206]) != "HdrS" {
		return ""
	}
	off := int64(binary.LittleEndian.Uint16(hdr[0x20e:])) + 0x200
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, off)
	s, _, _ := strings.Cut(string(buf[:n]), "\x00")
	if fs := strings.Fields(s); len(fs) > 0 {
		return fs[0]
	}
	return ""
}

// installKmods places each module under lib/modules/<version>/extra and
// runs depmod for that version in the root. A module whose vermagic names
// another kernel is refused.
func (p *editPlan) installKmods(ctx context.Context, sb sandbox, root string) ([]Edit, error) {
	var edits []Edit
	for _, k := range p.kmods {
		out, err := exec.CommandContext(ctx, "modinfo", "-F", "vermagic", k).Output()
		if err != nil {
			return nil, newError("image edit", "--install-kmod "+k, fmt.Errorf("modinfo: %w", err), "pass a kernel module built for the image's kernel (install kmod for modinfo)")
		}
		if fs := strings.Fields(string(out)); len(fs) == 0 || fs[0] != p.kver {
			return nil, newError("image edit", "--install-kmod "+k, fmt.Errorf("the module is built for kernel %q, the image's kernel is %s", strings.TrimSpace(string(out)), p.kver),
				"build the module against the image's kernel headers ("+p.kver+")")
		}
		dest := "/lib/modules/" + p.kver + "/extra/" + filepath.Base(k)
		paths, err := copyInto(root, k, dest, owner{}, 0o644)
		if err != nil {
			return nil, spaceHint(newError("image edit", "--install-kmod "+k, err, "check the image's /lib/modules"), p.o.Out)
		}
		sum, _ := fileSHA256(k)
		name := strings.SplitN(filepath.Base(k), ".ko", 2)[0]
		edits = append(edits, Edit{Op: EditInstallKmod, Base: p.base.Version, Name: name, Version: p.kver, Source: filepath.Base(k), SHA256: sum, Paths: paths})
	}
	if err := sb.host(ctx, "depmod", "-b", root, p.kver); err != nil {
		return nil, newError("image edit", "depmod", err, "see depmod's messages above")
	}
	return edits, nil
}

// setPassword sets user's hash (and the day it changed) in the image's
// /etc/shadow, adding the user's line when the shadow file lacks it.
func setPassword(root, user, hash string, day int64) error {
	accts, err := readAccounts(root, false)
	if err != nil {
		return err
	}
	if _, ok := accts[user]; !ok {
		return fmt.Errorf("the image has no user %q", user)
	}
	host, err := inRoot(root, "/etc/shadow", true)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(host)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var lines []string
	found := false
	for _, l := range strings.Split(strings.TrimSuffix(string(old), "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, ":")
		if f[0] == user && len(f) >= 3 {
			f[1], f[2] = hash, fmt.Sprint(day)
			l, found = strings.Join(f, ":"), true
		}
		lines = append(lines, l)
	}
	if !found {
		lines = append(lines, fmt.Sprintf("%s:%s:%d:0:99999:7:::", user, hash, day))
	}
	return rewriteFile(root, "/etc/shadow", []byte(strings.Join(lines, "\n")+"\n"), 0o640)
}

// addSSHKeys appends the keys of file that the user's authorized_keys lacks,
// and returns its path in the image.
func addSSHKeys(root, user, file string) (string, error) {
	accts, err := readAccounts(root, false)
	if err != nil {
		return "", err
	}
	a, ok := accts[user]
	if !ok || !strings.HasPrefix(a.home, "/") {
		return "", fmt.Errorf("the image has no user %q with a home directory", user)
	}
	sshDir := path.Join(a.home, ".ssh")
	hostDir, err := mkdirInRoot(root, sshDir)
	if err != nil {
		return "", err
	}
	if err := os.Lchown(hostDir, a.uid, a.gid); err != nil {
		return "", err
	}
	if err := os.Chmod(hostDir, 0o700); err != nil {
		return "", err
	}
	keys, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	ak := path.Join(sshDir, "authorized_keys")
	host, err := inRoot(root, ak, true)
	if err != nil {
		return "", err
	}
	old, _ := os.ReadFile(host)
	have := map[string]bool{}
	for _, l := range strings.Split(string(old), "\n") {
		have[strings.TrimSpace(l)] = true
	}
	out := string(old)
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	for _, l := range strings.Split(string(keys), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") && !have[l] {
			out += l + "\n"
			have[l] = true
		}
	}
	if err := rewriteFile(root, ak, []byte(out), 0o600); err != nil {
		return "", err
	}
	if err := os.Lchown(host, a.uid, a.gid); err != nil {
		return "", err
	}
	return ak, os.Chmod(host, 0o600)
}

// lastLines returns the last n lines of b, for error messages.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
