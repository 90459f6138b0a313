package initramfs

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// InitramfsTag is the build tag of nodeinit's initramfs build: the multi-call
// binary without the commands that only a build host runs (mkinitramfs,
// mkmedia, image). It is what goes in as /init; it still has every command
// a node or a rescue shell runs (apply, plan, upgrade, bless, status, tpm,
// persist).
const InitramfsTag = "initramfs"

// InitramfsBinary is the initramfs build's file name. `make build` writes it
// beside the CLI (build/nodeinit-initramfs), and the CLI's mkinitramfs takes it
// from there when --binary is not given.
const InitramfsBinary = "nodeinit-initramfs"

// GoBuildFlags are the `go build` flags of the initramfs build (the Makefile's
// INITRAMFS_GOFLAGS are the same; a test checks). Besides the tag and the
// stripping, they turn off inlining except in the packages where the time of
// a boot or an install goes (the runtime, zstd, BLAKE3): inlining copies code
// into every caller, and without it the binary is 19 % smaller compressed.
// bench/install and bench/boot measure what it costs.
var GoBuildFlags = []string{"-tags=" + InitramfsTag, "-trimpath", "-ldflags=-s -w",
	"-gcflags=all=-l", "-gcflags=runtime=", "-gcflags=github.com/klauspost/compress/...=", "-gcflags=lukechampine.com/blake3/...="}

// binaryInfo is the nodeinit binary chosen for /init.
type binaryInfo struct {
	path, version  string
	initramfsBuild bool // built with InitramfsTag
}

// binary finds the nodeinit binary for /init and checks that it is one: an
// ELF executable for linux/amd64 (the boot kernel's), built from
// BinaryPackage, so a CLI for another system, or some other program, is
// refused before anything is written. With no Options.Binary it is the
// running executable, or, when that is the full CLI, the initramfs build
// beside it.
func (o Options) binary() (binaryInfo, error) {
	if o.Binary != "" {
		return checkBinary(o.Binary)
	}
	self, err := os.Executable()
	if err != nil {
		return binaryInfo{}, fmt.Errorf("initramfs: find this program's own binary for /init: %w; give it with --binary", err)
	}
	return defaultBinary(self)
}

// defaultBinary is self, the running executable, or the initramfs build
// beside it when self is the full CLI.
func defaultBinary(self string) (binaryInfo, error) {
	if info, err := checkBinary(self); err == nil && !info.initramfsBuild {
		if sib, err := checkBinary(filepath.Join(filepath.Dir(self), InitramfsBinary)); err == nil && sib.initramfsBuild {
			return sib, nil
		}
	}
	return checkBinary(self)
}

func checkBinary(path string) (binaryInfo, error) {
	path, err := filepath.EvalSymlinks(path)
	if err != nil {
		return binaryInfo{}, fmt.Errorf("initramfs: binary for /init: %w", err)
	}
	f, err := elf.Open(path)
	if err != nil {
		return binaryInfo{}, fmt.Errorf("initramfs: binary %s is not an ELF executable (%v): give a nodeinit built for linux/amd64 (GOOS=linux GOARCH=amd64 go build ./cmd/nodeinit)", path, err)
	}
	machine := f.Machine
	f.Close()
	if machine != elf.EM_X86_64 {
		return binaryInfo{}, fmt.Errorf("initramfs: binary %s is built for %s, but the boot kernel is x86-64: build nodeinit with GOARCH=amd64", path, machine)
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil || bi.Path != BinaryPackage {
		what := "no Go build information"
		if err == nil {
			what = "built from " + bi.Path
		}
		return binaryInfo{}, fmt.Errorf("initramfs: binary %s is not the nodeinit CLI (%s): give a binary built from %s", path, what, BinaryPackage)
	}
	info := binaryInfo{path: path, version: bi.Main.Version}
	for _, s := range bi.Settings {
		if s.Key == "-tags" && slices.Contains(strings.Split(s.Value, ","), InitramfsTag) {
			info.initramfsBuild = true
		}
	}
	return info, nil
}
