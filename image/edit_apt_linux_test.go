//go:build !initramfs

package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// aptRepo is a Debian repository built by a test: pool/main/*.deb and
// dists/bookworm/main/binary-amd64/Packages{,.gz} with a Release file.
type aptRepo struct {
	dir   string
	debs  []string // pool paths relative to dir
	noRel bool     // leave out the Release file
}

// add builds a package into the pool.
func (r *aptRepo) add(t *testing.T, f *editFixture, name, version, arch, extra string, files map[string]string) string {
	t.Helper()
	deb := f.debControl(t, filepath.Join(r.dir, "pool/main"), name, version, arch, extra, files)
	rel, _ := filepath.Rel(r.dir, deb)
	r.debs = append(r.debs, rel)
	return deb
}

// index writes the Packages indexes and the Release file, as
// dpkg-scanpackages and apt-ftparchive release would.
func (r *aptRepo) index(t *testing.T) {
	t.Helper()
	var pk bytes.Buffer
	for _, rel := range r.debs {
		file := filepath.Join(r.dir, rel)
		ctl, err := exec.Command("dpkg-deb", "--field", file).Output()
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&pk, "%sFilename: %s\nSize: %d\nSHA256: %x\n\n", ctl, rel, len(b), sha256.Sum256(b))
	}
	dir := filepath.Join(r.dir, "dists/bookworm/main/binary-amd64")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(pk.Bytes())
	zw.Close()
	os.WriteFile(filepath.Join(dir, "Packages"), pk.Bytes(), 0o644)
	os.WriteFile(filepath.Join(dir, "Packages.gz"), gz.Bytes(), 0o644)
	if r.noRel {
		return
	}
	rel := "Origin: test\nSuite: bookworm\nCodename: bookworm\nArchitectures: amd64\nComponents: main\nSHA256:\n"
	for _, f := range []struct {
		name string
		b    []byte
	}{{"main/binary-amd64/Packages", pk.Bytes()}, {"main/binary-amd64/Packages.gz", gz.Bytes()}} {
		rel += fmt.Sprintf(" %x %d %s\n", sha256.Sum256(f.b), len(f.b), f.name)
	}
	os.WriteFile(filepath.Join(r.dir, "dists/bookworm/Release"), []byte(rel), 0o644)
}

// serve serves the repository on 127.0.0.1 under /debian and returns the
// --apt-source for it.
func (r *aptRepo) serve(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.StripPrefix("/debian", http.FileServer(http.Dir(r.dir))))
	t.Cleanup(srv.Close)
	return srv.URL + "/debian bookworm main"
}

// newAptFixture is the test bundle, a repository with libhello 1.0 and 0.9
// and simplelog (which provides logger-api), and hello 1.0, which needs
// "libhello (>= 1.0), liblogger | logger-api".
func newAptFixture(t *testing.T) (*editFixture, *aptRepo, string) {
	t.Helper()
	f := newEditFixture(t)
	r := &aptRepo{dir: filepath.Join(f.dir, "repo")}
	r.add(t, f, "libhello", "1.0", "amd64", "Depends: base-files (>= 12)\n", map[string]string{"usr/lib/libhello.so.1": "ELF-ish\n"})
	r.add(t, f, "libhello", "0.9", "amd64", "", map[string]string{"usr/lib/libhello.so.0": "old\n"})
	r.add(t, f, "simplelog", "2.1", "all", "Provides: logger-api\n", map[string]string{"usr/share/simplelog/README": "log\n"})
	r.add(t, f, "libarm", "1.0", "arm64", "", map[string]string{"usr/lib/libarm": "arm\n"})
	r.index(t)
	hello := f.deb(t, filepath.Join(f.dir, "in/debs"), "hello", "1.0", "amd64", "libhello (>= 1.0), liblogger | logger-api",
		map[string]string{"usr/share/hello/hello.txt": "hello from the plugin package\n"})
	return f, r, hello
}

