package image

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"strings"
	"sync"

	"github.com/nodeinit/nodeinit/cmdline"
)

// VerifyOptions are the operator's trust choices for Open.
type VerifyOptions struct {
	// Insecure accepts an unsigned or badly signed manifest
	// (nodeinit.insecure). Over plain http it still needs PinnedSHA256.
	Insecure bool
	// PinnedSHA256 is the SHA-256 (hex) of the exact manifest.json bytes
	// (nodeinit.image.sha256). When set it must match, always.
	PinnedSHA256 string
	// Arch, when set, must equal the manifest's arch (e.g. runtime.GOARCH).
	Arch string
}

// Bundle is a bundle whose manifest has passed Open's checks. Its files are
// checked against the manifest as they are streamed.
type Bundle struct {
	Manifest *Manifest
	// ManifestSHA256 is the hex SHA-256 of the manifest.json bytes.
	ManifestSHA256 string
	// Signed is true when a trusted key verified the signature; KeyID names it.
	Signed bool
	KeyID  string
	// Pinned is true when PinnedSHA256 was given and matched.
	Pinned bool
	// Source is where the files come from.
	Source Source
	// chunks holds chunksForWrite's choice per file name (a chunkChoice), so
	// that ChunkCheck's log line and the write read a chunk list once.
	chunks sync.Map
}

// Open fetches manifest.json and its signature from src and decides whether
// to trust it, before anything is written:
//
//   - a PinnedSHA256 that does not match is refused;
//   - a signature that a key in keys verifies is trusted;
//   - otherwise (no signature, or one no trusted key verifies) the manifest
//     is refused unless opts.Insecure, and over plain http it is refused
//     unless opts.Insecure and the pin matched;
//   - the manifest must parse and list every required file.
//
// File contents are not read here; WriteFile, CopyFile and VerifyFiles check
// each file's size and digest as they stream it.
func Open(ctx context.Context, src Source, keys Keyring, opts VerifyOptions) (*Bundle, error) {
	where := src.String()
	raw, err := readSmall(ctx, src, ManifestName, maxManifestSize)
	if err != nil {
		hint := "check nodeinit.image= points at the bundle directory (the one holding manifest.json)"
		return nil, newError("read manifest", where+"/"+ManifestName, err, hint)
	}
	sum := sha256.Sum256(raw)
	b := &Bundle{ManifestSHA256: hex.EncodeToString(sum[:]), Source: src}

	if opts.PinnedSHA256 != "" {
		pin := strings.ToLower(strings.TrimSpace(opts.PinnedSHA256))
		if subtle.ConstantTimeCompare([]byte(pin), []byte(b.ManifestSHA256)) != 1 {
			return nil, newError("verify manifest", where+"/"+ManifestName,
				fmt.Errorf("%w: got %s, pinned %s", ErrPinMismatch, b.ManifestSHA256, pin),
				"the manifest changed or the pin is wrong: set nodeinit.image.sha256= to the SHA-256 of the manifest you mean")
		}
		b.Pinned = true
	}

	sig, err := readSmall(ctx, src, SignatureName, maxSignatureSize)
	var trustErr error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		trustErr = ErrUnsigned
	case err != nil:
		return nil, newError("read signature", where+"/"+SignatureName, err, "check the server or medium")
	default:
		if id, ok := keys.verify(raw, sig); ok {
			b.Signed, b.KeyID = true, id
		} else {
			trustErr = ErrBadSignature
			if keys.Len() == 0 {
				trustErr = fmt.Errorf("%w (no trusted keys are installed)", ErrBadSignature)
			}
		}
	}
	if !b.Signed {
		subject := where + "/" + ManifestName
		switch {
		case src.Cleartext() && !(opts.Insecure && b.Pinned):
			return nil, newError("verify manifest", subject, fmt.Errorf("%w: %w", ErrCleartext, trustErr),
				fmt.Sprintf("sign the manifest with a key in the initramfs, use https, or add nodeinit.insecure nodeinit.image.sha256=%s if you trust this manifest", b.ManifestSHA256))
		case !opts.Insecure:
			return nil, newError("verify manifest", subject, trustErr,
				"sign the manifest (`nodeinit image sign`) with a key whose .pub is in the initramfs, or add nodeinit.insecure to accept it unverified")
		}
	}

	m, err := ParseManifest(raw)
	if err != nil {
		return nil, newError("check manifest", where+"/"+ManifestName, err, "rebuild the bundle with `nodeinit image build`")
	}
	if opts.Arch != "" && m.Arch != opts.Arch {
		return nil, newError("check manifest", where+"/"+ManifestName,
			fmt.Errorf("%w: image is for %s, this machine is %s", ErrBadManifest, m.Arch, opts.Arch),
			"use the "+opts.Arch+" build of the image")
	}
	b.Manifest = m
	return b, nil
}

