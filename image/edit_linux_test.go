//go:build !initramfs

package image

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"aead.dev/minisign"
	"golang.org/x/sys/unix"
)

// The root tests of `nodeinit image edit`: they need root (unsquashfs keeps
// owners, dpkg --root, chroot and namespaces), squashfs-tools and dpkg-deb.

func needEditTools(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (owners, chroot, namespaces)")
	}
	for _, tool := range []string{"mksquashfs", "unsquashfs", "dpkg", "dpkg-deb", "depmod", "modinfo"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static) for a shell in the test image")
	}
}

// editFixture is a signed 1.0 bundle and the inputs of an edit.
type editFixture struct {
	dir, bundle, key, pub string
	aptDir                string
}

func writeFiles(t *testing.T, base string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := fs.FileMode(0o644)
		if strings.HasPrefix(content, "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// newEditFixture builds the test bundle as blackbox/env_linux_test.go does,
// with a busybox root that has users, a dpkg database and lib/modules.
func newEditFixture(t *testing.T) *editFixture {
	t.Helper()
	return newEditFixtureWith(t, fixtureOptions{})
}

// fixtureOptions change the test bundle: the kernel release of its
// lib/modules, files put into the root, and the initrd.img (made from the
// public key that signs the bundle).
type fixtureOptions struct {
	kver   string
	root   func(root string)
	initrd func(dir, oldPub string) string
}

func newEditFixtureWith(t *testing.T, fo fixtureOptions) *editFixture {
	t.Helper()
	needEditTools(t)
	f := &editFixture{dir: t.TempDir()}
	if fo.kver == "" {
		fo.kver = hostKernel(t)
	}
	root := filepath.Join(f.dir, "root")
	writeFiles(t, root, map[string]string{
		"etc/os-release":        "NAME=testnode\nVERSION=1.0\n",
		"etc/passwd":            "root:x:0:0:root:/root:/bin/sh\nagent:x:990:990::/var/lib/agent:/bin/false\n",
		"etc/group":             "root:x:0:\nagent:x:990:\n",
		"etc/shadow":            "root:*:19000:0:99999:7:::\nagent:!:19000::::::\n",
		"var/lib/dpkg/status":   "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\nDescription: base\n",
		"var/lib/dpkg/info/.k":  "",
		"usr/sbin/.k":           "",
		"lib/modules/.k":        "",
		"root/.profile":         "# root\n",
		"mnt/.k":                "",
		"var/lib/agent/.k":      "",
		"usr/share/doc/base/ro": "base\n",
	})
	for _, k := range []string{"var/lib/dpkg/info/.k", "usr/sbin/.k", "lib/modules/.k", "mnt/.k", "var/lib/agent/.k"} {
		os.Remove(filepath.Join(root, k))
	}
	if err := os.MkdirAll(filepath.Join(root, "lib/modules", fo.kver), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFileTo("/bin/busybox", filepath.Join(root, "bin/busybox")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, "bin/busybox"), 0o755)
	if err := os.Symlink("busybox", filepath.Join(root, "bin/sh")); err != nil {
		t.Fatal(err)
	}
	if fo.root != nil {
		fo.root(root)
	}
	oldKey := filepath.Join(f.dir, "old.key")
	if err := GenerateKey(filepath.Join(f.dir, "old.pub"), oldKey, ""); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(f.dir, "src")
	writeFiles(t, src, map[string]string{"vmlinuz": "kernel 1.0\n", "initrd.img": "initrd 1.0\n", "loader.efi": "MZ loader 1.0\n"})
	initrd := filepath.Join(src, "initrd.img")
	if fo.initrd != nil {
		initrd = fo.initrd(f.dir, filepath.Join(f.dir, "old.pub"))
	}
	f.bundle = filepath.Join(f.dir, "bundle-1.0")
	if _, err := Build(BuildOptions{Root: root, Kernel: filepath.Join(src, "vmlinuz"), Initrd: initrd,
		Loader: filepath.Join(src, "loader.efi"), Name: "testnode", Version: "1.0", Out: f.bundle,
		Created: time.Unix(1700000000, 0), Compression: "gzip", UpgradeFrom: []string{"0.x"}}); err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := Sign(f.bundle, oldKey, ""); err != nil {
		t.Fatal(err)
	}
	f.key, f.pub = filepath.Join(f.dir, "new.key"), filepath.Join(f.dir, "new.pub")
	if err := GenerateKey(f.pub, f.key, ""); err != nil {
		t.Fatal(err)
	}
	f.aptDir = filepath.Join(f.dir, "apt")
	f.deb(t, f.aptDir, "libhello", "1.0", "amd64", "base-files (>= 12)", map[string]string{"usr/lib/libhello.so.1": "ELF-ish\n"})
	f.deb(t, f.aptDir, "libhello", "0.9", "amd64", "", map[string]string{"usr/lib/libhello.so.0": "old\n"})
	return f
}

// hostKernel is the release the test image's lib/modules is made for: one
// installed on this machine that has uncompressed modules, so that one of
// them can be installed into the image; "0.0-test" when there is none.
func hostKernel(t *testing.T) string {
	mods, _ := filepath.Glob("/lib/modules/*/kernel/net/*/*.ko")
	if len(mods) == 0 {
		return "0.0-test"
	}
	return strings.Split(strings.TrimPrefix(mods[0], "/lib/modules/"), "/")[0]
}

// deb builds a package with dpkg-deb --build into dir and returns its path.
// A file named DEBIAN/postinst becomes its maintainer script.
func (f *editFixture) deb(t *testing.T, dir, name, version, arch, depends string, files map[string]string) string {
	t.Helper()
	extra := ""
	if depends != "" {
		extra = "Depends: " + depends + "\n"
	}
	return f.debControl(t, dir, name, version, arch, extra, files)
}

// debControl is deb with extra control lines ("Provides: x\n").
func (f *editFixture) debControl(t *testing.T, dir, name, version, arch, extra string, files map[string]string) string {
	t.Helper()
	src := filepath.Join(f.dir, "debsrc-"+name+"-"+version+"-"+arch)
	os.RemoveAll(src)
	control := "Package: " + name + "\nVersion: " + version + "\nArchitecture: " + arch + "\nMaintainer: Test <t@example.com>\n"
	control += extra
	control += "Description: test package " + name + "\n"
	all := map[string]string{"DEBIAN/control": control}
	for k, v := range files {
		all[k] = v
	}
	writeFiles(t, src, all)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name+"_"+version+"_"+arch+".deb")
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "--build", src, out)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, b)
	}
	return out
}

