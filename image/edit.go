//go:build !initramfs

package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"aead.dev/minisign"

	"github.com/nodeinit/nodeinit/cmdline"
)

// EditOptions describe one run of `nodeinit image edit`: a signed bundle in,
// a new signed bundle out, with the changes applied to its root in a fixed
// order (see EditBundle).
type EditOptions struct {
	Bundle string // the input bundle directory; it is only read
	Out    string // the new bundle directory; it must not exist or be empty
	// Key and Password sign the new manifest. PublicKey, when set, is the
	// .pub file the key must belong to (the one the nodes trust).
	Key, Password, PublicKey string

	RemovePlugins []string // plugin or package names
	Debs          []string // .deb files
	AptDir        string   // a directory of .debs that dependencies are taken from
	// AptSources are Debian repositories that dependencies are taken from,
	// each "URI SUITE COMPONENT..." as in sources.list (see aptsource.go).
	AptSources []string
	// AptKeyring is a GnuPG keyring (gpg --export) the sources' InRelease
	// or Release.gpg must verify with; "" checks no signature.
	AptKeyring string
	Plugins    []string // plugin directories (with plugin.json) or .deb files
	Adds       []string // SRC:DEST[:OWNER:GROUP:MODE]
	Kmods      []string // kernel modules (.ko, .ko.xz, .ko.zst, .ko.gz)
	// KernelVersion is the image kernel's release (uname -r); found from the
	// bundle's vmlinuz or the root's lib/modules when empty.
	KernelVersion string
	Passwds       []string // USER:HASH
	SSHKeys       []string // USER:FILE
	Scripts       []string // run in a chroot of the root, after everything else
	// Initramfs rebuilds the bundle's initrd.img (a nodeinit initramfs) to
	// carry the kernel modules the edit put into the root, and to trust the
	// public key of Key; see rebuildInitramfs.
	Initramfs bool

	Name    string    // default: the input's name
	Version string    // default: <old>+edit.N
	Created time.Time // default: SOURCE_DATE_EPOCH, else the input's creation time

	// Log receives the output of dpkg, depmod and the scripts.
	Log io.Writer
	// Warn receives warnings, one a line (an edit that installed kernel
	// modules without Initramfs, for one); nil means Log.
	Warn io.Writer
}

// EditBundle makes a new bundle from o.Bundle with the changes o asks for, and
// signs it. The changes are made in this order, whatever the order of the
// flags: plugins and packages removed; packages installed (with their
// dependencies from o.AptDir and o.AptSources); plugins installed; files
// added; kernel modules installed; passwords set; SSH keys added; scripts
// run; the initramfs rebuilt (o.Initramfs). The new
// manifest keeps the input's upgrade constraints and migrations and lists
// every change in Edits.
//
// The result depends only on the inputs: the root is packed with every
// timestamp set to the creation time, which is SOURCE_DATE_EPOCH or the
// input's, and minisign signatures are deterministic, so the same edit gives
// the same bytes.
//
// Every input is checked before the root is unpacked. The work happens in a
// temporary directory beside o.Out, renamed to o.Out only when the bundle is
// complete and signed; on any error it is removed and o.Out does not appear.
func EditBundle(ctx context.Context, o EditOptions) (m *Manifest, err error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Warn == nil {
		o.Warn = o.Log
	}
	p, err := o.prepare(ctx)
	if err != nil {
		return nil, err
	}
	defer p.cleanup()
	work, err := os.MkdirTemp(filepath.Dir(o.Out), "."+filepath.Base(o.Out)+".edit-")
	if err != nil {
		return nil, newError("image edit", o.Out, err, "the directory that will hold --out must exist and be writable")
	}
	defer func() {
		if rerr := removeWork(work); rerr != nil {
			err = errors.Join(err, rerr)
			m = nil
		}
	}()
	root := filepath.Join(work, "root")
	if err := p.unpack(ctx, root); err != nil {
		return nil, err
	}
	edits, err := p.apply(ctx, root)
	if err != nil {
		return nil, err
	}
	bundle := filepath.Join(work, "bundle")
	if m, err = p.pack(root, bundle, edits); err != nil {
		return nil, err
	}
	if err := os.Rename(bundle, o.Out); err != nil {
		return nil, newError("image edit", o.Out, err, "remove --out or choose a new directory")
	}
	syncDir(filepath.Dir(o.Out))
	return m, nil
}

