package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenSignedBundle(t *testing.T) {
	priv, keys := testKeys(t)
	dir, m := testBundle(t, priv)
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{Arch: "amd64"})
	if !b.Signed || b.KeyID == "" {
		t.Errorf("Signed=%v KeyID=%q, want a verified signature", b.Signed, b.KeyID)
	}
	if b.Manifest.Version != m.Version || len(b.Manifest.Files) != 5 { // the four required and the rootfs's SHA-256 chunk list
		t.Errorf("manifest = %+v", b.Manifest)
	}
	if err := b.VerifyFiles(context.Background()); err != nil {
		t.Fatalf("VerifyFiles: %v", err)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, ManifestName))
	sum := sha256.Sum256(raw)
	if b.ManifestSHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("ManifestSHA256 = %s", b.ManifestSHA256)
	}
}

func TestOpenRefuses(t *testing.T) {
	priv, keys := testKeys(t)
	_, otherKeys := testKeys(t)
	tests := []struct {
		name   string
		mutate func(t *testing.T, dir string)
		keys   string
		opts   VerifyOptions
		want   error
	}{
		{
			name: "tampered manifest",
			mutate: func(t *testing.T, dir string) {
				p := filepath.Join(dir, ManifestName)
				b, _ := os.ReadFile(p)
				os.WriteFile(p, bytes.Replace(b, []byte(`"1.2.0"`), []byte(`"1.2.1"`), 1), 0o644)
			},
			keys: keys, want: ErrBadSignature,
		},
		{name: "wrong key", keys: otherKeys, want: ErrBadSignature},
		{name: "no trusted keys", keys: filepath.Join(t.TempDir(), "none"), want: ErrBadSignature},
		{
			name:   "missing signature",
			mutate: func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, SignatureName)) },
			keys:   keys, want: ErrUnsigned,
		},
		{
			name: "garbage signature",
			mutate: func(t *testing.T, dir string) {
				os.WriteFile(filepath.Join(dir, SignatureName), []byte("not a signature\n"), 0o644)
			},
			keys: keys, want: ErrBadSignature,
		},
		{name: "pin mismatch", keys: keys, opts: VerifyOptions{PinnedSHA256: stringsRepeat("ab", 32)}, want: ErrPinMismatch},
		{name: "pin mismatch even insecure", keys: keys, opts: VerifyOptions{Insecure: true, PinnedSHA256: stringsRepeat("0", 64)}, want: ErrPinMismatch},
		{name: "wrong arch", keys: keys, opts: VerifyOptions{Arch: "arm64"}, want: ErrBadManifest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := testBundle(t, priv)
			if tc.mutate != nil {
				tc.mutate(t, dir)
			}
			_, err := Open(context.Background(), openDir(t, dir), mustKeyring(t, tc.keys), tc.opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open error = %v, want %v", err, tc.want)
			}
			if HintOf(err) == "" {
				t.Errorf("error %v carries no hint", err)
			}
		})
	}
}

func stringsRepeat(s string, n int) string { return string(bytes.Repeat([]byte(s), n)) }

func TestInsecureAcceptsUnsigned(t *testing.T) {
	_, keys := testKeys(t)
	dir, _ := testBundle(t, "")
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{Insecure: true})
	if b.Signed || b.Pinned {
		t.Errorf("Signed=%v Pinned=%v for an unsigned, unpinned bundle", b.Signed, b.Pinned)
	}
	// A matching pin is reported.
	b2 := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{Insecure: true, PinnedSHA256: b.ManifestSHA256})
	if !b2.Pinned {
		t.Error("Pinned = false with a matching pin")
	}
}

// TestTamperedFileIsRefused flips a byte in the kernel (checked by its SHA-256) and in
// the rootfs (checked by its chunk digests, as a stateless boot copies it into RAM):
// CopyFile refuses each, leaves the old destination and no temp file, and VerifyFiles
// refuses the bundle.
func TestTamperedFileIsRefused(t *testing.T) {
	for _, name := range []string{KernelName, RootfsName} {
		t.Run(name, func(t *testing.T) {
			priv, keys := testKeys(t)
			dir, _ := testBundle(t, priv)
			flipByte(t, filepath.Join(dir, name), 1000)
			b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})

			dst := filepath.Join(t.TempDir(), name)
			os.WriteFile(dst, []byte("old file"), 0o644)
			err := b.CopyFile(context.Background(), name, dst)
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("CopyFile = %v, want ErrDigestMismatch", err)
			}
			if got, _ := os.ReadFile(dst); string(got) != "old file" {
				t.Errorf("destination changed after a failed copy: %q", got[:min(len(got), 20)])
			}
			if ents, _ := os.ReadDir(filepath.Dir(dst)); len(ents) != 1 {
				t.Errorf("temp files left behind: %v", ents)
			}
			if err := b.VerifyFiles(context.Background()); !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("VerifyFiles = %v, want ErrDigestMismatch", err)
			}
		})
	}
}

