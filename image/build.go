package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// BuildOptions describe a bundle to build. Exactly one of Root and Squashfs
// must be set.
type BuildOptions struct {
	Root     string // a root directory, packed with mksquashfs
	Squashfs string // an existing squashfs, taken as is
	Kernel   string // vmlinuz
	Initrd   string // initrd.img
	Loader   string // UEFI boot loader, e.g. /usr/lib/systemd/boot/efi/systemd-bootx64.efi

	Name, Version string
	Arch          string    // default runtime.GOARCH
	Created       time.Time // default SOURCE_DATE_EPOCH, else now; also the squashfs timestamps
	UpgradeFrom   []string
	Migrations    []Migration
	// AdminHashFile, when set, is a file holding the admin password hash (one
	// crypt(3) hash, e.g. from `openssl passwd -6`); it goes into the bundle as
	// AdminHashName, listed in the manifest, for nodeinit.adminpw=bundle.
	AdminHashFile string

	// Out is the bundle directory; it must not exist or be empty.
	Out string
	// Compression for mksquashfs (default zstd).
	Compression string
	// ChunkHash is the algorithm of the manifest's rootfs chunk digests
	// (default ChunkBLAKE3, which also writes the SHA-256 chunk list; ChunkSHA256
	// writes the manifest nodeinit read before chunk_hash, with no list).
	ChunkHash string
	// NoChunkList leaves the SHA-256 chunk list out of a BLAKE3 bundle, so that
	// every writer checks BLAKE3 (bench/image times it alone this way).
	NoChunkList bool
}

// Build writes a bundle (without signature) to opts.Out and returns its
// manifest. Sign it afterwards with Sign.
func Build(opts BuildOptions) (*Manifest, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if opts.Arch == "" {
		opts.Arch = runtime.GOARCH
	}
	if opts.Created.IsZero() {
		opts.Created = time.Now()
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			if sec, err := strconv.ParseInt(s, 10, 64); err == nil {
				opts.Created = time.Unix(sec, 0)
			}
		}
	}
	opts.Created = opts.Created.UTC().Truncate(time.Second)
	if opts.Compression == "" {
		opts.Compression = "zstd"
	}
	if opts.ChunkHash == "" {
		opts.ChunkHash = ChunkBLAKE3
	}
	if err := prepareOut(opts.Out); err != nil {
		return nil, err
	}

	m := &Manifest{Format: FormatVersion, Name: opts.Name, Version: opts.Version, Arch: opts.Arch,
		Created: opts.Created, UpgradeFrom: opts.UpgradeFrom, Migrations: opts.Migrations}

	rootfs := filepath.Join(opts.Out, RootfsName)
	if opts.Root != "" {
		if err := mksquashfs(opts.Root, rootfs, opts.Compression, opts.Created); err != nil {
			return nil, err
		}
	} else {
		if err := checkSquashfs(opts.Squashfs); err != nil {
			return nil, err
		}
		if _, err := copyHashed(opts.Squashfs, rootfs, RootfsName); err != nil {
			return nil, err
		}
	}
	rootFiles, err := hashRootfs(opts.Out, rootfs, RootfsName, WriteBlockSize, opts.ChunkHash, !opts.NoChunkList)
	if err != nil {
		return nil, err
	}
	m.Files = append(m.Files, rootFiles...)
	for _, c := range []struct{ src, name string }{
		{opts.Kernel, KernelName}, {opts.Initrd, InitrdName}, {opts.Loader, LoaderName},
	} {
		f, err := copyHashed(c.src, filepath.Join(opts.Out, c.name), c.name)
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, f)
	}
	if opts.AdminHashFile != "" {
		f, err := writeAdminHash(opts.AdminHashFile, filepath.Join(opts.Out, AdminHashName))
		if err != nil {
			return nil, err
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
	if err := writeFileAtomic(filepath.Join(opts.Out, ManifestName), b, 0o644); err != nil {
		return nil, err
	}
	return m, nil
}

func (o BuildOptions) check() error {
	missing := func(flag string) error {
		return newError("build", "bundle", fmt.Errorf("%s is required", flag), "pass "+flag)
	}
	switch {
	case (o.Root == "") == (o.Squashfs == ""):
		return newError("build", "bundle", fmt.Errorf("give exactly one of --root and --squashfs"),
			"--root DIR packs a directory, --squashfs FILE takes an existing image")
	case o.Kernel == "":
		return missing("--kernel")
	case o.Initrd == "":
		return missing("--initrd")
	case o.Loader == "":
		return missing("--loader")
	case !knownChunkHash(o.ChunkHash):
		return newError("build", "bundle", fmt.Errorf("unknown chunk hash %q", o.ChunkHash),
			"pass --chunk-hash blake3 (the default) or --chunk-hash sha256")
	case o.Name == "":
		return missing("--name")
	case o.Version == "":
		return missing("--version")
	case o.Out == "":
		return missing("--out")
	}
	for _, p := range []string{o.Kernel, o.Initrd, o.Loader} {
		if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
			return newError("build", p, fmt.Errorf("not a readable regular file"), "check the path")
		}
	}
	if o.Root != "" {
		if st, err := os.Stat(o.Root); err != nil || !st.IsDir() {
			return newError("build", o.Root, fmt.Errorf("--root is not a directory"), "check the path")
		}
	}
	for _, c := range o.UpgradeFrom {
		if _, err := MatchVersion("0", c); err != nil {
			return newError("build", "--upgrade-from", err, `write constraints like "1.x" or ">=1.0 <2.0"`)
		}
	}
	for i, mg := range o.Migrations {
		if err := mg.validate(); err != nil {
			return newError("build", fmt.Sprintf("migration %d", i), err, "fix the migrations file")
		}
	}
	if o.AdminHashFile != "" {
		// Before mksquashfs, which takes minutes on a big root.
		if _, err := readAdminHashFile(o.AdminHashFile); err != nil {
			return err
		}
	}
	return nil
}

