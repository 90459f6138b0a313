package image

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"
)

// Names of the files in a bundle.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.json.minisig"
	RootfsName    = "rootfs.squashfs"
	KernelName    = "vmlinuz"
	InitrdName    = "initrd.img"
	LoaderName    = "loader.efi"
	// AdminHashName is the optional file holding the admin password hash, one
	// crypt(3) hash and a newline, for nodeinit.adminpw=bundle (see AdminHash).
	AdminHashName = "adminpw.hash"
)

// RequiredFiles are the files every manifest must list.
var RequiredFiles = []string{RootfsName, KernelName, InitrdName, LoaderName}

// FormatVersion is the manifest format this package writes and reads.
const FormatVersion = 1

// maxManifestSize bounds how much of a manifest or signature is read.
const (
	maxManifestSize  = 1 << 20
	maxSignatureSize = 16 << 10
)

// Manifest describes one release of the node OS. It is stored as
// manifest.json and is the only signed object of a bundle.
type Manifest struct {
	Format  int       `json:"format"`
	Name    string    `json:"name"`
	Version string    `json:"version"`
	Arch    string    `json:"arch"` // GOARCH-style: amd64, arm64
	Created time.Time `json:"created"`
	Files   []File    `json:"files"`
	// UpgradeFrom lists version constraints an installed version must meet
	// for this image to upgrade it; see MatchVersion. Empty means any version.
	UpgradeFrom []string `json:"upgrade_from,omitempty"`
	// Migrations are applied, in order, to the persisted config on upgrade.
	Migrations []Migration `json:"migrations,omitempty"`
	// EditedFrom and Edits are set by `nodeinit image edit` (EditBundle): the
	// bundle it started from, and every change made since the image was built.
	EditedFrom *Origin `json:"edited_from,omitempty"`
	Edits      []Edit  `json:"edits,omitempty"`
}

// File is one bundle file with its size and SHA-256 (lower-case hex).
//
// Large files (the rootfs) also carry Chunks: the digest of each ChunkSize
// piece, in order, under ChunkHash (ChunkBLAKE3 or ChunkSHA256; empty means
// SHA-256). They are covered by the manifest signature like SHA256, so
// checking every chunk proves the whole file; the writer uses them to verify
// on every core while it writes, because one SHA-256 over the whole stream
// runs on a single core and is slower than a fast disk.
type File struct {
	Name      string   `json:"name"`
	Size      int64    `json:"size"`
	SHA256    string   `json:"sha256"`
	ChunkSize int64    `json:"chunk_size,omitempty"`
	ChunkHash string   `json:"chunk_hash,omitempty"`
	Chunks    []string `json:"chunks,omitempty"`
}

// MaxChunkSize bounds File.ChunkSize, and with it the writer's memory.
const MaxChunkSize = 16 << 20

// Migration operations.
const (
	OpMove   = "move"   // move Path to To (a file or directory)
	OpRename = "rename" // same as move, kept for readability of manifests
	OpDelete = "delete" // remove Path (missing is fine)
	OpSet    = "set"    // write Value to Path with Mode (default 0644)
)

// Migration is one declarative change to the persisted config, relative to
// the config root. Paths are absolute within that root (e.g. /etc/foo.conf).
type Migration struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	To    string `json:"to,omitempty"`
	Value string `json:"value,omitempty"`
	Mode  string `json:"mode,omitempty"` // octal, e.g. "0600"; only for set
}

// ParseManifest decodes and validates manifest.json bytes.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: decode JSON: %v", ErrBadManifest, err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Marshal returns the canonical JSON encoding (indented, trailing newline).
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// Validate checks that the manifest is complete and well-formed.
func (m *Manifest) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadManifest, fmt.Sprintf(format, args...))
	}
	if m.Format != FormatVersion {
		return bad("format %d, this nodeinit reads format %d", m.Format, FormatVersion)
	}
	if m.Name == "" || m.Version == "" || m.Arch == "" {
		return bad("name, version and arch are required")
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if f.Name == "" || f.Name != path.Base(f.Name) || f.Name == "." || f.Name == ".." ||
			f.Name == ManifestName || f.Name == SignatureName {
			return bad("file name %q must be a plain file name", f.Name)
		}
		if seen[f.Name] {
			return bad("file %q listed twice", f.Name)
		}
		seen[f.Name] = true
		if f.Size < 0 {
			return bad("file %q has negative size", f.Name)
		}
		if !isDigestHex(f.SHA256) {
			return bad("file %q: sha256 must be 64 lower-case hex digits", f.Name)
		}
		if !knownChunkHash(f.ChunkHash) {
			return bad("file %q: chunk_hash %q is not %q or %q", f.Name, f.ChunkHash, ChunkBLAKE3, ChunkSHA256)
		}
		if f.ChunkSize != 0 || len(f.Chunks) != 0 {
			if f.ChunkSize <= 0 || f.ChunkSize%4096 != 0 || f.ChunkSize > MaxChunkSize {
				return bad("file %q: chunk_size must be a multiple of 4096 up to %d", f.Name, MaxChunkSize)
			}
			if want := (f.Size + f.ChunkSize - 1) / f.ChunkSize; int64(len(f.Chunks)) != want {
				return bad("file %q: %d chunk digests, size needs %d", f.Name, len(f.Chunks), want)
			}
			for _, c := range f.Chunks {
				if !isDigestHex(c) {
					return bad("file %q: chunk digests must be 64 lower-case hex digits", f.Name)
				}
			}
		}
	}
	for _, r := range RequiredFiles {
		if !seen[r] {
			return bad("required file %q is not listed", r)
		}
	}
	for _, c := range m.UpgradeFrom {
		if _, err := MatchVersion("0", c); err != nil {
			return bad("upgrade_from: %v", err)
		}
	}
	for i, mg := range m.Migrations {
		if err := mg.validate(); err != nil {
			return bad("migration %d: %v", i, err)
		}
	}
	for i, e := range m.Edits {
		if !knownEditOp(e.Op) {
			return bad("edit %d: op %q is not one nodeinit image edit writes", i, e.Op)
		}
	}
	return nil
}