// readSmall reads a whole small file from src, refusing more than limit bytes.
func readSmall(ctx context.Context, src Source, name string, limit int64) ([]byte, error) {
	rc, size, err := src.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > limit {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", name, size, limit)
	}
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is more than the %d bytes allowed", name, limit)
	}
	return b, nil
}

// file returns the manifest entry for name or an error naming it.
func (b *Bundle) file(name string) (File, error) {
	f, ok := b.Manifest.File(name)
	if !ok {
		return f, newError("open", b.Source.String()+"/"+name, fmt.Errorf("%w: not listed in the manifest", ErrBadManifest),
			"rebuild the bundle so the manifest lists "+name)
	}
	return f, nil
}

// openFile opens name and checks the size the source reports.
func (b *Bundle) openFile(ctx context.Context, f File) (io.ReadCloser, error) {
	rc, size, err := b.Source.Open(ctx, f.Name)
	if err != nil {
		return nil, newError("open", b.Source.String()+"/"+f.Name, err, "the bundle is incomplete: copy it again")
	}
	if size >= 0 && size != f.Size {
		rc.Close()
		return nil, b.sizeError(f, size)
	}
	return rc, nil
}

func (b *Bundle) sizeError(f File, got int64) error {
	return newError("verify", b.Source.String()+"/"+f.Name,
		fmt.Errorf("%w: %d bytes, manifest says %d", ErrSizeMismatch, got, f.Size),
		"the file is truncated or replaced: copy or download the bundle again")
}

func (b *Bundle) digestError(f File, got string) error {
	return newError("verify", b.Source.String()+"/"+f.Name,
		fmt.Errorf("%w: got %s, manifest says %s", ErrDigestMismatch, got, f.SHA256),
		"the file is corrupt or was tampered with: copy or download the bundle again")
}

// maxAdminHashSize bounds how much of the admin hash file is read; a crypt(3)
// hash is at most a few hundred bytes.
const maxAdminHashSize = 4 << 10

// ReadSmall reads the whole bundle file name, at most limit bytes, and checks
// its size and SHA-256 against the manifest before returning it: the bytes
// returned are those the signed manifest lists, or an error wrapping
// ErrSizeMismatch or ErrDigestMismatch.
func (b *Bundle) ReadSmall(ctx context.Context, name string, limit int64) ([]byte, error) {
	f, err := b.file(name)
	if err != nil {
		return nil, err
	}
	if f.Size > limit {
		return nil, newError("read", b.Source.String()+"/"+name,
			fmt.Errorf("%w: the manifest lists %d bytes, more than the %d allowed", ErrBadManifest, f.Size, limit),
			"rebuild the bundle with `nodeinit image build`")
	}
	rc, err := b.openFile(ctx, f)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(ctxReader{ctx, rc}, f.Size+1))
	if err != nil {
		return nil, newError("read", b.Source.String()+"/"+name, err, "check the source")
	}
	if int64(len(data)) != f.Size {
		return nil, b.sizeError(f, int64(len(data)))
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
		return nil, b.digestError(f, got)
	}
	return data, nil
}

