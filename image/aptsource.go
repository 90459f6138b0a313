//go:build !initramfs

package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/image/deb"
)

// An apt source is a Debian repository given the way a sources.list line
// gives it, without the leading "deb": "URI SUITE COMPONENT..." or, for a
// flat repository, "URI DIR/" with no component. URI is http://, https://,
// file:// or a local directory. Its Packages indexes are read (Packages.gz,
// else Packages, else Packages.xz through the xz program), each checked
// against the SHA256 list of the suite's InRelease or Release when there is
// one, and the package fields join the --apt-dir pool of deb.Resolve. Only
// the .debs the resolver picks are fetched, each into the edit's temporary
// directory, and each is refused unless its size and SHA-256 are the index's.
//
// The Release file's signature is checked only with --apt-keyring (gpgv);
// without it the index is as trustworthy as the transport that carried it.

// maxIndexSize bounds a Release or Packages file read into memory.
const maxIndexSize = 512 << 20

// aptSource is one parsed --apt-source.
type aptSource struct {
	raw        string
	base       string // the URI without a trailing slash
	local      string // the directory, for file:// and paths
	suite      string
	components []string // empty for a flat repository
}

// parseAptSource parses "URI SUITE [COMPONENT...]" (a leading "deb" is
// allowed).
func parseAptSource(s string) (aptSource, error) {
	const fix = `write --apt-source "URI SUITE COMPONENT..." as in sources.list, e.g. "http://deb.example/debian bookworm main", or "URI ./" for a flat repository`
	f := strings.Fields(s)
	if len(f) > 0 && f[0] == "deb" {
		f = f[1:]
	}
	if len(f) > 0 && strings.HasPrefix(f[0], "[") {
		return aptSource{}, newError("image edit", "--apt-source "+s, errors.New("options in [...] are not supported"),
			"drop them; give the repository's signing keys with --apt-keyring FILE")
	}
	if len(f) < 2 {
		return aptSource{}, newError("image edit", "--apt-source "+s, errors.New("need a URI and a suite"), fix)
	}
	src := aptSource{raw: strings.Join(f, " "), base: strings.TrimRight(f[0], "/"), suite: f[1], components: f[2:]}
	flat := strings.HasSuffix(src.suite, "/")
	switch {
	case flat && len(src.components) > 0:
		return src, newError("image edit", "--apt-source "+s, errors.New("a suite ending in / is a flat repository and takes no component"), fix)
	case !flat && len(src.components) == 0:
		return src, newError("image edit", "--apt-source "+s, errors.New("no component"), fix)
	}
	u, err := url.Parse(f[0])
	switch {
	case err == nil && (u.Scheme == "http" || u.Scheme == "https"):
		if u.Host == "" {
			return src, newError("image edit", "--apt-source "+s, errors.New("the URI has no host"), fix)
		}
	case err == nil && u.Scheme == "file":
		src.local = u.Path
	case strings.HasPrefix(f[0], "/") || strings.HasPrefix(f[0], "."):
		src.local = f[0]
	default:
		return src, newError("image edit", "--apt-source "+s, fmt.Errorf("URI %q is neither http://, https://, file:// nor a directory", f[0]), fix)
	}
	if src.local != "" {
		if st, err := os.Stat(src.local); err != nil || !st.IsDir() {
			return src, newError("image edit", "--apt-source "+s, fmt.Errorf("%s is not a directory", src.local), "give the repository's top directory (the one with dists/ and pool/)")
		}
	}
	return src, nil
}

// indexDir is where the suite's files are, relative to the base.
func (s aptSource) indexDir() string {
	if strings.HasSuffix(s.suite, "/") {
		return path.Clean(s.suite)
	}
	return path.Join("dists", s.suite)
}

func (s aptSource) where(rel string) string {
	if s.local != "" {
		return filepath.Join(s.local, filepath.FromSlash(rel))
	}
	return s.base + "/" + rel
}

// aptPackage is where a package of a source's index comes from.
type aptPackage struct {
	src      *aptSource
	filename string // relative to the base, as in the index
	sha256   string
	size     int64
}

// aptFetcher reads files of apt sources.
type aptFetcher struct {
	client  *http.Client
	keyring string // --apt-keyring, "" for none
	log     io.Writer
}

func newAptFetcher(keyring string, log io.Writer) *aptFetcher {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 60 * time.Second
	return &aptFetcher{client: &http.Client{Transport: tr}, keyring: keyring, log: log}
}

// errNotFound is a file a source does not have (HTTP 404 or no such file).
var errNotFound = errors.New("not found")