// editPlan is what prepare learned from the options and the input bundle.
type editPlan struct {
	o       EditOptions
	key     minisign.PrivateKey
	base    *Manifest
	baseSHA string
	created time.Time
	debArch string

	debs    []debFile // requested packages and the dependencies they need
	sources []aptSource
	fetched string // the directory packages of HTTP sources are fetched into
	initrd  string // the rebuilt initramfs, when there is one
	dirs    []dirPlugin
	adds    []addSpec
	kmods   []string
	kver    string
	passwds [][2]string // user, hash
	sshkeys [][2]string // user, file
	comp    squashfsParams
}

// prepare checks every option and input before anything is unpacked: a
// wrong password, a package for another architecture or a missing
// dependency costs seconds, not an unpacked root.
func (o *EditOptions) prepare(ctx context.Context) (*editPlan, error) {
	const hint = "nodeinit image edit --bundle IN --out OUT --key KEY [options]"
	switch {
	case o.Bundle == "":
		return nil, newError("image edit", "--bundle", errors.New("--bundle is required"), hint)
	case o.Out == "":
		return nil, newError("image edit", "--out", errors.New("--out is required"), hint)
	case o.Key == "":
		return nil, newError("image edit", "--key", errors.New("--key is required: the new manifest must be signed"), hint)
	case runtime.GOOS != "linux" || os.Geteuid() != 0:
		return nil, newError("image edit", o.Bundle, errors.New("needs root on Linux: it unpacks the root with its owners, runs dpkg and chroot"), "run it as root (sudo)")
	}
	if err := checkOut(o.Bundle, o.Out); err != nil {
		return nil, err
	}
	p := &editPlan{o: *o}
	var err error
	if p.key, err = loadEditKey(o.Key, o.Password, o.PublicKey); err != nil {
		return nil, err
	}
	if p.base, p.baseSHA, err = openEditInput(ctx, o.Bundle); err != nil {
		return nil, err
	}
	if p.o.Name == "" {
		p.o.Name = p.base.Name
	}
	if p.o.Version == "" {
		p.o.Version = nextEditVersion(p.base.Version)
	}
	p.created = o.Created
	if p.created.IsZero() {
		p.created = p.base.Created
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			sec, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, newError("image edit", "SOURCE_DATE_EPOCH", err, "set it to seconds since 1970, e.g. $(git log -1 --format=%ct)")
			}
			p.created = time.Unix(sec, 0)
		}
	}
	p.created = p.created.UTC().Truncate(time.Second)
	p.debArch = debArch(p.base.Arch)
	if p.comp, err = readSquashfsParams(filepath.Join(o.Bundle, RootfsName)); err != nil {
		return nil, err
	}
	if err := p.checkSpecs(); err != nil {
		return nil, err
	}
	if err := p.resolvePackages(ctx); err != nil {
		p.cleanup()
		return nil, err
	}
	return p, nil
}

// cleanup removes what prepare fetched.
func (p *editPlan) cleanup() {
	if p.fetched != "" {
		os.RemoveAll(p.fetched)
		p.fetched = ""
	}
}

// checkOut refuses an --out that exists with content, or that is the input.
func checkOut(in, out string) error {
	ain, _ := filepath.Abs(in)
	aout, _ := filepath.Abs(out)
	if ain == aout || strings.HasPrefix(aout, ain+string(filepath.Separator)) {
		return newError("image edit", out, errors.New("--out is the input bundle or inside it"), "the input is never modified: choose --out outside it")
	}
	ents, err := os.ReadDir(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return newError("image edit", out, err, "choose a new --out directory")
	case len(ents) > 0:
		return newError("image edit", out, errors.New("output directory is not empty"), "choose a new --out directory, or remove this one")
	}
	return nil
}

// loadEditKey decrypts the signing key and, when pub is set, checks that the
// key belongs to it.
func loadEditKey(path, password, pub string) (minisign.PrivateKey, error) {
	key, err := LoadPrivateKey(path, password)
	if err != nil {
		return key, err
	}
	if pub == "" {
		return key, nil
	}
	pk, err := minisign.PublicKeyFromFile(pub)
	if err != nil {
		return key, newError("image edit", pub, err, "--pub must be a minisign public key (nodeinit image keygen writes one)")
	}
	if !pk.Equal(key.Public()) {
		return key, newError("image edit", path, fmt.Errorf("the key %s is not the private half of %s (key %s)", keyID(key.ID()), pub, keyID(pk.ID())),
			"pass the .key file that was generated with this .pub, or the .pub of this key")
	}
	return key, nil
}

