//go:build !initramfs

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/nodeinit/nodeinit/image"
)

func init() {
	register("image", "build, sign, verify, edit and compare node image bundles; make signing keys", imageGroup.run)
}

var imageGroup = group{
	name:    "image",
	usage:   imageUsage,
	example: "nodeinit image sign --key node.key bundle/",
	subs: map[string]func(args []string, stdout, stderr io.Writer) error{
		"build":  runImageBuild,
		"sign":   runImageSign,
		"verify": runImageVerify,
		"keygen": runImageKeygen,
	},
}

const imageUsage = `usage:
  nodeinit image build  (--root DIR | --squashfs FILE) --kernel F --initrd F --loader F
                        --name N --version V [--arch A] [--upgrade-from C]... [--migrations FILE]
                        [--admin-hash-file FILE] --out DIR
  nodeinit image build  --from-debian [--suite S] [--mirror M]... [--kernel-package P] [--package P]...
                        [--trust KEY.pub]... [--cache DIR] [--compression-level N] [--loader F]
                        --name N --version V [--upgrade-from C]... [--migrations FILE] --out DIR
  nodeinit image sign   --key PRIV [--password-file F] DIR
  nodeinit image verify --keys DIR|KEY.pub [--insecure] [--sha256 HEX] [--manifest-only] SOURCE
  nodeinit image keygen --pub P --priv Q [--password-file F]
  nodeinit image edit   --bundle IN --out OUT --key PRIV [--password-file F] [--pub P]
                        [--install-deb F.deb]... [--apt-dir DIR] [--install-plugin DIR|F.deb]...
                        [--remove-plugin NAME]... [--add SRC:DEST[:OWNER:GROUP:MODE]]...
                        [--install-kmod F.ko]... [--passwd USER:HASH]... [--sshkey USER:FILE]...
                        [--script FILE]... [--version V] [--name N]
  nodeinit image diff   [--json] OLD NEW

Flags may also follow DIR or SOURCE; "--" ends the flags.
SOURCE is a bundle directory, label:NAME[/dir], initramfs:/dir or an http(s) URL.
--from-debian builds the root with mmdebstrap from Debian's archive (minbase, systemd-sysv,
udev, kmod, iproute2, the kernel package and every --package), cached in --cache by the
packages' versions, adds nodeinit-bless.service and builds the initramfs from the root's
kernel modules with this binary, trusting every --trust key (run as root; see README).
Keys from "minisign -G" work too: sign with its .key file and ship its .pub in the
initramfs key directory (/etc/nodeinit/keys).
`

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func readPassword(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read password file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func runImageBuild(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image build", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o image.BuildOptions
	var upgrade stringList
	fs.StringVar(&o.Root, "root", "", "root directory to pack with mksquashfs")
	fs.StringVar(&o.Squashfs, "squashfs", "", "existing squashfs to use as rootfs.squashfs")
	fs.StringVar(&o.Kernel, "kernel", "", "kernel (vmlinuz)")
	fs.StringVar(&o.Initrd, "initrd", "", "initramfs (initrd.img)")
	fs.StringVar(&o.Loader, "loader", "/usr/lib/systemd/boot/efi/systemd-bootx64.efi", "UEFI boot loader")
	fs.StringVar(&o.Name, "name", "", "image name")
	fs.StringVar(&o.Version, "version", "", "image version")
	fs.StringVar(&o.Arch, "arch", "", "architecture (default: this machine's GOARCH)")
	fs.StringVar(&o.Out, "out", "", "output bundle directory (new or empty)")
	fs.StringVar(&o.ChunkHash, "chunk-hash", image.ChunkBLAKE3, `rootfs chunk digests in the manifest: "blake3" (also writes the SHA-256 chunk list, so each writer checks the faster of the two) or "sha256" (for nodeinit before chunk_hash existed)`)
	fs.Var(&upgrade, "upgrade-from", `version constraint this image may upgrade from, e.g. "1.x" or ">=1.0 <2.0" (repeatable)`)
	migrations := fs.String("migrations", "", "JSON file with a list of config migrations")
	fs.StringVar(&o.AdminHashFile, "admin-hash-file", "", "file holding the admin password hash (openssl passwd -6), put into the bundle for nodeinit.adminpw=bundle")
	var d debianFlags
	d.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("image build", fmt.Sprintf("unexpected argument %q", fs.Arg(0)),
			"every input is a flag: the root goes in --root or --squashfs, the bundle directory in --out")
	}
	if err := d.check(fs, o); err != nil {
		return err
	}
	o.UpgradeFrom = upgrade
	if *migrations != "" {
		b, err := os.ReadFile(*migrations)
		if err != nil {
			return fmt.Errorf("image build: %w", err)
		}
		if err := json.Unmarshal(b, &o.Migrations); err != nil {
			return fmt.Errorf("image build: parse %s (a JSON list of {op, path, to, value, mode}): %w", *migrations, err)
		}
	}
	var m *image.Manifest
	var err error
	if d.from {
		m, err = d.build(o, stderr)
	} else {
		m, err = image.Build(o)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "built %s %s (%s) in %s\n", m.Name, m.Version, m.Arch, o.Out)
	for _, f := range m.Files {
		fmt.Fprintf(stdout, "  %-16s %12d  %s\n", f.Name, f.Size, f.SHA256)
	}
	fmt.Fprintf(stdout, "sign it with: nodeinit image sign --key KEY %s\n", o.Out)
	return nil
}