// isDigestHex reports whether s is a 256-bit digest (SHA-256 or BLAKE3) in lower-case hex.
func isDigestHex(s string) bool {
	d, err := hex.DecodeString(s)
	return err == nil && len(d) == 32 && strings.ToLower(s) == s
}

// File returns the entry for name.
func (m *Manifest) File(name string) (File, bool) {
	for _, f := range m.Files {
		if f.Name == name {
			return f, true
		}
	}
	return File{}, false
}

// CanUpgradeFrom reports whether an installed version may be upgraded by this
// image: true when UpgradeFrom is empty or any one constraint matches.
func (m *Manifest) CanUpgradeFrom(installed string) bool {
	if len(m.UpgradeFrom) == 0 {
		return true
	}
	for _, c := range m.UpgradeFrom {
		if ok, err := MatchVersion(installed, c); err == nil && ok {
			return true
		}
	}
	return false
}

// MatchVersion reports whether version meets constraint. A constraint is one
// or more space-separated terms that must all hold; a term is an operator
// (=, !=, <, <=, >, >=; none means =) and a version, where the version may end
// in ".x" or "*" as a wildcard ("1.x" matches 1, 1.0, 1.4.2). Versions compare
// dot by dot, numerically where both parts are numbers, else as strings.
func MatchVersion(version, constraint string) (bool, error) {
	terms := strings.Fields(constraint)
	if len(terms) == 0 {
		return false, fmt.Errorf("empty version constraint")
	}
	for _, t := range terms {
		op := ""
		for _, p := range []string{">=", "<=", "!=", ">", "<", "="} {
			if strings.HasPrefix(t, p) {
				op = p
				break
			}
		}
		want := strings.TrimPrefix(t, op)
		if want == "" {
			return false, fmt.Errorf("constraint %q: term %q has no version", constraint, t)
		}
		if strings.HasSuffix(want, ".x") || strings.HasSuffix(want, ".*") || want == "*" || want == "x" {
			if op != "" && op != "=" {
				return false, fmt.Errorf("constraint %q: a wildcard only works with =", constraint)
			}
			prefix := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(want, "*"), "x"), ".")
			if prefix != "" && version != prefix && !strings.HasPrefix(version, prefix+".") {
				return false, nil
			}
			continue
		}
		c := compareVersions(version, want)
		ok := map[string]bool{
			"": c == 0, "=": c == 0, "!=": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0,
		}[op]
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// compareVersions orders dotted versions; missing parts count as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		x, y := "0", "0"
		if i < len(as) {
			x = as[i]
		}
		if i < len(bs) {
			y = bs[i]
		}
		xn, errx := strconv.ParseUint(x, 10, 64)
		yn, erry := strconv.ParseUint(y, 10, 64)
		switch {
		case errx == nil && erry == nil:
			if xn != yn {
				if xn < yn {
					return -1
				}
				return 1
			}
		case x != y:
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (mg Migration) validate() error {
	checkPath := func(p string) error {
		if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
			return fmt.Errorf("path %q must be absolute, clean and not /", p)
		}
		return nil
	}
	if err := checkPath(mg.Path); err != nil {
		return err
	}
	switch mg.Op {
	case OpMove, OpRename:
		return checkPath(mg.To)
	case OpDelete:
		return nil
	case OpSet:
		if mg.Mode != "" {
			if _, err := strconv.ParseUint(mg.Mode, 8, 32); err != nil {
				return fmt.Errorf("mode %q must be octal like 0644", mg.Mode)
			}
		}
		return nil
	default:
		return fmt.Errorf("op %q must be move, rename, delete or set", mg.Op)
	}
}
