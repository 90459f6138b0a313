//go:build !initramfs

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/image/debroot"
)

// debianFlags are image build's --from-debian flags.
type debianFlags struct {
	from                bool
	recipe              debroot.Recipe
	mirrors, pkgs, keys stringList
	cache               string
	level               int
}

func (d *debianFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.from, "from-debian", false, "build the root from Debian's archive with mmdebstrap (cached; needs root)")
	fs.StringVar(&d.recipe.Suite, "suite", debroot.DefaultSuite, "Debian suite for --from-debian")
	fs.Var(&d.mirrors, "mirror", "mmdebstrap MIRROR argument for --from-debian (repeatable; default deb.debian.org with updates and security)")
	fs.StringVar(&d.recipe.Kernel, "kernel-package", debroot.DefaultKernel, "kernel package for --from-debian (linux-image-amd64 for real hardware)")
	fs.Var(&d.pkgs, "package", "more Debian packages for --from-debian (repeatable)")
	fs.Var(&d.keys, "trust", "minisign public key the initramfs trusts and the image carries, for --from-debian (repeatable)")
	cache := os.Getenv("NODEINIT_CACHE")
	if cache == "" {
		cache = "/var/cache/nodeinit"
	}
	fs.StringVar(&d.cache, "cache", cache, "cache directory for --from-debian's roots ($NODEINIT_CACHE)")
	fs.IntVar(&d.level, "compression-level", 6, "zstd level of --from-debian's squashfs")
}

// check refuses --from-debian together with another root or kernel, and the
// Debian flags without --from-debian.
func (d *debianFlags) check(fs *flag.FlagSet, o image.BuildOptions) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if d.from {
		for _, name := range []string{"root", "squashfs", "kernel", "initrd"} {
			if set[name] {
				return usageError("image build", "--from-debian builds the root, kernel and initramfs itself; --"+name+" conflicts",
					"drop --"+name+", or drop --from-debian to pack your own root")
			}
		}
		return nil
	}
	for _, name := range []string{"suite", "mirror", "kernel-package", "package", "trust", "cache", "compression-level"} {
		if set[name] {
			return usageError("image build", "--"+name+" is a --from-debian flag", "add --from-debian, or drop --"+name)
		}
	}
	return nil
}

// build makes the bundle o describes from a Debian root: debroot.Ensure, then
// debroot.Bundle with this binary in the initramfs. Progress goes to logw.
func (d *debianFlags) build(o image.BuildOptions, logw io.Writer) (*image.Manifest, error) {
	if o.Name == "" || o.Version == "" || o.Out == "" {
		return nil, usageError("image build", "--from-debian needs --name, --version and --out",
			"nodeinit image build --from-debian --name mynode --version 1.0 --out bundle/")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	d.recipe.Mirrors, d.recipe.Packages = d.mirrors, d.pkgs
	root, err := debroot.Ensure(ctx, d.recipe, d.cache, logw)
	if err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "nodeinit-debian-")
	if err != nil {
		return nil, fmt.Errorf("image build: %w", err)
	}
	defer os.RemoveAll(work)
	return debroot.Bundle(ctx, debroot.BundleOptions{Root: root, Image: o, Work: work, Keys: d.keys,
		CompressionLevel: d.level, Log: logw})
}