// TestEditAptSource installs a .deb whose dependencies come from an HTTP
// apt repository (a versioned one, and an alternative met through
// Provides), then from the same repository as a local directory: the
// manifest records each package with the index's SHA-256, the root has
// their files, nothing fetched is left behind, and the edit from HTTP gives
// the same bytes twice.
func TestEditAptSource(t *testing.T) {
	f, r, hello := newAptFixture(t)
	source := r.serve(t)
	before := bundleDigests(t, f.bundle)
	indexSHA := map[string]string{}
	for _, rel := range r.debs {
		sum, _ := fileSHA256(filepath.Join(r.dir, rel))
		indexSHA[filepath.Base(rel)] = sum
	}
	for _, c := range []struct{ name, source string }{
		{"http", source},
		{"http again", source},
		{"local directory", r.dir + " bookworm main"},
		{"file URI", "deb file://" + r.dir + " bookworm main"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log bytes.Buffer
			o := EditOptions{Bundle: f.bundle, Key: f.key, PublicKey: f.pub, Debs: []string{hello}, AptSources: []string{c.source},
				Out: filepath.Join(f.dir, "out-"+strings.ReplaceAll(c.name, " ", "-")), Log: &log}
			m, err := EditBundle(context.Background(), o)
			if err != nil {
				t.Fatalf("edit: %v\n%s", err, log.String())
			}
			var got []string
			for _, e := range m.Edits {
				got = append(got, e.Op+" "+e.Name+" "+e.Version+" "+e.Reason)
				if e.Op == EditInstallPackage && e.Name != "hello" && e.SHA256 != indexSHA[e.Source] {
					t.Errorf("edit %+v: sha256 is not the index's %s", e, indexSHA[e.Source])
				}
			}
			want := "install-package hello 1.0 |install-package libhello 1.0 dependency of hello|install-package simplelog 2.1 dependency of hello"
			if strings.Join(got, "|") != want {
				t.Errorf("edits:\n%s\nwant:\n%s", strings.Join(got, "|"), want)
			}
			for _, file := range []string{"usr/lib/libhello.so.1", "usr/share/simplelog/README"} {
				if _, err := exec.Command("unsquashfs", "-cat", filepath.Join(o.Out, RootfsName), file).Output(); err != nil {
					t.Errorf("%s is not in the edited root: %v", file, err)
				}
			}
			if left, _ := filepath.Glob(filepath.Join(f.dir, ".out-*")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if strings.HasPrefix(c.name, "http") && !strings.Contains(log.String(), "libhello 1.0 from http://127.0.0.1:") {
				t.Errorf("the log does not say where libhello came from:\n%s", log.String())
			}
		})
	}
	if !sameDigests(before, bundleDigests(t, f.bundle)) {
		t.Error("the input bundle changed")
	}
	one, two := bundleDigests(t, filepath.Join(f.dir, "out-http")), bundleDigests(t, filepath.Join(f.dir, "out-http-again"))
	if !sameDigests(one, two) {
		t.Errorf("two edits from the same source differ:\n%v\n%v", one, two)
	}
	if local := bundleDigests(t, filepath.Join(f.dir, "out-local-directory")); !sameDigests(one, local) {
		t.Errorf("the edit from the local repository differs from the one over HTTP:\n%v\n%v", one, local)
	}
}

// TestEditAptSourceRefusals: a dependency missing from the source, a .deb
// whose SHA-256 is not the index's, an index that is not the Release
// file's, an unreachable source and bad --apt-source values each give an
// error naming the source, with a fix, and leave no --out, nothing fetched
// and the input untouched.
func TestEditAptSourceRefusals(t *testing.T) {
	f, r, hello := newAptFixture(t)
	source := r.serve(t)
	before := bundleDigests(t, f.bundle)
	needy := f.deb(t, filepath.Join(f.dir, "needy"), "needy", "1.0", "amd64", "libmissing (>= 2)", map[string]string{"usr/share/needy": "x\n"})

	// A copy of the repository whose pool libhello is not the one indexed.
	bad := &aptRepo{dir: filepath.Join(f.dir, "badrepo"), debs: r.debs}
	if err := os.CopyFS(bad.dir, os.DirFS(r.dir)); err != nil {
		t.Fatal(err)
	}
	other := f.debControl(t, filepath.Join(f.dir, "other"), "libhello", "1.0", "amd64", "", map[string]string{"usr/lib/libhello.so.1": "tampered\n"})
	b, _ := os.ReadFile(other)
	os.WriteFile(filepath.Join(bad.dir, "pool/main/libhello_1.0_amd64.deb"), b, 0o644)
	badSource := bad.serve(t)

	// A copy whose Packages indexes changed after the Release file was written.
	stale := &aptRepo{dir: filepath.Join(f.dir, "stalerepo")}
	if err := os.CopyFS(stale.dir, os.DirFS(r.dir)); err != nil {
		t.Fatal(err)
	}
	stale.debs = r.debs[:1]
	rel, _ := os.ReadFile(filepath.Join(r.dir, "dists/bookworm/Release"))
	stale.index(t)
	os.WriteFile(filepath.Join(stale.dir, "dists/bookworm/Release"), rel, 0o644)
	staleSource := stale.serve(t)

	down := httptest.NewServer(http.NotFoundHandler())
	downSource := down.URL + "/debian bookworm main"
	down.Close()

	for _, c := range []struct {
		name   string
		edit   func(*EditOptions)
		want   []string
		fixHas string
	}{
		{"dependency missing from the source", func(o *EditOptions) { o.Debs = []string{needy} },
			[]string{"needy depends on libmissing (>= 2)", `--apt-source "` + source + `"`}, "to the --apt-source repository"},
		{"deb differs from the index", func(o *EditOptions) { o.AptSources = []string{badSource} },
			[]string{strings.Fields(badSource)[0] + "/pool/main/libhello_1.0_amd64.deb", "SHA-256 mismatch", "the Packages index says"}, "regenerate the index"},
		{"index differs from the Release file", func(o *EditOptions) { o.AptSources = []string{staleSource} },
			[]string{strings.Fields(staleSource)[0], "SHA-256 mismatch", "the Release file says"}, "Release file"},
		{"unreachable source", func(o *EditOptions) { o.AptSources = []string{downSource} },
			[]string{`--apt-source "` + downSource + `"`, "connection refused"}, "reachable"},
		{"no such suite", func(o *EditOptions) { o.AptSources = []string{strings.Replace(source, "bookworm", "trixie", 1)} },
			[]string{"trixie", "no Packages index for amd64"}, "check the suite"},
		{"source without a component", func(o *EditOptions) { o.AptSources = []string{strings.Fields(source)[0] + " bookworm"} },
			[]string{"no component"}, "sources.list"},
		{"keyring without a source", func(o *EditOptions) { o.AptSources, o.AptKeyring = nil, "/etc/hostname" },
			[]string{"--apt-keyring", "no --apt-source"}, "--apt-source"},
		{"repository given as --apt-dir", func(o *EditOptions) { o.AptSources, o.AptDir = nil, r.dir },
			[]string{"it is an apt repository"}, "--apt-source"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := EditOptions{Bundle: f.bundle, Key: f.key, PublicKey: f.pub, Debs: []string{hello}, AptSources: []string{source},
				Out: filepath.Join(f.dir, "refused")}
			c.edit(&o)
			_, err := EditBundle(context.Background(), o)
			if err == nil {
				t.Fatal("edit succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if fix := HintOf(err); !strings.Contains(fix, c.fixHas) {
				t.Errorf("fix %q lacks %q", fix, c.fixHas)
			}
			t.Logf("refused: %v (fix: %s)", err, HintOf(err))
			if _, err := os.Stat(o.Out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s exists after the refused edit: %v", o.Out, err)
			}
			if left, _ := filepath.Glob(filepath.Join(f.dir, ".refused.edit-*")); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if !sameDigests(before, bundleDigests(t, f.bundle)) {
				t.Error("the input bundle changed")
			}
		})
	}
}