// openEditInput reads the input manifest and checks every file against it,
// so a corrupt input is refused rather than re-signed.
func openEditInput(ctx context.Context, dir string) (*Manifest, string, error) {
	src, err := newDirSource(dir, dir)
	if err != nil {
		return nil, "", err
	}
	b, err := Open(ctx, src, Keyring{}, VerifyOptions{Insecure: true})
	if err != nil {
		return nil, "", err
	}
	if err := b.VerifyFiles(ctx); err != nil {
		return nil, "", err
	}
	return b.Manifest, b.ManifestSHA256, nil
}

// nextEditVersion is the default version of an edit of v: v+edit.1, or the
// next N when v is itself an edit.
func nextEditVersion(v string) string {
	if i := strings.LastIndex(v, "+edit."); i >= 0 {
		if n, err := strconv.Atoi(v[i+len("+edit."):]); err == nil {
			return fmt.Sprintf("%s+edit.%d", v[:i], n+1)
		}
	}
	return v + "+edit.1"
}

// addSpec is one --add SRC:DEST[:OWNER:GROUP:MODE].
type addSpec struct {
	src, dest    string
	user, group  string
	mode         fs.FileMode
	raw, srcHash string
}

func parseAdd(s string) (addSpec, error) {
	const fix = "write --add SRC:DEST or SRC:DEST:OWNER:GROUP:MODE, e.g. agent.conf:/etc/agent.conf:root:root:0640"
	parts := strings.Split(s, ":")
	if len(parts) != 2 && len(parts) != 5 {
		return addSpec{}, newError("image edit", "--add "+s, fmt.Errorf("%d fields separated by \":\", want 2 or 5", len(parts)), fix)
	}
	a := addSpec{src: parts[0], dest: parts[1], raw: s}
	if a.src == "" || !strings.HasPrefix(a.dest, "/") || filepath.Clean(a.dest) == "/" {
		return a, newError("image edit", "--add "+s, errors.New("SRC must be set and DEST an absolute path other than /"), fix)
	}
	if _, err := os.Lstat(a.src); err != nil {
		return a, newError("image edit", "--add "+s, err, "check the source path")
	}
	if len(parts) == 5 {
		a.user, a.group = parts[2], parts[3]
		if parts[4] != "" {
			m, err := strconv.ParseUint(parts[4], 8, 32)
			if err != nil || m > 0o7777 {
				return a, newError("image edit", "--add "+s, fmt.Errorf("mode %q is not octal", parts[4]), fix)
			}
			a.mode = fs.FileMode(m&0o777) | unixModeBits(m)
		}
	}
	return a, nil
}

// unixModeBits turns the setuid, setgid and sticky bits of an octal mode into fs.FileMode bits.
func unixModeBits(m uint64) fs.FileMode {
	var out fs.FileMode
	if m&0o4000 != 0 {
		out |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= fs.ModeSticky
	}
	return out
}

