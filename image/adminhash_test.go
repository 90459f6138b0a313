package image

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testAdminHash is the admin password hash the tests put into bundles.
const testAdminHash = "$6$nodeinitsalt$Adm1nHashFromTheBundle0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH/."

// adminHashFile writes content to a temp file and returns its path.
func adminHashFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "admin.hash")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAdminHashFromBundle: Build puts --admin-hash-file into the bundle as
// adminpw.hash, listed in the signed manifest; AdminHash returns exactly that
// hash; the file is one of the bundle's files, which VerifyFiles checks too.
func TestAdminHashFromBundle(t *testing.T) {
	priv, keys := testKeys(t)
	dir, m := testBundleWith(t, priv, func(o *BuildOptions) { o.AdminHashFile = adminHashFile(t, testAdminHash+"\n") })
	if _, ok := m.File(AdminHashName); !ok {
		t.Fatalf("the manifest does not list %s: %+v", AdminHashName, m.Files)
	}
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	got, err := b.AdminHash(context.Background())
	if err != nil || got != testAdminHash {
		t.Fatalf("AdminHash = %q, %v; want the hash of --admin-hash-file", got, err)
	}
	if err := b.VerifyFiles(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAdminHashRefusesTamperedFile: an adminpw.hash that differs from what the
// signed manifest lists (another hash of the same length, or of another
// length) is refused, and the error shows neither hash.
func TestAdminHashRefusesTamperedFile(t *testing.T) {
	priv, keys := testKeys(t)
	for _, tc := range []struct {
		name, content string
		want          error
	}{
		{"same size", strings.Replace(testAdminHash, "Adm1n", "Evil1", 1) + "\n", ErrDigestMismatch},
		{"other size", "$6$evil$attackerhash\n", ErrSizeMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := testBundleWith(t, priv, func(o *BuildOptions) { o.AdminHashFile = adminHashFile(t, testAdminHash+"\n") })
			if err := os.WriteFile(filepath.Join(dir, AdminHashName), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
			got, err := b.AdminHash(context.Background())
			if !errors.Is(err, tc.want) || got != "" || HintOf(err) == "" {
				t.Fatalf("AdminHash of a tampered file = %q, %v; want %v with a hint", got, err, tc.want)
			}
			for _, h := range []string{"Adm1nHash", "Evil1Hash", "attackerhash"} {
				if strings.Contains(err.Error(), h) || strings.Contains(HintOf(err), h) {
					t.Errorf("the error shows a hash: %v", err)
				}
			}
		})
	}
}

// TestAdminHashMissing: a bundle built without --admin-hash-file has no
// adminpw.hash; AdminHash says how to build one.
func TestAdminHashMissing(t *testing.T) {
	priv, keys := testKeys(t)
	dir, _ := testBundle(t, priv)
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	if _, err := b.AdminHash(context.Background()); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(HintOf(err), "--admin-hash-file") {
		t.Fatalf("AdminHash without the file = %v (hint %q)", err, HintOf(err))
	}
}

// TestBuildRefusesBadAdminHashFile: a plaintext password, two lines, or no
// file at all is refused before anything is built, with a fix, and the
// content is never shown.
func TestBuildRefusesBadAdminHashFile(t *testing.T) {
	for name, content := range map[string]string{
		"plaintext": "hunter2-topsecret\n",
		"two lines": testAdminHash + "\n" + testAdminHash + "\n",
		"empty":     "",
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bundle")
			kernel := filepath.Join(t.TempDir(), "vmlinuz")
			os.WriteFile(kernel, []byte("hsqs kernel"), 0o644)
			_, err := Build(BuildOptions{Squashfs: kernel, Kernel: kernel, Initrd: kernel, Loader: kernel, Name: "n", Version: "1",
				Out: out, AdminHashFile: adminHashFile(t, content)})
			if err == nil || !strings.Contains(err.Error(), "admin.hash") || HintOf(err) == "" {
				t.Fatalf("Build = %v, want a refusal of the admin hash file with a fix", err)
			}
			if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "Adm1nHash") {
				t.Errorf("the error shows the file's content: %v", err)
			}
			if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Build wrote %s before refusing: %v", out, err)
			}
		})
	}
	if _, err := Build(BuildOptions{Squashfs: "x", Kernel: "x", Initrd: "x", Loader: "x", Name: "n", Version: "1",
		Out: t.TempDir(), AdminHashFile: "/nonexistent/admin.hash"}); err == nil {
		t.Error("a missing --admin-hash-file was not refused")
	}
}
