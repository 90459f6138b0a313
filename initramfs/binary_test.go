package initramfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestMakefileBuildsWithGoBuildFlags: the Makefile's INITRAMFS_GOFLAGS, which
// make build uses for build/nodeinit-initramfs, are GoBuildFlags, which the
// test fixtures and benches build with.
func TestMakefileBuildsWithGoBuildFlags(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^INITRAMFS_GOFLAGS := (.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("the Makefile has no INITRAMFS_GOFLAGS line")
	}
	var want []string
	for _, f := range GoBuildFlags {
		if strings.Contains(f, " ") {
			f = "'" + f + "'"
		}
		want = append(want, f)
	}
	if got := string(m[1]); got != strings.Join(want, " ") {
		t.Errorf("Makefile INITRAMFS_GOFLAGS\n  %s\nGoBuildFlags\n  %s", got, strings.Join(want, " "))
	}
}

// TestInitramfsBuildHasTheNodeCommandsOnly: the initramfs build refuses the
// build-host commands with a pointer to the full CLI, and still runs the
// commands of a node and a rescue shell. Build takes it without a warning; the
// full CLI gets one, and as the running executable it would take the
// initramfs build beside it (binary()).
func TestInitramfsBuildHasTheNodeCommandsOnly(t *testing.T) {
	bin := nodeinitBinary(t)
	for _, c := range []string{"mkinitramfs", "mkmedia", "image"} {
		out, err := exec.Command(bin, c, "-h").CombinedOutput()
		if err == nil || !strings.Contains(string(out), c+" is not in this build") || !strings.Contains(string(out), "full CLI") {
			t.Errorf("%s in the initramfs build: %v\n%s", c, err, out)
		}
	}
	for _, c := range []string{"apply", "plan", "upgrade", "bless", "status", "tpm", "persist"} {
		if out, err := exec.Command(bin, c, "-h").CombinedOutput(); err != nil || strings.Contains(string(out), "not in this build") {
			t.Errorf("%s -h in the initramfs build: %v\n%s", c, err, out)
		}
	}
	info, err := checkBinary(bin)
	if err != nil || !info.initramfsBuild {
		t.Fatalf("checkBinary(%s) = %+v, %v: want the initramfs build", bin, info, err)
	}

	full := filepath.Join(t.TempDir(), "nodeinit")
	cmd := exec.Command("go", "build", "-trimpath", "-o", full, "../cmd/nodeinit")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if info, err := checkBinary(full); err != nil || info.initramfsBuild {
		t.Fatalf("checkBinary(full CLI) = %+v, %v", info, err)
	}
	if got, err := defaultBinary(full); err != nil || got.path != full {
		t.Errorf("the full CLI alone takes %+v, %v: want itself", got, err)
	}
	sibling := filepath.Join(filepath.Dir(full), InitramfsBinary)
	if err := os.Symlink(bin, sibling); err != nil {
		t.Fatal(err)
	}
	if got, err := defaultBinary(full); err != nil || !got.initramfsBuild {
		t.Errorf("the full CLI with %s beside it takes %+v, %v: want the initramfs build", InitramfsBinary, got, err)
	}
	if got, err := defaultBinary(bin); err != nil || got.path != bin {
		t.Errorf("the initramfs build takes %+v, %v: want itself", got, err)
	}
	res, err := Build(t.Context(), Options{Output: filepath.Join(t.TempDir(), "i.img"), Binary: full, Commands: []string{"ls"}, Compression: ZstdFast})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "full CLI") {
		t.Errorf("the full CLI as /init: warnings %q", res.Warnings)
	}
}