// checkSpecs parses every option that names a file or a user.
func (p *editPlan) checkSpecs() error {
	for _, s := range p.o.Adds {
		a, err := parseAdd(s)
		if err != nil {
			return err
		}
		p.adds = append(p.adds, a)
	}
	for _, f := range p.o.Kmods {
		if !isKmodName(f) {
			return newError("image edit", "--install-kmod "+f, errors.New("not a kernel module file name"), "pass a .ko file (or .ko.xz, .ko.zst, .ko.gz)")
		}
		if err := checkRegular(f, "--install-kmod"); err != nil {
			return err
		}
	}
	p.kmods = p.o.Kmods
	for _, s := range p.o.Passwds {
		user, hash, ok := strings.Cut(s, ":")
		if !ok || user == "" {
			return newError("image edit", "--passwd", errors.New("not USER:HASH (value not shown)"), "write --passwd root:'$6$…' with a hash from openssl passwd -6")
		}
		if ok, _ := cmdline.CheckPasswordHash(hash); !ok {
			return newError("image edit", "--passwd "+user+":…", errors.New("not a crypt(3) hash: a plaintext password is refused (value not shown)"),
				"give a crypt(3) hash, e.g. from openssl passwd -6")
		}
		p.passwds = append(p.passwds, [2]string{user, hash})
	}
	for _, s := range p.o.SSHKeys {
		user, file, ok := strings.Cut(s, ":")
		if !ok || user == "" || file == "" {
			return newError("image edit", "--sshkey "+s, errors.New("not USER:FILE"), "write --sshkey root:id_ed25519.pub")
		}
		if err := checkPublicKeys(file); err != nil {
			return err
		}
		p.sshkeys = append(p.sshkeys, [2]string{user, file})
	}
	for _, f := range p.o.Scripts {
		if err := checkRegular(f, "--script"); err != nil {
			return err
		}
	}
	for _, n := range p.o.RemovePlugins {
		if !validPluginName(n) {
			return newError("image edit", "--remove-plugin "+n, errors.New("not a plugin or package name"), "give the name from the plugin's plugin.json or the package name")
		}
	}
	for _, pl := range p.o.Plugins {
		if strings.HasSuffix(pl, ".deb") {
			continue // read with the other packages
		}
		d, err := readDirPlugin(pl)
		if err != nil {
			return err
		}
		p.dirs = append(p.dirs, d)
	}
	for _, s := range p.o.AptSources {
		src, err := parseAptSource(s)
		if err != nil {
			return err
		}
		p.sources = append(p.sources, src)
	}
	if p.o.AptKeyring != "" {
		if len(p.sources) == 0 {
			return newError("image edit", "--apt-keyring "+p.o.AptKeyring, errors.New("no --apt-source to check with it"), "give --apt-source too, or drop --apt-keyring")
		}
		if err := checkRegular(p.o.AptKeyring, "--apt-keyring"); err != nil {
			return err
		}
	}
	if p.o.Initramfs {
		if _, ok := p.base.File(InitrdName); !ok {
			return newError("image edit", "--initramfs", errors.New("the bundle has no "+InitrdName), "drop --initramfs")
		}
	}
	if len(p.kmods) > 0 || p.o.Initramfs {
		kv, err := p.kernelVersion()
		if err != nil {
			return err
		}
		p.kver = kv
	}
	return nil
}

func checkRegular(f, flag string) error {
	st, err := os.Stat(f)
	if err != nil || !st.Mode().IsRegular() {
		return newError("image edit", flag+" "+f, errors.New("not a readable regular file"), "check the path")
	}
	return nil
}

func isKmodName(f string) bool {
	for _, s := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
		if strings.HasSuffix(f, s) {
			return true
		}
	}
	return false
}

// checkPublicKeys refuses a file that is not a list of SSH public keys,
// above all a private key.
func checkPublicKeys(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return newError("image edit", "--sshkey "+file, err, "check the path")
	}
	const fix = "pass the .pub file (one public key per line), never the private key"
	if strings.Contains(string(b), "PRIVATE KEY") {
		return newError("image edit", "--sshkey "+file, errors.New("the file holds a private key (content not shown)"), fix)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if len(strings.Fields(l)) < 2 {
			return newError("image edit", "--sshkey "+file, fmt.Errorf("line %q is not \"TYPE KEY [COMMENT]\"", l), fix)
		}
		n++
	}
	if n == 0 {
		return newError("image edit", "--sshkey "+file, errors.New("no key in the file"), fix)
	}
	return nil
}