// open returns a reader for a file of src and its length (-1 unknown).
func (f *aptFetcher) open(ctx context.Context, src *aptSource, rel string) (io.ReadCloser, int64, error) {
	if src.local != "" {
		fh, err := os.Open(src.where(rel))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, errNotFound
		}
		if err != nil {
			return nil, 0, err
		}
		st, err := fh.Stat()
		if err != nil {
			fh.Close()
			return nil, 0, err
		}
		return fh, st.Size(), nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.where(rel), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		resp.Body.Close()
		return nil, 0, errNotFound
	case resp.StatusCode != http.StatusOK:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	return resp.Body, resp.ContentLength, nil
}

// get reads a small file (an index) of src whole.
func (f *aptFetcher) get(ctx context.Context, src *aptSource, rel string) ([]byte, error) {
	r, _, err := f.open(ctx, src, rel)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, maxIndexSize+1))
	if err == nil && len(b) > maxIndexSize {
		err = fmt.Errorf("larger than %d MiB", maxIndexSize>>20)
	}
	return b, err
}

// sourceError is an operator error about one apt source.
func sourceError(src *aptSource, err error, fix string) error {
	return newError("image edit", "--apt-source \""+src.raw+"\"", err, fix)
}

// unreachableFix is the hint for a source that could not be read at all.
const unreachableFix = "check the URI, that the repository is served there and reachable from this machine (proxy: http_proxy/https_proxy), or use --apt-dir with the .debs copied here"

// release reads the suite's InRelease or Release and returns its SHA256
// list (path → digest and size), or nil when the source has neither. With a
// keyring the signature must verify.
func (f *aptFetcher) release(ctx context.Context, src *aptSource) (map[string]aptPackage, error) {
	dir := src.indexDir()
	var text []byte
	in, err := f.get(ctx, src, dir+"/InRelease")
	switch {
	case err == nil:
		if text, err = f.verifyInline(ctx, src, in); err != nil {
			return nil, err
		}
	case errors.Is(err, errNotFound):
		rel, err := f.get(ctx, src, dir+"/Release")
		switch {
		case errors.Is(err, errNotFound):
			if f.keyring != "" {
				return nil, sourceError(src, fmt.Errorf("no %s/InRelease or Release to check against --apt-keyring", dir),
					"sign the repository (InRelease, or Release with Release.gpg), or drop --apt-keyring for an unsigned one")
			}
			fmt.Fprintf(f.log, "image edit: apt source %q has no Release file: its Packages index is not checked\n", src.raw)
			return nil, nil
		case err != nil:
			return nil, sourceError(src, fmt.Errorf("read %s: %w", src.where(dir+"/Release"), err), unreachableFix)
		}
		if err := f.verifyDetached(ctx, src, rel); err != nil {
			return nil, err
		}
		text = rel
	default:
		return nil, sourceError(src, fmt.Errorf("read %s: %w", src.where(dir+"/InRelease"), err), unreachableFix)
	}
	ps, err := deb.ParseControl(bytes.NewReader(text))
	if err != nil || len(ps) == 0 {
		return nil, sourceError(src, fmt.Errorf("Release file: %v", err), "regenerate the repository's Release file")
	}
	sums := map[string]aptPackage{}
	for _, l := range strings.Split(ps[0].Get("SHA256"), "\n") {
		fs := strings.Fields(l)
		if len(fs) != 3 {
			continue
		}
		n, err := strconv.ParseInt(fs[1], 10, 64)
		if err != nil {
			continue
		}
		sums[fs[2]] = aptPackage{sha256: strings.ToLower(fs[0]), size: n}
	}
	if len(sums) == 0 {
		return nil, sourceError(src, errors.New("the Release file has no SHA256 list"), "regenerate the Release file (apt-ftparchive release, reprepro export)")
	}
	return sums, nil
}