// writeAdminHash checks the hash in src and writes it to dst as one line, and
// returns its manifest entry. The hash never appears in an error.
func writeAdminHash(src, dst string) (File, error) {
	h, err := readAdminHashFile(src)
	if err != nil {
		return File{}, err
	}
	b := []byte(h + "\n")
	if err := writeFileAtomic(dst, b, 0o644); err != nil {
		return File{}, fmt.Errorf("build: %w", err)
	}
	sum := sha256.Sum256(b)
	return File{Name: AdminHashName, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}, nil
}

// readAdminHashFile reads and checks --admin-hash-file.
func readAdminHashFile(src string) (string, error) {
	const fix = "put only the hash in the file: openssl passwd -6 > FILE"
	st, err := os.Stat(src)
	if err != nil || !st.Mode().IsRegular() {
		return "", newError("build", src, fmt.Errorf("--admin-hash-file is not a readable regular file"), "check the path")
	}
	if st.Size() > maxAdminHashSize {
		return "", newError("build", src, fmt.Errorf("--admin-hash-file is %d bytes; a crypt(3) hash is a few hundred", st.Size()), fix)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return "", newError("build", src, err, "check the path")
	}
	h, err := parseAdminHash(data)
	if err != nil {
		return "", newError("build", src, err, fix)
	}
	return h, nil
}

// prepareOut creates the output directory, refusing a non-empty one so two
// builds never mix.
func prepareOut(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("build: create %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("build: read %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return newError("build", dir, fmt.Errorf("output directory is not empty"), "choose a new --out directory")
	}
	return nil
}

// mksquashfs packs root into out with every timestamp set to created, so the
// same tree gives the same bytes; extra are more mksquashfs options.
func mksquashfs(root, out, comp string, created time.Time, extra ...string) error {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		return newError("build", root, err, "install squashfs-tools, or pass --squashfs with a prebuilt image")
	}
	ts := strconv.FormatInt(created.Unix(), 10)
	args := append([]string{root, out, "-noappend", "-comp", comp,
		"-mkfs-time", ts, "-all-time", ts, "-no-progress", "-quiet"}, extra...)
	cmd := exec.Command("mksquashfs", args...)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build: mksquashfs %s: %w: %s", root, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}

// checkSquashfs checks the squashfs magic, so a wrong --squashfs file fails early.
func checkSquashfs(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("build: %w", err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil || string(magic) != "hsqs" {
		return newError("build", p, fmt.Errorf("not a squashfs image (no hsqs magic)"), "pass the squashfs produced by mksquashfs")
	}
	return nil
}

// copyHashed copies src to dst and returns the manifest entry.
func copyHashed(src, dst, name string) (File, error) {
	in, err := os.Open(src)
	if err != nil {
		return File{}, fmt.Errorf("build: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return File{}, fmt.Errorf("build: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("build: copy %s: %w", src, err)
	}
	return File{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// hashRootfs returns the manifest entries for the rootfs at p, named name:
// its own, with a digest per chunkSize chunk under alg, and, when alg is
// BLAKE3 and withList, that of its SHA-256 chunk list (ChunkListName), which
// it writes into dir, so that a writer can check whichever of the two its
// machine hashes faster.
func hashRootfs(dir, p, name string, chunkSize int, alg string, withList bool) ([]File, error) {
	withList = withList && alg != ChunkSHA256
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	defer f.Close()
	whole := sha256.New()
	entry := File{Name: name, ChunkSize: int64(chunkSize), ChunkHash: alg}
	if alg == ChunkSHA256 {
		entry.ChunkHash = "" // the form nodeinit read before chunk_hash existed
	}
	var shaChunks []string
	buf := make([]byte, chunkSize)
	for {
		n, err := io.ReadFull(f, buf)
		if n > 0 {
			whole.Write(buf[:n])
			entry.Chunks = append(entry.Chunks, chunkDigest(alg, buf[:n]))
			if withList {
				shaChunks = append(shaChunks, chunkDigest(ChunkSHA256, buf[:n]))
			}
			entry.Size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("build: hash %s: %w", p, err)
		}
	}
	entry.SHA256 = hex.EncodeToString(whole.Sum(nil))
	files := []File{entry}
	if withList {
		list := ChunkListName(name, ChunkSHA256)
		data := encodeChunkList(shaChunks)
		if err := writeFileAtomic(filepath.Join(dir, list), data, 0o644); err != nil {
			return nil, fmt.Errorf("build: %w", err)
		}
		sum := sha256.Sum256(data)
		files = append(files, File{Name: list, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	return files, nil
}
