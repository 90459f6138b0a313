package image

import (
	"context"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/internal/testloop"
)

// testKeys makes a key pair in a temp dir and returns the private key path
// and a keyring directory holding only the public key.
func testKeys(t *testing.T) (priv, keyDir string) {
	t.Helper()
	dir := t.TempDir()
	keyDir = filepath.Join(dir, "keys")
	if err := os.Mkdir(keyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	priv = filepath.Join(dir, "test.key")
	if err := GenerateKey(filepath.Join(keyDir, "test.pub"), priv, ""); err != nil {
		t.Fatal(err)
	}
	return priv, keyDir
}

func mustKeyring(t *testing.T, dir string) Keyring {
	t.Helper()
	kr, err := LoadKeyring(dir)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// rootfsSize is deliberately not a multiple of 4 KiB and spans several
// write blocks, so the aligned and the unaligned paths both run.
const rootfsSize = 2*WriteBlockSize + 3*4096 + 123

// testBundle builds a signed bundle in a temp dir from random inputs.
func testBundle(t *testing.T, priv string) (dir string, m *Manifest) {
	t.Helper()
	return testBundleWith(t, priv, nil)
}

// testBundleWith is testBundle with the build options changed by adjust.
func testBundleWith(t *testing.T, priv string, adjust func(*BuildOptions)) (dir string, m *Manifest) {
	t.Helper()
	in := t.TempDir()
	write := func(name string, size int, prefix string) string {
		b := make([]byte, size)
		rand.Read(b)
		copy(b, prefix)
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	dir = filepath.Join(t.TempDir(), "bundle")
	opts := BuildOptions{
		Squashfs:    write("root.sqfs", rootfsSize, "hsqs"),
		Kernel:      write("vmlinuz", 70000, "MZ"),
		Initrd:      write("initrd", 50000, ""),
		Loader:      write("loader", 30000, "MZ"),
		Name:        "node",
		Version:     "1.2.0",
		Arch:        "amd64",
		Created:     time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		UpgradeFrom: []string{">=1.0 <1.2"},
		Migrations:  []Migration{{Op: OpMove, Path: "/etc/old.conf", To: "/etc/new.conf"}},
		Out:         dir,
	}
	if adjust != nil {
		adjust(&opts)
	}
	m, err := Build(opts)
	if err != nil {
		t.Fatal(err)
	}
	if priv != "" {
		if err := Sign(dir, priv, ""); err != nil {
			t.Fatal(err)
		}
	}
	return dir, m
}

func openDir(t *testing.T, dir string) Source {
	t.Helper()
	src, err := OpenSource(dir, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func mustOpen(t *testing.T, src Source, kr Keyring, opts VerifyOptions) *Bundle {
	t.Helper()
	b, err := Open(context.Background(), src, kr, opts)
	if err != nil {
		t.Fatalf("Open: %v (hint: %s)", err, HintOf(err))
	}
	return b
}

func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// loopDevice attaches a new sparse file of size bytes to a loop device with
// direct I/O on, and detaches it when the test ends.
func loopDevice(t *testing.T, size int64, sectorSize int) string {
	t.Helper()
	needRoot(t, "losetup")
	f := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(f, size); err != nil {
		t.Fatal(err)
	}
	args := []string{"--direct-io=on"}
	if sectorSize != 0 {
		args = append(args, "--sector-size", itoa(sectorSize))
	}
	return testloop.Attach(t, f, args...).Dev
}

func itoa(i int) string { return strconv.Itoa(i) }

// signedRootfs builds and opens a signed test bundle and returns its
// directory and the rootfs entry, which has at least three chunks.
func signedRootfs(t *testing.T) (dir string, entry File) {
	t.Helper()
	priv, keys := testKeys(t)
	dir, _ = testBundle(t, priv)
	b := mustOpen(t, openDir(t, dir), mustKeyring(t, keys), VerifyOptions{})
	entry, _ = b.Manifest.File(RootfsName)
	if len(entry.Chunks) < 3 {
		t.Fatalf("test rootfs has %d chunk digests, want at least 3", len(entry.Chunks))
	}
	return dir, entry
}

// openRootfs opens dir's rootfs for reading until the test ends.
func openRootfs(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, RootfsName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