func TestTamperedRootfsSpoilsSlot(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	flipByte(t, filepath.Join(dir, RootfsName), rootfsSize-10) // in the last block
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	dst := regularTarget(t, 4<<20+rootfsSize)
	err := b.WriteFile(context.Background(), RootfsName, dst, 4<<20, nil)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("WriteFile = %v, want ErrDigestMismatch", err)
	}
	got := readAt(t, dst, 4<<20, 4096)
	if !bytes.Equal(got, make([]byte, 4096)) {
		t.Errorf("first 4 KiB of the rejected slot not zeroed: % x", got[:8])
	}
}

func TestWrongSizeIsRefused(t *testing.T) {
	priv, keys := testKeys(t)
	for _, tc := range []struct {
		name string
		size int64
	}{{"truncated", rootfsSize - 5000}, {"longer", rootfsSize + 1}} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := testBundle(t, priv)
			if err := os.Truncate(filepath.Join(dir, RootfsName), tc.size); err != nil {
				t.Fatal(err)
			}
			b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
			dst := regularTarget(t, rootfsSize)
			if err := b.WriteFile(context.Background(), RootfsName, dst, 0, nil); !errors.Is(err, ErrSizeMismatch) {
				t.Fatalf("WriteFile = %v, want ErrSizeMismatch", err)
			}
			// A reader that hides the size (as a chunked HTTP response does)
			// still gets caught while streaming.
			w := &streamWriter{dst: mustOpenFile(t, dst), offset: 0, name: RootfsName, total: rootfsSize}
			f, _ := os.Open(filepath.Join(dir, RootfsName))
			defer f.Close()
			entry, _ := b.Manifest.File(RootfsName)
			n, _, err := w.run(context.Background(), f, entry)
			if err != nil || n == rootfsSize {
				t.Errorf("stream of a %d-byte file: n=%d err=%v, want a size other than %d", tc.size, n, err, rootfsSize)
			}
		})
	}
}

func TestWriteFileToRegularFile(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	const offset = 1 << 20
	dst := regularTarget(t, offset)
	fillPattern(t, dst, offset)
	var reports []Progress
	ProgressInterval = 0
	t.Cleanup(func() { ProgressInterval = 1e9 })
	if err := b.WriteFile(context.Background(), RootfsName, dst, offset, func(p Progress) { reports = append(reports, p) }); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, RootfsName))
	if got := readAt(t, dst, offset, len(want)); !bytes.Equal(got, want) {
		t.Fatal("slot content differs from rootfs.squashfs")
	}
	if got := readAt(t, dst, 0, offset); !bytes.Equal(got, pattern(offset)) {
		t.Fatal("bytes before the offset were changed")
	}
	if len(reports) == 0 || !reports[len(reports)-1].Final || reports[len(reports)-1].Done != rootfsSize {
		t.Fatalf("progress reports = %+v, want a final one with Done=%d", reports, rootfsSize)
	}
}

func TestCopyFile(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	dst := filepath.Join(t.TempDir(), "loader.efi")
	if err := b.CopyFile(context.Background(), LoaderName, dst); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join(dir, LoaderName))
	if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
		t.Fatal("copied loader differs")
	}
	if err := b.CopyFile(context.Background(), "other.efi", dst); !errors.Is(err, ErrBadManifest) {
		t.Errorf("CopyFile of an unlisted file = %v, want ErrBadManifest", err)
	}
}

func TestWriteFileRefusesMissingTarget(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	missing := filepath.Join(t.TempDir(), "sdx2")
	if err := b.WriteFile(context.Background(), RootfsName, missing, 0, nil); err == nil {
		t.Fatal("WriteFile created a missing target")
	}
	if _, err := os.Stat(missing); err == nil {
		t.Fatal("target file was created")
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	f.ReadAt(b, off)
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func regularTarget(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "target.img")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustOpenFile(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}

func fillPattern(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(pattern(n), 0); err != nil {
		t.Fatal(err)
	}
}

func readAt(t *testing.T, path string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("read %s at %d: %v", path, off, err)
	}
	return b
}