// gpgHome makes a GnuPG home with a new signing key and returns it and a
// keyring file holding the public key; the agent it starts is stopped at
// the end.
func gpgHome(t *testing.T, name string) (home, keyring string) {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("needs gpg to sign a repository")
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := exec.Command("gpgconf", "--kill", "gpg-agent")
		c.Env = append(os.Environ(), "GNUPGHOME="+home)
		c.Run()
		os.RemoveAll(home)
	})
	os.Chmod(home, 0o700)
	gpg := func(args ...string) []byte {
		c := exec.Command("gpg", append([]string{"--batch", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
		c.Env = append(os.Environ(), "GNUPGHOME="+home)
		out, err := c.Output()
		if err != nil {
			t.Fatalf("gpg %v: %v", args, err)
		}
		return out
	}
	gpg("--quick-gen-key", name+" <repo@example.com>", "ed25519", "sign", "never")
	keyring = filepath.Join(home, name+".gpg")
	if err := os.WriteFile(keyring, gpg("--export"), 0o644); err != nil {
		t.Fatal(err)
	}
	return home, keyring
}

// TestEditAptKeyring: with --apt-keyring, a repository whose InRelease is
// signed by that key is used; one signed by another key, and an unsigned
// one, are refused.
func TestEditAptKeyring(t *testing.T) {
	if _, err := exec.LookPath("gpgv"); err != nil {
		t.Skip("needs gpgv")
	}
	f, r, hello := newAptFixture(t)
	home, keyring := gpgHome(t, "Test Repo")
	_, otherKeyring := gpgHome(t, "Other Repo")
	signed := &aptRepo{dir: filepath.Join(f.dir, "signed")}
	if err := os.CopyFS(signed.dir, os.DirFS(r.dir)); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--clearsign",
		"-o", filepath.Join(signed.dir, "dists/bookworm/InRelease"), filepath.Join(signed.dir, "dists/bookworm/Release"))
	c.Env = append(os.Environ(), "GNUPGHOME="+home)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("gpg --clearsign: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(signed.dir, "dists/bookworm/Release"))
	signedSource, unsignedSource := signed.serve(t), r.serve(t)
	for _, c := range []struct {
		name, source, keyring, want string
	}{
		{"signed by the keyring's key", signedSource, keyring, ""},
		{"signed by another key", signedSource, otherKeyring, "does not verify with --apt-keyring"},
		{"unsigned", unsignedSource, keyring, "Release.gpg"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := EditOptions{Bundle: f.bundle, Key: f.key, Debs: []string{hello}, AptSources: []string{c.source}, AptKeyring: c.keyring,
				Out: filepath.Join(f.dir, "out-"+strings.ReplaceAll(c.name, " ", "-"))}
			_, err := EditBundle(context.Background(), o)
			if c.want == "" {
				if err != nil {
					t.Fatalf("edit: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), strings.Fields(c.source)[0]) || HintOf(err) == "" {
				t.Fatalf("edit: %v (fix %q), want an error naming the source and %q", err, HintOf(err), c.want)
			}
			t.Logf("refused: %v (fix: %s)", err, HintOf(err))
			if _, err := os.Stat(o.Out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s exists", o.Out)
			}
		})
	}
}
