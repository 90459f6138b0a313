package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/nodeinit/nodeinit/media"
)

// mediaISO builds a signed test bundle and writes it to an ISO with `nodeinit
// mkmedia iso`'s code, as an operator would. It returns the ISO, the bundle
// directory and the keyring that trusts it.
func mediaISO(t *testing.T) (iso, bundle string, keys Keyring) {
	t.Helper()
	sl := media.DebianSyslinux("/")
	if _, err := os.Stat(sl.IsolinuxBin); err != nil {
		t.Skipf("needs Debian packages isolinux and syslinux-common: %v", err)
	}
	priv, keyDir := testKeys(t)
	bundle, _ = testBundle(t, priv)
	iso = filepath.Join(t.TempDir(), "node.iso")
	if _, err := media.BuildISO(context.Background(), iso, media.ISOOptions{Bundle: bundle, Syslinux: sl}); err != nil {
		t.Fatal(err)
	}
	return iso, bundle, mustKeyring(t, keyDir)
}

// treeISO writes the files (path → content) into a plain ISO 9660 image with
// Rock Ridge names, as go-diskfs writes one for mkmedia, without boot records.
func treeISO(t *testing.T, files map[string][]byte) string {
	t.Helper()
	tree := t.TempDir()
	for name, data := range files {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "tree.iso")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs, err := iso9660.Create(file.New(f, false), 0, 0, isoBlock, tree)
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: "TREE"}); err != nil {
		t.Fatal(err)
	}
	return out
}

// bundleFiles reads every file of the bundle directory.
func bundleFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = b
	}
	return files
}