// inputs are the operator's files for the full edit.
func (f *editFixture) inputs(t *testing.T) EditOptions {
	t.Helper()
	in := filepath.Join(f.dir, "in")
	hello := f.deb(t, filepath.Join(in, "debs"), "hello", "1.0", "amd64", "libhello (>= 1.0), base-files",
		map[string]string{"usr/share/hello/hello.txt": "hello from the plugin package\n",
			"DEBIAN/postinst": "#!/bin/sh\nset -e\n/bin/busybox mkdir -p /var/lib/hello\necho configured > /var/lib/hello/state\n"})
	writeFiles(t, in, map[string]string{
		"motd":                "edited node\n",
		"conf.d/a.conf":       "a=1\n",
		"conf.d/b.conf":       "b=2\n",
		"id.pub":              "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITest operator@example\n",
		"agent/plugin.json":   `{"name": "agent", "version": "2.0", "files": [{"src": "agent.conf", "dest": "/etc/agent/agent.conf", "owner": "agent", "group": "agent", "mode": "0640"}], "script": "setup.sh"}`,
		"agent/agent.conf":    "server=engine.example\n",
		"agent/setup.sh":      "#!/bin/sh\necho setup > /etc/agent/setup-ran\n",
		"check-sandbox.sh":    checkSandboxScript,
		"failing-script.sh":   "#!/bin/sh\n/bin/busybox mount -t tmpfs none /mnt\necho about to fail\nexit 3\n",
		"unused/placeholder":  "",
		"conf.d/sub/c.conf":   "c=3\n",
		"kmod/placeholder.md": "",
	})
	return EditOptions{
		Bundle: f.bundle, Key: f.key, PublicKey: f.pub,
		Debs: []string{hello}, AptDir: f.aptDir,
		Plugins: []string{filepath.Join(in, "agent")},
		Adds:    []string{filepath.Join(in, "motd") + ":/etc/motd", filepath.Join(in, "conf.d") + ":/etc/node.d:root:agent:0750"},
		Passwds: []string{"root:$6$editsalt$Q2hhbmdlZEJ5VGhlRWRpdA"},
		SSHKeys: []string{"root:" + filepath.Join(in, "id.pub")},
		Scripts: []string{filepath.Join(in, "check-sandbox.sh")},
	}
}