// AdminHash returns the admin password hash the bundle carries in
// AdminHashName, for nodeinit.adminpw=bundle: the file is checked against the
// signed manifest like every other bundle file (ReadSmall), and must hold one
// crypt(3) hash that adminpw= would accept (cmdline.CheckPasswordHash). The
// hash never appears in an error.
func (b *Bundle) AdminHash(ctx context.Context) (string, error) {
	if _, ok := b.Manifest.File(AdminHashName); !ok {
		return "", newError("read admin password hash", b.Source.String()+"/"+AdminHashName,
			fmt.Errorf("%w: nodeinit.adminpw=bundle needs it, and the manifest does not list it", fs.ErrNotExist),
			"rebuild the bundle with `nodeinit image build --admin-hash-file FILE`, or drop nodeinit.adminpw=bundle and pass adminpw=HASH")
	}
	data, err := b.ReadSmall(ctx, AdminHashName, maxAdminHashSize)
	if err != nil {
		return "", err
	}
	h, err := parseAdminHash(data)
	if err != nil {
		return "", newError("read admin password hash", b.Source.String()+"/"+AdminHashName, err,
			"rebuild the bundle with --admin-hash-file naming a file that holds the output of `openssl passwd -6`")
	}
	return h, nil
}

// parseAdminHash reads an admin hash file: one crypt(3) hash, an optional
// final newline, nothing else. Errors never show the content.
func parseAdminHash(data []byte) (string, error) {
	h := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	switch ok, _ := cmdline.CheckPasswordHash(h); {
	case strings.ContainsAny(h, "\r\n"):
		return "", errors.New("the file holds more than one line (content not shown)")
	case !ok:
		return "", errors.New("the file does not hold a crypt(3) hash: a plaintext password is refused (content not shown)")
	}
	return h, nil
}

// VerifyFiles streams every file of the manifest through SHA-256 and checks
// sizes and digests without writing anything.
func (b *Bundle) VerifyFiles(ctx context.Context) error {
	for _, f := range b.Manifest.Files {
		if err := b.verifyOne(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

func (b *Bundle) verifyOne(ctx context.Context, f File) error {
	rc, err := b.openFile(ctx, f)
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	ch := &chunkHasher{size: f.ChunkSize, alg: f.ChunkHash, want: f.Chunks}
	var w io.Writer = h
	if len(f.Chunks) > 0 {
		w = io.MultiWriter(h, ch)
	}
	n, err := io.Copy(w, io.LimitReader(ctxReader{ctx, rc}, f.Size+1))
	if err != nil {
		return newError("read", b.Source.String()+"/"+f.Name, err, "check the source")
	}
	if n != f.Size {
		return b.sizeError(f, n)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return b.digestError(f, got)
	}
	if bad := ch.finish(); bad >= 0 {
		return b.digestError(f, fmt.Sprintf("chunk %d differs from its listed digest", bad))
	}
	return nil
}

// chunkHasher checks a stream against per-chunk digests; finish returns the
// first bad chunk or -1.
type chunkHasher struct {
	size int64
	alg  string
	want []string
	h    hash.Hash
	fill int64
	idx  int
	bad  int
}

func (c *chunkHasher) Write(p []byte) (int, error) {
	n := len(p)
	if c.h == nil {
		c.h, c.bad = newChunkHash(c.alg), -1
	}
	for len(p) > 0 {
		k := min(int64(len(p)), c.size-c.fill)
		c.h.Write(p[:k])
		c.fill += k
		p = p[k:]
		if c.fill == c.size {
			c.check()
		}
	}
	return n, nil
}

func (c *chunkHasher) check() {
	if got := hex.EncodeToString(c.h.Sum(nil)); c.bad < 0 && (c.idx >= len(c.want) || got != c.want[c.idx]) {
		c.bad = c.idx
	}
	c.idx++
	c.h.Reset()
	c.fill = 0
}

func (c *chunkHasher) finish() int {
	if c.h == nil {
		return -1
	}
	if c.fill > 0 {
		c.check()
	}
	if c.bad < 0 && c.idx != len(c.want) {
		return c.idx
	}
	return c.bad
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
