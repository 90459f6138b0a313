//go:build !initramfs

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/rescue"
)

func init() {
	register("mkinitramfs", "build the initramfs (compressed newc cpio): /init (build/nodeinit-initramfs), rescue shell, keys and modules", runMkinitramfs)
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runMkinitramfs(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkinitramfs", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts initramfs.Options
	var keys, files, dirs, modules, commands listFlag
	fs.StringVar(&opts.Output, "o", "", "output file (required), e.g. build/initrd.img")
	compression := fs.String("compress", "zstd", "compression: zstd (zstd -19, the smallest; it takes about 10 s), zstd-fast (25 % larger, in a fraction of a second), gzip or none")
	fs.StringVar(&opts.ModulesDir, "modules-dir", "", "a kernel's lib/modules/<version> (with modules.dep); empty adds no modules")
	fs.StringVar(&opts.FirmwareDir, "firmware-dir", defaultFirmwareDir(), "firmware tree: the files the included modules declare (MODULE_FIRMWARE) go in from here where it has them; empty adds none")
	set := fs.String("modules", string(initramfs.SetDefault), "module set: default (common virtual and server hardware by name), most (every storage, network, filesystem and crypto module the kernel ships, like initramfs-tools' MODULES=most) or host (the drivers of this machine's devices, from the kernel in --modules-dir)")
	fs.Var(&modules, "module", "kernel module to include with its dependencies, on top of --modules (repeatable)")
	fs.Var(&keys, "key", "trusted minisign public key file (*.pub), put in /etc/nodeinit/keys (repeatable)")
	fs.Var(&files, "files", "HOST[:DEST] file to add; ELF files bring their shared libraries (repeatable)")
	fs.Var(&dirs, "dir", "HOST:DEST directory to add whole (repeatable)")
	fs.Var(&commands, "cmd", "rescue shell command to link in /bbin (repeatable; default all: "+strings.Join(rescue.Names(), " ")+")")
	fs.StringVar(&opts.Binary, "binary", "", "the nodeinit binary to put in as /init (default: this one)")
	fs.Bool("no-install-tools", false, "no effect, kept so older build scripts run: an install needs no external tool (ext4 is made in-process)")
	biosLoader := fs.String("bios-loader", "", "a directory with GRUB's i386-pc boot.img and a core.img from grub-mkimage (see README, BIOS installs): an install under BIOS, or with nodeinit.firmware=bios, then installs for BIOS")
	verbose := fs.Bool("v", false, "show build progress")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("mkinitramfs", fmt.Sprintf("unexpected argument %q", fs.Arg(0)),
			"mkinitramfs takes flags only; the output goes in -o: nodeinit mkinitramfs -o initrd.img --key keys/node.pub")
	}
	opts.Compression = initramfs.Compression(*compression)
	opts.Keys, opts.Files, opts.Dirs = keys, files, dirs
	if *biosLoader != "" {
		for _, name := range []string{boot.GrubBootImage, boot.GrubCoreImage} {
			src := filepath.Join(*biosLoader, name)
			if st, err := os.Stat(src); err != nil || !st.Mode().IsRegular() {
				return usageError("mkinitramfs", "--bios-loader "+*biosLoader+" has no "+name,
					"put GRUB's boot.img (/usr/lib/grub/i386-pc/boot.img, Debian grub-pc-bin) and a core.img from grub-mkimage there")
			}
			opts.Files = append(opts.Files, src+":/"+path.Join(boot.GrubImageDir, name))
		}
	}
	switch initramfs.ModuleSet(*set) {
	case initramfs.SetDefault:
		if len(modules) > 0 {
			opts.Modules = append(slices.Clone(initramfs.DefaultModules), modules...)
		}
	case initramfs.SetMost, initramfs.SetHost:
		if opts.ModulesDir == "" {
			return usageError("mkinitramfs", "--modules "+*set+" needs the kernel's modules",
				"add --modules-dir /lib/modules/<version> of the kernel the initramfs boots")
		}
		names, err := initramfs.ModulesFor(initramfs.ModuleSet(*set), opts.ModulesDir, "/sys")
		if err != nil {
			return fmt.Errorf("mkinitramfs: %w", err)
		}
		opts.Modules = append(names, modules...)
	default:
		return usageError("mkinitramfs", fmt.Sprintf("--modules %q is not a module set", *set),
			"use --modules default, most or host, and --module NAME for one more")
	}
	if len(commands) > 0 {
		opts.Commands = commands
	}
	if *verbose {
		opts.Log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	res, err := initramfs.Build(context.Background(), opts)
	if err != nil {
		return fmt.Errorf("mkinitramfs: %w", err)
	}
	fmt.Fprintln(stdout, res)
	return nil
}

// defaultFirmwareDir is /lib/firmware when this machine has one (Debian's
// firmware packages install there), else "".
func defaultFirmwareDir() string {
	if st, err := os.Stat("/lib/firmware"); err == nil && st.IsDir() {
		return "/lib/firmware"
	}
	return ""
}
