//go:build !initramfs

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/image"
)

// TestImageBuildAdminHashFile: --admin-hash-file puts the hash into the bundle as
// adminpw.hash, listed in the manifest, and the build output never prints it.
func TestImageBuildAdminHashFile(t *testing.T) {
	in := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const hash = "$6$clisalt$HashForTheImageBuildCommand"
	out := filepath.Join(t.TempDir(), "bundle")
	got, err := runCLI(t, "image", "build", "--squashfs", write("root.sqfs", "hsqs root"), "--kernel", write("vmlinuz", "k"),
		"--initrd", write("initrd", "i"), "--loader", write("loader", "l"), "--name", "node", "--version", "1.0",
		"--admin-hash-file", write("admin.hash", hash+"\n"), "--out", out)
	if err != nil {
		t.Fatalf("image build: %v\n%s", err, got)
	}
	if b, err := os.ReadFile(filepath.Join(out, image.AdminHashName)); err != nil || string(b) != hash+"\n" {
		t.Fatalf("%s = %q, %v", image.AdminHashName, b, err)
	}
	m, err := os.ReadFile(filepath.Join(out, image.ManifestName))
	if err != nil || !strings.Contains(string(m), `"name": "`+image.AdminHashName+`"`) {
		t.Fatalf("the manifest does not list %s: %s %v", image.AdminHashName, m, err)
	}
	if strings.Contains(got, "HashForTheImageBuildCommand") {
		t.Errorf("image build printed the hash:\n%s", got)
	}
}

// TestImageEditAndDiffUsage: edit without its required flags and diff
// without two bundles are usage errors with a fix, before anything runs.
func TestImageEditAndDiffUsage(t *testing.T) {
	for _, args := range [][]string{
		{"image", "edit", "--bundle", "in"},
		{"image", "edit", "--bundle", "in", "--out", "out", "--key", "k", "extra"},
		{"image", "diff", "onlyone"},
	} {
		out, err := runCLI(t, args...)
		if err == nil || image.HintOf(err) == "" {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
}

// TestImageBuildFromDebianUsage: --from-debian with a root or kernel of its own, a
// Debian flag without --from-debian, and --from-debian without a name are usage
// errors with a fix, before any root is resolved or built.
func TestImageBuildFromDebianUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from-debian", "--root", "rootfs/", "--name", "n", "--version", "1", "--out", "o"}, "--root conflicts"},
		{[]string{"--from-debian", "--kernel", "vmlinuz", "--name", "n", "--version", "1", "--out", "o"}, "--kernel conflicts"},
		{[]string{"--root", "rootfs/", "--package", "openssh-server", "--name", "n", "--version", "1", "--out", "o"}, "--package is a --from-debian flag"},
		{[]string{"--squashfs", "r.sqfs", "--trust", "k.pub", "--name", "n", "--version", "1", "--out", "o"}, "--trust is a --from-debian flag"},
		{[]string{"--from-debian", "--version", "1", "--out", "o"}, "needs --name, --version and --out"},
	} {
		out, err := runCLI(t, append([]string{"image", "build"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || image.HintOf(err) == "" {
			t.Errorf("image build %v: %v (hint %q), want a usage error with %q\n%s", tc.args, err, image.HintOf(err), tc.want, out)
		}
	}
}