// fileSHA256 is the hex SHA-256 of a file's content.
func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// pack builds the new bundle in dir: the root as a squashfs with the input's
// compression and block size, the other files copied and checked, and the
// manifest written and signed.
func (p *editPlan) pack(root, dir string, edits []Edit) (*Manifest, error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, newError("image edit", dir, err, "check the directory that holds --out")
	}
	rootfs := filepath.Join(dir, RootfsName)
	if err := mksquashfs(root, rootfs, p.comp.compression, p.created, "-b", strconv.Itoa(p.comp.blockSize)); err != nil {
		return nil, spaceHint(newError("image edit", rootfs, err, "see mksquashfs's message"), p.o.Out)
	}
	m := &Manifest{Format: FormatVersion, Name: p.o.Name, Version: p.o.Version, Arch: p.base.Arch, Created: p.created,
		UpgradeFrom: p.base.UpgradeFrom, Migrations: p.base.Migrations,
		EditedFrom: &Origin{Name: p.base.Name, Version: p.base.Version, ManifestSHA256: p.baseSHA},
		Edits:      append(append([]Edit{}, p.base.Edits...), edits...)}
	for _, f := range p.base.Files {
		if f.Name == RootfsName {
			alg := f.ChunkHash
			if alg == "" {
				alg = ChunkSHA256
			}
			size := int(f.ChunkSize)
			if size == 0 {
				size = WriteBlockSize
			}
			_, hadList := p.base.File(ChunkListName(RootfsName, ChunkSHA256))
			nfs, err := hashRootfs(dir, rootfs, RootfsName, size, alg, hadList)
			if err != nil {
				return nil, err
			}
			m.Files = append(m.Files, nfs...)
			continue
		}
		if strings.HasPrefix(f.Name, ChunkListName(RootfsName, "")) {
			continue // the rootfs's chunk list, written again with it above
		}
		if f.Name == InitrdName && p.initrd != "" {
			nf, err := copyHashed(p.initrd, filepath.Join(dir, f.Name), f.Name)
			if err != nil {
				return nil, spaceHint(newError("image edit", f.Name, err, "check the filesystem"), p.o.Out)
			}
			m.Files = append(m.Files, nf)
			continue
		}
		nf, err := copyHashed(filepath.Join(p.o.Bundle, f.Name), filepath.Join(dir, f.Name), f.Name)
		if err != nil {
			return nil, spaceHint(newError("image edit", f.Name, err, "check the input bundle"), p.o.Out)
		}
		if nf.SHA256 != f.SHA256 || nf.Size != f.Size {
			return nil, newError("image edit", filepath.Join(p.o.Bundle, f.Name), ErrDigestMismatch, "the input bundle changed during the edit: run it again")
		}
		m.Files = append(m.Files, f)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, ManifestName), b, 0o644); err != nil {
		return nil, spaceHint(newError("image edit", ManifestName, err, "check the filesystem"), p.o.Out)
	}
	if err := signWith(dir, p.key); err != nil {
		return nil, spaceHint(newError("image edit", SignatureName, err, "check the filesystem"), p.o.Out)
	}
	return m, nil
}

// spaceHint replaces the hint of an error caused by a full filesystem with
// one that says where the space is needed.
func spaceHint(e error, out string) error {
	if strings.Contains(e.Error(), "no space left") || strings.Contains(e.Error(), "No space left") {
		return newError("image edit", out, fmt.Errorf("%w: %w", errNoSpace, e),
			"free space where --out goes: the edit unpacks the root beside it and writes the new bundle there (about the unpacked root plus the bundle)")
	}
	return e
}

// errNoSpace marks a failure caused by a full filesystem.
var errNoSpace = errors.New("no space left on the filesystem of --out")

// squashfsParams are the options of the input squashfs that the new one keeps.
type squashfsParams struct {
	compression string
	blockSize   int
}

// readSquashfsParams reads the compression and block size from a squashfs
// superblock, so the edited root is packed the way the input was.
func readSquashfsParams(p string) (squashfsParams, error) {
	f, err := os.Open(p)
	if err != nil {
		return squashfsParams{}, newError("image edit", p, err, "the input bundle needs its rootfs.squashfs")
	}
	defer f.Close()
	sb := make([]byte, 96)
	if _, err := io.ReadFull(f, sb); err != nil || string(sb[:4]) != "hsqs" {
		return squashfsParams{}, newError("image edit", p, errors.New("not a squashfs image (no hsqs magic)"), "rebuild the bundle with nodeinit image build")
	}
	le := func(b []byte) uint64 {
		var v uint64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		return v
	}
	names := map[uint64]string{1: "gzip", 2: "lzma", 3: "lzo", 4: "xz", 5: "lz4", 6: "zstd"}
	comp, ok := names[le(sb[20:22])]
	if !ok {
		return squashfsParams{}, newError("image edit", p, fmt.Errorf("unknown squashfs compression %d", le(sb[20:22])), "rebuild the bundle with nodeinit image build")
	}
	return squashfsParams{compression: comp, blockSize: int(le(sb[12:16]))}, nil
}

// syncDir fsyncs a directory so a rename in it is durable; errors are
// ignored because the rename itself has already succeeded.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
