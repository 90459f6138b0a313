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

	"github.com/nodeinit/nodeinit/image"
)

func init() {
	imageGroup.subs["edit"] = runImageEdit
	imageGroup.subs["diff"] = runImageDiff
}

const editHint = "nodeinit image edit --bundle IN --out OUT --key KEY [--install-deb F.deb [--apt-dir DIR] [--apt-source \"URI SUITE COMP\"]] [--install-kmod F.ko --initramfs] [--add SRC:DEST] [--script F]"

func runImageEdit(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image edit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o image.EditOptions
	var adds, debs, plugins, removes, kmods, passwds, sshkeys, scripts, sources stringList
	fs.StringVar(&o.Bundle, "bundle", "", "input bundle directory (only read)")
	fs.StringVar(&o.Out, "out", "", "new bundle directory (must not exist or be empty)")
	fs.StringVar(&o.Key, "key", "", "minisign private key that signs the new manifest")
	pwFile := fs.String("password-file", "", "file holding the key's password")
	fs.StringVar(&o.PublicKey, "pub", "", "public key the --key must belong to (the .pub the nodes trust)")
	fs.Var(&adds, "add", "SRC:DEST[:OWNER:GROUP:MODE]: copy a file or directory into the image (repeatable)")
	fs.Var(&debs, "install-deb", "install a .deb with dpkg (repeatable)")
	fs.StringVar(&o.AptDir, "apt-dir", "", "directory of .debs that dependencies are taken from")
	fs.Var(&sources, "apt-source", "\"URI SUITE COMPONENT...\" (as in sources.list; URI http(s)://, file:// or a directory; \"URI ./\" for a flat one): a repository dependencies are taken from, each .deb checked against its Packages index (repeatable)")
	fs.StringVar(&o.AptKeyring, "apt-keyring", "", "GnuPG keyring (gpg --export) the --apt-source's InRelease or Release.gpg must verify with (gpgv); without it no signature is checked")
	fs.Var(&plugins, "install-plugin", "install a plugin: a .deb, or a directory with plugin.json (repeatable)")
	fs.Var(&removes, "remove-plugin", "remove a plugin (or package) by name (repeatable)")
	fs.Var(&kmods, "install-kmod", "install a kernel module under lib/modules/<version>/extra and run depmod (repeatable)")
	fs.StringVar(&o.KernelVersion, "kernel-version", "", "the image kernel's release, when it cannot be read from the bundle")
	fs.BoolVar(&o.Initramfs, "initramfs", false, "rebuild the bundle's initrd.img (a nodeinit initramfs) to load the kernel modules the edit installed and trust --key's public key; without it an edit that installs modules warns that the initrd lacks them")
	fs.Var(&passwds, "passwd", "USER:HASH: set a user's password hash (openssl passwd -6) (repeatable)")
	fs.Var(&sshkeys, "sshkey", "USER:FILE: add the public keys in FILE to the user's authorized_keys (repeatable)")
	fs.Var(&scripts, "script", "run a script in a chroot of the image, with no network, after the other changes (repeatable)")
	fs.StringVar(&o.Version, "version", "", "new version (default <old>+edit.N)")
	fs.StringVar(&o.Name, "name", "", "new image name (default the old one)")
	quiet := fs.Bool("quiet", false, "do not show the output of dpkg and the scripts (warnings are still shown)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("image edit", fmt.Sprintf("unexpected argument %q", fs.Arg(0)), "every input is a flag: "+editHint)
	}
	if o.Bundle == "" || o.Out == "" || o.Key == "" {
		return usageError("image edit", "need --bundle, --out and --key", editHint)
	}
	o.Adds, o.Debs, o.Plugins, o.RemovePlugins = adds, debs, plugins, removes
	o.Kmods, o.Passwds, o.SSHKeys, o.Scripts = kmods, passwds, sshkeys, scripts
	o.AptSources = sources
	pw, err := readPassword(*pwFile)
	if err != nil {
		return err
	}
	o.Password = pw
	o.Log, o.Warn = stderr, stderr
	if *quiet {
		o.Log = io.Discard
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m, err := image.EditBundle(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "edited %s %s into %s %s (%s) in %s\n", m.EditedFrom.Name, m.EditedFrom.Version, m.Name, m.Version, m.Arch, o.Out)
	for _, e := range m.Edits {
		if e.Base == m.EditedFrom.Version {
			fmt.Fprintf(stdout, "  %-16s %s %s %s\n", e.Op, e.Name, e.Version, e.Source)
		}
	}
	fmt.Fprintf(stdout, "signed; compare with: nodeinit image diff %s %s\n", o.Bundle, o.Out)
	return nil
}

func runImageDiff(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("image diff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the changes as a JSON list")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		return usageError("image diff", fmt.Sprintf("need two bundle directories, got %d arguments", fs.NArg()), "nodeinit image diff OLD/ NEW/")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	changes, err := image.Diff(ctx, fs.Arg(0), fs.Arg(1))
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if changes == nil {
			changes = []image.Change{}
		}
		return enc.Encode(changes)
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "no differences")
	}
	for _, c := range changes {
		fmt.Fprintln(stdout, c)
	}
	return nil
}