// verifyInline checks an InRelease file with gpgv when there is a keyring,
// and returns the signed text; without a keyring it strips the armour.
func (f *aptFetcher) verifyInline(ctx context.Context, src *aptSource, in []byte) ([]byte, error) {
	if f.keyring == "" {
		return clearsignedText(in), nil
	}
	out, err := f.gpgv(ctx, src, "InRelease", in, nil)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// verifyDetached checks Release against Release.gpg when there is a keyring.
func (f *aptFetcher) verifyDetached(ctx context.Context, src *aptSource, rel []byte) error {
	if f.keyring == "" {
		return nil
	}
	sig, err := f.get(ctx, src, src.indexDir()+"/Release.gpg")
	if err != nil {
		return sourceError(src, fmt.Errorf("read %s: %w", src.where(src.indexDir()+"/Release.gpg"), err),
			"--apt-keyring needs a signed repository: InRelease, or Release with Release.gpg")
	}
	_, err = f.gpgv(ctx, src, "Release", rel, sig)
	return err
}

// gpgv runs gpgv with the keyring on data (and a detached signature), in a
// GnuPG home of its own, and returns the signed text for an inline one.
func (f *aptFetcher) gpgv(ctx context.Context, src *aptSource, what string, data, sig []byte) ([]byte, error) {
	home, err := os.MkdirTemp("", "nodeinit-gpgv-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(home)
	file := filepath.Join(home, what)
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return nil, err
	}
	keyring, err := filepath.Abs(f.keyring)
	if err != nil {
		return nil, err
	}
	args := []string{"--homedir", home, "--keyring", keyring}
	if sig != nil {
		if err := os.WriteFile(file+".gpg", sig, 0o600); err != nil {
			return nil, err
		}
		args = append(args, file+".gpg", file)
	} else {
		args = append(args, "--output", file+".txt", file)
	}
	cmd := exec.CommandContext(ctx, "gpgv", args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "GNUPGHOME=" + home}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, sourceError(src, err, "install gpgv (apt-get install gpgv) to check --apt-keyring")
		}
		return nil, sourceError(src, fmt.Errorf("the %s signature does not verify with --apt-keyring %s: %s", what, f.keyring, lastLines(out, 3)),
			"give the repository's signing key (a binary keyring: gpg --export KEYID > FILE), or check that the repository is the one you meant")
	}
	if sig != nil {
		return nil, nil
	}
	return os.ReadFile(file + ".txt")
}

// clearsignedText returns the signed text of an OpenPGP cleartext-signed
// message (InRelease), or b when it is not one.
func clearsignedText(b []byte) []byte {
	s := string(b)
	const begin = "-----BEGIN PGP SIGNED MESSAGE-----"
	i := strings.Index(s, begin)
	if i < 0 {
		return b
	}
	s = s[i+len(begin):]
	if j := strings.Index(s, "\n\n"); j >= 0 { // the armour headers end with a blank line
		s = s[j+2:]
	}
	if j := strings.Index(s, "\n-----BEGIN PGP SIGNATURE-----"); j >= 0 {
		s = s[:j+1]
	}
	var out strings.Builder
	for _, l := range strings.SplitAfter(s, "\n") {
		out.WriteString(strings.TrimPrefix(l, "- "))
	}
	return []byte(out.String())
}

// packagesIndex reads one Packages index of src (dir is the component's
// binary-ARCH, or the flat repository's directory), checked against sums.
// It returns errNotFound when the source has no index there.
func (f *aptFetcher) packagesIndex(ctx context.Context, src *aptSource, dir string, sums map[string]aptPackage) ([]deb.Paragraph, error) {
	for _, name := range []string{"Packages.gz", "Packages", "Packages.xz"} {
		rel := path.Join(dir, name)
		relToSuite := strings.TrimPrefix(rel, src.indexDir()+"/")
		if sums != nil {
			if _, ok := sums[relToSuite]; !ok {
				continue // apt takes only the indexes the Release file lists
			}
		}
		b, err := f.get(ctx, src, rel)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return nil, sourceError(src, fmt.Errorf("read %s: %w", src.where(rel), err), unreachableFix)
		}
		if sums != nil {
			want := sums[relToSuite]
			got := sha256.Sum256(b)
			if hex.EncodeToString(got[:]) != want.sha256 || int64(len(b)) != want.size {
				return nil, sourceError(src, fmt.Errorf("%s: %w: %d bytes sha256:%x, the Release file says %d bytes sha256:%s", src.where(rel), ErrDigestMismatch,
					len(b), got, want.size, want.sha256), "the repository is being updated or a mirror is stale: try again, or regenerate its Release file")
			}
		}
		text, err := decompressIndex(ctx, name, b)
		if err != nil {
			return nil, sourceError(src, fmt.Errorf("%s: %w", src.where(rel), err), "regenerate the repository's Packages index")
		}
		ps, err := deb.ParseControl(bytes.NewReader(text))
		if err != nil {
			return nil, sourceError(src, fmt.Errorf("%s: %w", src.where(rel), err), "regenerate the repository's Packages index")
		}
		return ps, nil
	}
	return nil, errNotFound
}