// checkStreams opens the bundle in src with keys, checks every file against
// the signed manifest, and streams the rootfs through WriteFile, the write-slot
// path, into a file whose bytes must be the bundle's.
func checkStreams(t *testing.T, src Source, keys Keyring, bundle string) {
	t.Helper()
	ctx := context.Background()
	manifest, _ := os.ReadFile(filepath.Join(bundle, ManifestName))
	rc, size, err := src.Open(ctx, ManifestName)
	if err != nil {
		t.Fatalf("open %s: %v", ManifestName, err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, manifest) || size != int64(len(manifest)) {
		t.Fatalf("%s from %s: %d bytes (size %d), want the bundle's %d", ManifestName, src, len(got), size, len(manifest))
	}
	b := mustOpen(t, src, keys, VerifyOptions{})
	if !b.Signed {
		t.Error("the manifest read from the ISO is not signed by the test key")
	}
	if err := b.VerifyFiles(ctx); err != nil {
		t.Fatalf("VerifyFiles: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "slot")
	if err := os.WriteFile(dst, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteFile(ctx, RootfsName, dst, 0, nil); err != nil {
		t.Fatalf("WriteFile %s: %v", RootfsName, err)
	}
	want, _ := os.ReadFile(filepath.Join(bundle, RootfsName))
	if written, _ := os.ReadFile(dst); sha256.Sum256(written) != sha256.Sum256(want) || len(want) != rootfsSize {
		t.Fatalf("the slot holds %d bytes that differ from the bundle's %d-byte %s", len(written), len(want), RootfsName)
	}
}

// TestISOSourceReadsMkmediaISO: OpenSource takes the ISO that mkmedia writes,
// by its content, and reads the bundle at its root without mounting: the
// manifest's bytes, every file's digest, and the multi-MiB rootfs streamed
// into a slot.
func TestISOSourceReadsMkmediaISO(t *testing.T) {
	iso, bundle, keys := mediaISO(t)
	// The name says nothing: the content does.
	renamed := filepath.Join(filepath.Dir(iso), "upgrade.img")
	if err := os.Rename(iso, renamed); err != nil {
		t.Fatal(err)
	}
	src, err := OpenSource(renamed, SourceOptions{})
	if err != nil {
		t.Fatalf("OpenSource(%s): %v (hint: %s)", renamed, err, HintOf(err))
	}
	defer src.Close()
	if src.String() != renamed || src.Cleartext() {
		t.Errorf("source %q, cleartext %v", src, src.Cleartext())
	}
	checkStreams(t, src, keys, bundle)

	if _, _, err := src.Open(context.Background(), "nonexistent"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("open of a missing file: %v, want fs.ErrNotExist (the bundle tells a missing signature by it)", err)
	}
	if _, _, err := src.Open(context.Background(), "../isolinux/isolinux.cfg"); err == nil {
		t.Error("a name with a path was opened")
	}
	if _, _, err := src.Open(context.Background(), "isolinux"); err == nil {
		t.Error("a directory was opened as a bundle file")
	}
}

// TestISOSourceSubDirectory: FILE.iso/sub/dir names the bundle's directory
// inside the image; an ISO whose bundle is not at its root is refused with a
// fix that names that directory.
func TestISOSourceSubDirectory(t *testing.T) {
	priv, keyDir := testKeys(t)
	bundle, _ := testBundle(t, priv)
	files := map[string][]byte{"README": []byte("not a bundle\n")}
	for name, data := range bundleFiles(t, bundle) {
		files["releases/node/"+name] = data
	}
	iso := treeISO(t, files)

	src, err := OpenSource(iso+"/releases/node", SourceOptions{})
	if err != nil {
		t.Fatalf("OpenSource: %v (hint: %s)", err, HintOf(err))
	}
	defer src.Close()
	checkStreams(t, src, mustKeyring(t, keyDir), bundle)

	_, err = OpenSource(iso+"/releases", SourceOptions{})
	if err == nil || !strings.Contains(err.Error(), "no bundle in "+iso) || !strings.Contains(HintOf(err), iso+"/releases/node") {
		t.Errorf("ISO directory without a bundle: %v (hint: %s), want it refused, pointing at %s/releases/node", err, HintOf(err), iso)
	}
	_, err = OpenSource(iso+"/nonexistent", SourceOptions{})
	if err == nil || !strings.Contains(err.Error(), "no directory /nonexistent") || HintOf(err) == "" {
		t.Errorf("missing directory in the ISO: %v, want it named with a hint", err)
	}
}

// TestISOSourceRefusesBadImages: a file that is not an ISO, a truncated ISO and
// an ISO without a bundle are refused when the source is opened, each with an
// error that names the file and a fix.
func TestISOSourceRefusesBadImages(t *testing.T) {
	iso, _, _ := mediaISO(t)
	raw, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// An image truncated at the end of its last directory: its header and
	// directories are whole, the file extents are not.
	cut := raw[:isoHeaderSize+64*isoBlock]
	// The same bytes with a header patched to claim exactly that size: only
	// the file's extent, read at Open, shows the image is short.
	lying := bytes.Clone(cut)
	binary.LittleEndian.PutUint32(lying[isoVDOffset+80:], uint32(len(lying)/isoBlock))
	binary.BigEndian.PutUint32(lying[isoVDOffset+84:], uint32(len(lying)/isoBlock))

	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"random bytes", write("random.iso", bytes.Repeat([]byte("not an iso "), 8000)), "not an ISO 9660 image (no CD001 at byte 32769)"},
		{"too short", write("short.iso", []byte("CD001")), "not an ISO 9660 image: only 5 bytes"},
		{"manifest file", write("manifest.json", []byte(`{"format":1}`)), "not an ISO 9660 image"},
		{"truncated", write("cut.iso", cut), "truncated ISO: 165888 bytes"},
		{"no bundle", treeISO(t, map[string][]byte{"boot/vmlinuz": []byte("MZ")}), "no bundle in"},
	} {
		src, err := OpenSource(tc.path, SourceOptions{})
		if err == nil {
			src.Close()
			t.Errorf("%s: OpenSource accepted %s", tc.name, tc.path)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) || HintOf(err) == "" {
			t.Errorf("%s: %v (hint: %q), want %q naming %s, with a hint", tc.name, err, HintOf(err), tc.want, tc.path)
		}
	}

	src, err := OpenSource(write("lying.iso", lying), SourceOptions{})
	if err != nil {
		t.Fatalf("OpenSource of a short image whose header claims its size: %v", err)
	}
	defer src.Close()
	_, _, err = src.Open(context.Background(), RootfsName)
	if err == nil || !strings.Contains(err.Error(), "truncated ISO") || HintOf(err) == "" {
		t.Errorf("open of a file past the end of the image: %v, want truncated ISO with a hint", err)
	}
}

// TestSpoolISOFromPipe: an ISO fed through a pipe, as `--image -` receives it,
// is spooled into the temp directory without leaving a name there, read as
// the source "-", and gone when the spool is closed.
func TestSpoolISOFromPipe(t *testing.T) {
	iso, bundle, keys := mediaISO(t)
	tmp := t.TempDir()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		f, _ := os.Open(iso)
		io.Copy(pw, f)
		f.Close()
		pw.Close()
	}()
	var progress []int64
	var total int64
	spool, err := SpoolISO(context.Background(), pr, SpoolOptions{Dir: tmp,
		Progress: func(done, tot int64) { progress, total = append(progress, done), tot }})
	pr.Close()
	if err != nil {
		t.Fatalf("SpoolISO: %v (hint: %s)", err, HintOf(err))
	}
	st, _ := os.Stat(iso)
	if spool.Size() != st.Size() || len(progress) < 2 || progress[len(progress)-1] != st.Size() || total <= 0 || total > st.Size() {
		t.Errorf("spooled %d bytes of %d; progress %v of %d", spool.Size(), st.Size(), progress, total)
	}
	expectEmpty(t, tmp)

	if _, err := OpenSource("-", SourceOptions{}); err == nil || HintOf(err) == "" {
		t.Errorf(`OpenSource("-") without a spool: %v, want a refusal with a hint`, err)
	}
	src, err := OpenSource("-", SourceOptions{Stdin: spool})
	if err != nil {
		t.Fatalf(`OpenSource("-"): %v`, err)
	}
	checkStreams(t, src, keys, bundle)
	src.Close()
	if err := spool.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Open(context.Background(), ManifestName); err == nil {
		t.Error("the spool could still be read after Close")
	}
}

// TestSpoolISOFromRegularFile: standard input redirected from a file is read
// in place: nothing is copied into the temp directory.
func TestSpoolISOFromRegularFile(t *testing.T) {
	iso, bundle, keys := mediaISO(t)
	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	free := func(*os.File) (int64, error) {
		t.Error("the free space was checked: the file was copied")
		return 0, nil
	}
	tmp := t.TempDir()
	spool, err := SpoolISO(context.Background(), f, SpoolOptions{Dir: tmp, FreeBytes: free})
	if err != nil {
		t.Fatal(err)
	}
	defer spool.Close()
	expectEmpty(t, tmp)
	src, err := OpenSource("-", SourceOptions{Stdin: spool})
	if err != nil {
		t.Fatal(err)
	}
	checkStreams(t, src, keys, bundle)
}

// TestSpoolISORefuses: a stream that is not an ISO, one cut short, one that
// needs more space than the temp directory has (up front, or because the
// space runs out on the way) and one whose sender hangs when the context ends
// are refused with an error that names the stream or directory and the fix,
// and leave nothing in the temp directory.
func TestSpoolISORefuses(t *testing.T) {
	iso, _, _ := mediaISO(t)
	raw, err := os.ReadFile(iso)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := parseISOHeader(raw)
	if !ok || h.size <= 0 || h.size > int64(len(raw)) {
		t.Fatalf("mkmedia's ISO header: %+v, %v; file %d bytes", h, ok, len(raw))
	}
	plenty := func(*os.File) (int64, error) { return 1 << 40, nil }
	// shrinking has room for the whole image before the first write; then
	// another writer takes half of it.
	shrinking := func(f *os.File) (int64, error) {
		st, err := f.Stat()
		if err != nil || st.Size() == 0 {
			return 1 << 40, err
		}
		return h.size/2 + spoolReserve - st.Size(), nil
	}
	for _, tc := range []struct {
		name string
		in   []byte
		free func(*os.File) (int64, error)
		want []string
	}{
		{"not an ISO", bytes.Repeat([]byte{0xa5}, 1<<20), plenty, []string{"standard input", "not an ISO 9660 image"}},
		{"empty", nil, plenty, []string{"standard input", "only 0 bytes"}},
		{"cut short", raw[:h.size/2], plenty, []string{"standard input", "truncated ISO: the stream ended after"}},
		{"no room", raw, func(*os.File) (int64, error) { return 20 << 20, nil }, []string{"not enough free space: 20 MiB free, 65 MiB needed (49 MiB to write, 16 MiB kept free), after 0 MiB received"}},
		{"room runs out", raw, shrinking, []string{"not enough free space", "MiB needed (4 MiB to write"}},
	} {
		tmp := t.TempDir()
		spool, err := SpoolISO(context.Background(), bytes.NewReader(tc.in), SpoolOptions{Dir: tmp, FreeBytes: tc.free})
		if err == nil {
			spool.Close()
			t.Errorf("%s: spooled", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v, want %q", tc.name, err, w)
			}
		}
		if fix := HintOf(err); fix == "" || (strings.Contains(tc.name, "room") && (!strings.Contains(err.Error(), tmp) || !strings.Contains(fix, "--tmpdir"))) {
			t.Errorf("%s: %v (fix %q): want the directory named and a fix", tc.name, err, fix)
		}
		if tc.name == "room runs out" && strings.Contains(err.Error(), "after 0 MiB") {
			t.Errorf("%s: %v, want it refused on the way, not up front", tc.name, err)
		}
		expectEmpty(t, tmp)
	}

	// A sender that stops sending: the spool ends with the context.
	tmp := t.TempDir()
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(raw[:h.size/2])
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := SpoolISO(ctx, pr, SpoolOptions{Dir: tmp, FreeBytes: plenty}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled spool: %v", err)
	}
	expectEmpty(t, tmp)
}

// expectEmpty fails unless dir holds nothing.
func expectEmpty(t *testing.T, dir string) {
	t.Helper()
	if des, _ := os.ReadDir(dir); len(des) != 0 {
		t.Errorf("%s holds %d entries (%s), want none", dir, len(des), des[0].Name())
	}
}