func runImageSign(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "minisign private key")
	pwFile := fs.String("password-file", "", "file holding the key's password (unencrypted keys need none)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	const signHint = "nodeinit image sign --key PRIV [--password-file F] DIR"
	if fs.NArg() != 1 {
		return usageError("image sign", fmt.Sprintf("need one bundle directory, got %d arguments", fs.NArg()), signHint)
	}
	if *key == "" {
		return usageError("image sign", "need --key PRIV, the private key to sign with", signHint)
	}
	pw, err := readPassword(*pwFile)
	if err != nil {
		return err
	}
	if err := image.Sign(fs.Arg(0), *key, pw); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed %s/%s\n", fs.Arg(0), image.ManifestName)
	return nil
}

func runImageVerify(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keys := fs.String("keys", "/etc/nodeinit/keys", "directory of trusted *.pub keys, or one *.pub file")
	fs.StringVar(keys, "key", "/etc/nodeinit/keys", "the same as --keys (sign takes --key KEY; verify takes --key KEY.pub)")
	insecure := fs.Bool("insecure", false, "accept an unsigned manifest (as nodeinit.insecure)")
	pin := fs.String("sha256", "", "pinned SHA-256 of manifest.json (as nodeinit.image.sha256)")
	manifestOnly := fs.Bool("manifest-only", false, "check the manifest and signature only, not the file digests")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("image verify", fmt.Sprintf("need one SOURCE, got %d arguments", fs.NArg()),
			"nodeinit image verify --keys DIR SOURCE, where SOURCE is a bundle directory, label:NAME, initramfs:/dir or an http(s) URL")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	kr, err := image.LoadKeyring(*keys)
	if err != nil {
		return err
	}
	src, err := image.OpenSource(fs.Arg(0), image.SourceOptions{})
	if err != nil {
		return err
	}
	defer src.Close()
	b, err := image.Open(ctx, src, kr, image.VerifyOptions{Insecure: *insecure, PinnedSHA256: *pin})
	if err != nil {
		return err
	}
	trust := "UNSIGNED (accepted with --insecure)"
	if b.Signed {
		trust = "signed by key " + b.KeyID
	}
	if b.Pinned {
		trust += ", pinned"
	}
	fmt.Fprintf(stdout, "manifest %s %s (%s): %s\nmanifest sha256 %s\n", b.Manifest.Name, b.Manifest.Version, b.Manifest.Arch, trust, b.ManifestSHA256)
	if *manifestOnly {
		return nil
	}
	if err := b.VerifyFiles(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "all %d files match their size and SHA-256\n", len(b.Manifest.Files))
	return nil
}

func runImageKeygen(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image keygen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pub := fs.String("pub", "", "public key file to write (ship it in the initramfs key directory)")
	priv := fs.String("priv", "", "private key file to write (mode 0600)")
	pwFile := fs.String("password-file", "", "encrypt the private key with this password (without it the key is unencrypted: CI/test use only)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	const keygenHint = "nodeinit image keygen --pub node.pub --priv node.key [--password-file F]"
	if fs.NArg() != 0 {
		return usageError("image keygen", fmt.Sprintf("unexpected argument %q", fs.Arg(0)), "the key files go in --pub and --priv: "+keygenHint)
	}
	if *pub == "" || *priv == "" {
		return usageError("image keygen", "need --pub P and --priv Q", keygenHint)
	}
	pw, err := readPassword(*pwFile)
	if err != nil {
		return err
	}
	if err := image.GenerateKey(*pub, *priv, pw); err != nil {
		return err
	}
	if pw == "" {
		fmt.Fprintln(stderr, "warning: the private key is not encrypted; use --password-file for release keys")
	}
	fmt.Fprintf(stdout, "wrote %s and %s\n", *pub, *priv)
	return nil
}