func decompressIndex(ctx context.Context, name string, b []byte) ([]byte, error) {
	switch {
	case strings.HasSuffix(name, ".gz"):
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(io.LimitReader(zr, 4*maxIndexSize))
	case strings.HasSuffix(name, ".xz"):
		cmd := exec.CommandContext(ctx, "xz", "-dc")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("xz -dc: %w (install xz-utils)", err)
		}
		return out, nil
	}
	return b, nil
}

// loadAptSource reads the indexes of src for arch and returns their
// packages of arch or "all", and where each comes from (keyed by aptKey).
func (f *aptFetcher) loadAptSource(ctx context.Context, src *aptSource, arch string, from map[string]aptPackage) ([]deb.Package, error) {
	sums, err := f.release(ctx, src)
	if err != nil {
		return nil, err
	}
	var dirs []string
	if len(src.components) == 0 {
		dirs = []string{src.indexDir()}
	}
	for _, c := range src.components {
		dirs = append(dirs, path.Join(src.indexDir(), c, "binary-"+arch))
		if sums != nil && hasIndex(sums, c+"/binary-all/") {
			dirs = append(dirs, path.Join(src.indexDir(), c, "binary-all"))
		}
	}
	var out []deb.Package
	found := 0
	for _, dir := range dirs {
		ps, err := f.packagesIndex(ctx, src, dir, sums)
		if errors.Is(err, errNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found++
		for _, p := range ps {
			pkg := deb.FromParagraph(p)
			fn, sum := p.Get("Filename"), strings.ToLower(p.Get("SHA256"))
			size, serr := strconv.ParseInt(p.Get("Size"), 10, 64)
			if pkg.Name == "" || pkg.Version == "" || fn == "" {
				continue
			}
			if len(sum) != 64 || serr != nil {
				return nil, sourceError(src, fmt.Errorf("package %s %s in %s has no SHA256 and Size", pkg.Name, pkg.Version, src.where(dir)),
					"regenerate the Packages index with dpkg-scanpackages or apt-ftparchive, which write them")
			}
			if pkg.Arch != arch && pkg.Arch != "all" {
				continue
			}
			k := aptKey(pkg)
			if _, dup := from[k]; dup {
				continue // the first source that has it wins, as in apt
			}
			from[k] = aptPackage{src: src, filename: fn, sha256: sum, size: size}
			out = append(out, pkg)
		}
	}
	if found == 0 {
		return nil, sourceError(src, fmt.Errorf("no Packages index for %s under %s", arch, src.where(src.indexDir())),
			"check the suite and components, and that the repository has "+arch+" packages")
	}
	return out, nil
}

func hasIndex(sums map[string]aptPackage, prefix string) bool {
	for k := range sums {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func aptKey(p deb.Package) string { return p.Name + "\x00" + p.Version + "\x00" + p.Arch }

// download fetches a package into dir (or uses a local repository's file in
// place) and checks its size and SHA-256 against the index. It returns the
// file's path.
func (f *aptFetcher) download(ctx context.Context, ap aptPackage, dir string) (string, error) {
	src := ap.src
	if path.IsAbs(ap.filename) || !filepath.IsLocal(filepath.FromSlash(ap.filename)) {
		return "", sourceError(src, fmt.Errorf("index Filename %q leaves the repository", ap.filename), "fix the repository's Packages index")
	}
	r, _, err := f.open(ctx, src, ap.filename)
	if err != nil {
		return "", sourceError(src, fmt.Errorf("fetch %s: %w", src.where(ap.filename), err), unreachableFix+"; a package the index lists but the pool lacks means a stale index: regenerate it")
	}
	defer r.Close()
	dest := src.where(ap.filename)
	var w io.Writer = io.Discard
	if src.local == "" {
		dest = filepath.Join(dir, path.Base(ap.filename))
		out, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return "", spaceHint(newError("image edit", dest, err, "check the directory that holds --out"), dir)
		}
		defer out.Close()
		w = out
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, ap.size+1))
	if err != nil {
		return "", spaceHint(sourceError(src, fmt.Errorf("fetch %s: %w", src.where(ap.filename), err), unreachableFix), dir)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != ap.size || got != ap.sha256 {
		return "", sourceError(src, fmt.Errorf("%s: %w: %d bytes sha256:%s, the Packages index says %d bytes sha256:%s",
			src.where(ap.filename), ErrDigestMismatch, n, got, ap.size, ap.sha256),
			"the .deb in the pool is not the one the index lists: regenerate the index (dpkg-scanpackages, reprepro export) or use another mirror; nothing was installed")
	}
	if c, ok := w.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return "", spaceHint(newError("image edit", dest, err, "check the directory that holds --out"), dir)
		}
	}
	return dest, nil
}