// checkSandboxScript proves the sandbox from inside: /proc, /sys and /dev
// are there, the only network interface is lo, and a mount the script makes
// does not stop the edit from cleaning up.
const checkSandboxScript = `#!/bin/sh
set -e
test -r /proc/self/status
test -d /sys/kernel
test -c /dev/null
/bin/busybox mount -t tmpfs none /mnt
ifaces=$(/bin/busybox grep -c : /proc/net/dev)
echo "interfaces=$ifaces epoch=$SOURCE_DATE_EPOCH" > /etc/edited
`

// bundleDigests is the SHA-256 of every file of a bundle directory.
func bundleDigests(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		sum, err := fileSHA256(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sum
	}
	return out
}

func sameDigests(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestEditBundle edits the 1.0 bundle with a locally built .deb and its
// dependency from --apt-dir, a directory plugin, files, a password, an SSH
// key and a script; checks the signature, the manifest's edits and the diff;
// and runs the same edit again to get the same bytes.
func TestEditBundle(t *testing.T) {
	f := newEditFixture(t)
	before := bundleDigests(t, f.bundle)
	o := f.inputs(t)
	o.Out = filepath.Join(f.dir, "out1")
	m, err := EditBundle(context.Background(), o)
	if err != nil {
		t.Fatalf("edit: %v", err)
	}
	if !sameDigests(before, bundleDigests(t, f.bundle)) {
		t.Fatal("the input bundle changed")
	}
	if m.Version != "1.0+edit.1" || m.Name != "testnode" || m.EditedFrom == nil || m.EditedFrom.Version != "1.0" ||
		len(m.UpgradeFrom) != 1 || m.UpgradeFrom[0] != "0.x" {
		t.Errorf("manifest: version %q name %q from %+v upgrade_from %v", m.Version, m.Name, m.EditedFrom, m.UpgradeFrom)
	}

	// The new key verifies it; the old signature does not.
	kr := Keyring{}
	pub, err := minisign.PublicKeyFromFile(f.pub)
	if err != nil {
		t.Fatal(err)
	}
	kr.Add(pub, f.pub)
	src, err := newDirSource(o.Out, o.Out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), src, kr, VerifyOptions{})
	if err != nil || !b.Signed {
		t.Fatalf("open edited bundle with the new key: %v", err)
	}
	if err := b.VerifyFiles(context.Background()); err != nil {
		t.Fatalf("verify edited files: %v", err)
	}
	checkChunkList(t, o.Out, b.Manifest) // made again for the new rootfs, not copied
	newManifest, _ := os.ReadFile(filepath.Join(o.Out, ManifestName))
	oldSig, _ := os.ReadFile(filepath.Join(f.bundle, SignatureName))
	oldPub, err := minisign.PublicKeyFromFile(filepath.Join(f.dir, "old.pub"))
	if err != nil {
		t.Fatal(err)
	}
	if minisign.Verify(oldPub, newManifest, oldSig) || minisign.Verify(pub, newManifest, oldSig) {
		t.Error("the input's signature verifies the edited manifest")
	}
	oldKR := Keyring{}
	oldKR.Add(oldPub, "old.pub")
	if _, err := Open(context.Background(), src, oldKR, VerifyOptions{}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("open with only the old key: %v, want ErrBadSignature", err)
	}

	// The manifest lists every change.
	var ops []string
	for _, e := range m.Edits {
		ops = append(ops, e.Op+" "+e.Name+" "+e.Version+" "+e.Reason)
		if e.Base != "1.0" {
			t.Errorf("edit %+v: base %q, want 1.0", e, e.Base)
		}
		if e.Op == EditPasswd && strings.Contains(string(newManifest), "editsalt") {
			t.Error("the manifest carries the password hash")
		}
	}
	wantOps := []string{
		"install-package hello 1.0 ", "install-package libhello 1.0 dependency of hello",
		"install-plugin agent 2.0 ", "add   ", "add   ", "passwd root  ", "sshkey root  ", "script   ",
	}
	if strings.Join(ops, "|") != strings.Join(wantOps, "|") {
		t.Errorf("edits:\n%s\nwant:\n%s", strings.Join(ops, "\n"), strings.Join(wantOps, "\n"))
	}
	for _, e := range m.Edits {
		if e.Op == EditScript && (e.Network != "none" || e.Source != "check-sandbox.sh" || e.SHA256 == "") {
			t.Errorf("script edit %+v: want network none, source and digest", e)
		}
		if e.Op == EditAdd && e.Source == "conf.d" && strings.Join(e.Paths, " ") != "/etc/node.d /etc/node.d/a.conf /etc/node.d/b.conf /etc/node.d/sub /etc/node.d/sub/c.conf" {
			t.Errorf("add conf.d paths %v", e.Paths)
		}
	}

	// image diff lists exactly the changes.
	changes, err := Diff(context.Background(), f.bundle, o.Out)
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind+" "+c.Op+c.Name)
	}
	want := []string{
		"version ~",
		"package +hello", "package +libhello",
		"file +/etc/agent", "file +/etc/agent/agent.conf", "file +/etc/agent/setup-ran",
		"file +/etc/edited", "file +/etc/motd",
		"file +/etc/node.d", "file +/etc/node.d/a.conf", "file +/etc/node.d/b.conf", "file +/etc/node.d/sub", "file +/etc/node.d/sub/c.conf",
		"file ~/etc/shadow",
		"file +/root/.ssh", "file +/root/.ssh/authorized_keys",
		"file +/usr/lib", "file +/usr/lib/libhello.so.1", "file +/usr/lib/nodeinit", "file +/usr/lib/nodeinit/plugins", "file +/usr/lib/nodeinit/plugins/agent.json",
		"file +/usr/share/hello", "file +/usr/share/hello/hello.txt",
		"file +/var/lib/dpkg/info/format", "file +/var/lib/dpkg/info/hello.list", "file +/var/lib/dpkg/info/hello.md5sums", "file +/var/lib/dpkg/info/hello.postinst",
		"file +/var/lib/dpkg/info/libhello.list", "file +/var/lib/dpkg/info/libhello.md5sums",
		"file +/var/lib/dpkg/lock", "file +/var/lib/dpkg/lock-frontend", "file ~/var/lib/dpkg/status", "file +/var/lib/dpkg/status-old",
		"file +/var/lib/dpkg/triggers", "file +/var/lib/dpkg/triggers/Lock", "file +/var/lib/dpkg/triggers/Unincorp", "file +/var/lib/dpkg/updates",
		"file +/var/lib/hello", "file +/var/lib/hello/state",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("diff:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	byName := map[string]Change{}
	for _, c := range changes {
		byName[c.Kind+" "+c.Name] = c
	}
	for name, want := range map[string]string{
		"package hello":                   "1.0 (amd64)",
		"file /etc/edited":                "-rw-r--r-- 0:0 30 bytes",
		"file /etc/agent/agent.conf":      "-rw-r----- 990:990 ",
		"file /etc/node.d":                "drwxr-x--- 0:990",
		"file /root/.ssh":                 "drwx------ 0:0",
		"file /var/lib/hello/state":       "-rw-r--r-- 0:0 11 bytes",
		"file /root/.ssh/authorized_keys": "-rw------- 0:0 ",
	} {
		if c := byName[name]; !strings.HasPrefix(c.New, want) {
			t.Errorf("%s: %q, want it to start with %q", name, c.New, want)
		}
	}
	if c := byName["version "]; c.Old != "1.0" || c.New != "1.0+edit.1" {
		t.Errorf("version change %+v", c)
	}

	// What the script saw: only lo, and SOURCE_DATE_EPOCH.
	if out, err := exec.Command("unsquashfs", "-cat", filepath.Join(o.Out, RootfsName), "etc/edited").Output(); err != nil ||
		string(out) != "interfaces=1 epoch=1700000000\n" {
		t.Errorf("/etc/edited = %q, %v; want the script to see one interface (lo)", out, err)
	}
	if out, _ := exec.Command("unsquashfs", "-cat", filepath.Join(o.Out, RootfsName), "etc/shadow").Output(); !strings.Contains(string(out), "root:$6$editsalt$Q2hhbmdlZEJ5VGhlRWRpdA:19675:") {
		t.Errorf("/etc/shadow = %q", out)
	}

	// No mount is left anywhere below the temp dir, and no work directory.
	if mps, _ := MountsUnder(f.dir, "/proc/self/mountinfo"); len(mps) > 0 {
		t.Errorf("still mounted: %v", mps)
	}
	if left, _ := filepath.Glob(filepath.Join(f.dir, ".out1.edit-*")); len(left) > 0 {
		t.Errorf("work directory left: %v", left)
	}

	// The same edit again gives the same bytes.
	o.Out = filepath.Join(f.dir, "out2")
	if _, err := EditBundle(context.Background(), o); err != nil {
		t.Fatalf("second edit: %v", err)
	}
	one, two := bundleDigests(t, filepath.Join(f.dir, "out1")), bundleDigests(t, o.Out)
	if !sameDigests(one, two) {
		t.Errorf("two runs of the same edit differ:\n%v\n%v", one, two)
	}
}

// TestEditKmodAndRemovePlugin installs a module of this machine's kernel
// (depmod then lists it), and edits the edited bundle again to remove the
// plugin and the package: the version goes to +edit.2 and the edits of both
// runs are listed.
func TestEditKmodAndRemovePlugin(t *testing.T) {
	f := newEditFixture(t)
	mods, _ := filepath.Glob(filepath.Join("/lib/modules", hostKernel(t), "kernel/net/*/*.ko"))
	if len(mods) == 0 {
		t.Skip("needs an uncompressed module of this machine's kernel")
	}
	o := f.inputs(t)
	o.Adds, o.Passwds, o.SSHKeys, o.Scripts = nil, nil, nil, nil
	o.Kmods = []string{mods[0]}
	o.Out = filepath.Join(f.dir, "out1")
	m, err := EditBundle(context.Background(), o)
	if err != nil {
		t.Fatalf("edit: %v", err)
	}
	name := strings.TrimSuffix(filepath.Base(mods[0]), ".ko")
	dep, err := exec.Command("unsquashfs", "-cat", filepath.Join(o.Out, RootfsName), "lib/modules/"+hostKernel(t)+"/modules.dep").Output()
	if err != nil || !strings.Contains(string(dep), "extra/"+name+".ko:") {
		t.Errorf("modules.dep = %q, %v; want extra/%s.ko", dep, err, name)
	}
	if e := m.Edits[len(m.Edits)-1]; e.Op != EditInstallKmod || e.Version != hostKernel(t) || e.Name != name {
		t.Errorf("last edit %+v, want install-kmod %s for %s", e, name, hostKernel(t))
	}

	o2 := EditOptions{Bundle: o.Out, Out: filepath.Join(f.dir, "out2"), Key: f.key, RemovePlugins: []string{"agent", "hello"}}
	m2, err := EditBundle(context.Background(), o2)
	if err != nil {
		t.Fatalf("second edit: %v", err)
	}
	if m2.Version != "1.0+edit.2" || len(m2.Edits) != len(m.Edits)+2 {
		t.Errorf("version %q with %d edits, want 1.0+edit.2 with %d", m2.Version, len(m2.Edits), len(m.Edits)+2)
	}
	last := m2.Edits[len(m.Edits):]
	if last[0].Op != EditRemovePlugin || last[0].Name != "agent" || last[0].Base != "1.0+edit.1" ||
		last[1].Op != EditRemovePackage || last[1].Name != "hello" || last[1].Version != "1.0" {
		t.Errorf("removal edits %+v", last)
	}
	changes, err := Diff(context.Background(), o.Out, o2.Out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"package -hello", "file -/usr/share/hello/hello.txt", "file -/etc/agent/agent.conf", "file -/usr/lib/nodeinit/plugins/agent.json"} {
		found := false
		for _, ch := range changes {
			if ch.Kind+" "+ch.Op+ch.Name == c {
				found = true
			}
		}
		if !found {
			t.Errorf("diff lacks %q:\n%v", c, changes)
		}
	}
}

// TestEditRefusals: every bad input gives an error that names it, no
// --out, no work directory, no mount, and an untouched input.
func TestEditRefusals(t *testing.T) {
	f := newEditFixture(t)
	before := bundleDigests(t, f.bundle)
	base := f.inputs(t)
	otherPub := filepath.Join(f.dir, "other.pub")
	if err := GenerateKey(otherPub, filepath.Join(f.dir, "other.key"), ""); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(f.dir, "corrupt.key")
	os.WriteFile(corrupt, []byte("untrusted comment: minisign secret key\nRWQAAEIyAAAA-not-a-key\n"), 0o600)
	encrypted := filepath.Join(f.dir, "enc.key")
	if err := GenerateKey(filepath.Join(f.dir, "enc.pub"), encrypted, "right password"); err != nil {
		t.Fatal(err)
	}
	armDeb := f.deb(t, filepath.Join(f.dir, "arm"), "armagent", "1.0", "arm64", "", map[string]string{"usr/bin/armagent": "arm\n"})
	needy := f.deb(t, filepath.Join(f.dir, "needy"), "needy", "1.0", "amd64", "libmissing (>= 2) | libhello (>= 5)", map[string]string{"usr/share/needy": "x\n"})
	in := filepath.Join(f.dir, "in")

	small := filepath.Join(f.dir, "small")
	os.Mkdir(small, 0o755)
	if err := unix.Mount("tmpfs", small, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount a small tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(small, 0); err != nil {
			t.Errorf("unmount %s: %v", small, err)
		}
	})

	for _, c := range []struct {
		name string
		edit func(*EditOptions)
		want string
	}{
		{"deb for another architecture", func(o *EditOptions) { o.Debs = append(o.Debs, armDeb) }, "armagent 1.0 is built for arm64, the image is amd64"},
		{"dependency missing from --apt-dir", func(o *EditOptions) { o.Debs = []string{needy} }, "needy depends on libmissing (>= 2) | libhello (>= 5)"},
		{"failing script", func(o *EditOptions) { o.Scripts = []string{filepath.Join(in, "failing-script.sh")} }, "exit status 3: about to fail"},
		{"key of another public key", func(o *EditOptions) { o.PublicKey = otherPub }, "is not the private half of"},
		{"corrupt key", func(o *EditOptions) { o.Key, o.PublicKey = corrupt, "" }, "read private key"},
		{"wrong password", func(o *EditOptions) { o.Key, o.PublicKey, o.Password = encrypted, "", "wrong" }, "decrypt private key"},
		{"no space left", func(o *EditOptions) { o.Out = filepath.Join(small, "out") }, "no space left"},
		{"bad --add", func(o *EditOptions) { o.Adds = []string{"nothere:/etc/x"} }, "--add nothere:/etc/x"},
		{"plaintext --passwd", func(o *EditOptions) { o.Passwds = []string{"root:secret"} }, "plaintext"},
		{"unknown user for --sshkey", func(o *EditOptions) { o.SSHKeys = []string{"nobody:" + filepath.Join(in, "id.pub")} }, `no user "nobody"`},
		{"unknown plugin", func(o *EditOptions) { o.RemovePlugins = []string{"vdsm"} }, "--remove-plugin vdsm"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := base
			o.Out = filepath.Join(f.dir, "refused")
			c.edit(&o)
			_, err := EditBundle(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("edit: %v, want an error containing %q", err, c.want)
			}
			if HintOf(err) == "" {
				t.Errorf("error %q has no fix", err)
			}
			t.Logf("refused: %v (fix: %s)", err, HintOf(err))
			if _, err := os.Stat(o.Out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s exists after the refused edit: %v", o.Out, err)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(o.Out), "."+filepath.Base(o.Out)+".edit-*")); len(left) > 0 {
				t.Errorf("work directory left: %v", left)
			}
			if mps, _ := MountsUnder(f.dir, "/proc/self/mountinfo"); len(mps) > 1 || len(mps) == 1 && mps[0] != small {
				t.Errorf("still mounted: %v", mps)
			}
			if !sameDigests(before, bundleDigests(t, f.bundle)) {
				t.Error("the input bundle changed")
			}
		})
	}
}
