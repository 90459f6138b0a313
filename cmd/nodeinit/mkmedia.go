//go:build !initramfs

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/media"
)

func init() {
	register("mkmedia", "build install media: mkmedia iso|usb|pxe [flags] OUT", mkmediaGroup.run)
}

// mkmediaGroup holds the kinds of medium mkmedia builds, each with its own flags.
var mkmediaGroup = group{
	name: "mkmedia",
	usage: "Usage: nodeinit mkmedia iso|usb|pxe [flags] OUT   (flags may also follow OUT; \"--\" ends them)\n" +
		"  nodeinit mkmedia MEDIUM -h shows each medium's flags\n",
	example: "nodeinit mkmedia iso --bundle DIR node.iso",
	subs: map[string]func(args []string, stdout, stderr io.Writer) error{
		"iso": runMkmediaISO,
		"usb": runMkmediaUSB,
		"pxe": runMkmediaPXE,
	},
}

// mediaFlags are the flags iso and usb share.
type mediaFlags struct {
	iso    media.ISOOptions
	root   string
	extra  argList
	target string
}

func newMediaFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *mediaFlags) {
	m := &mediaFlags{}
	fs := flag.NewFlagSet("mkmedia "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&m.iso.Bundle, "bundle", "", "signed image bundle directory (required); its vmlinuz, initrd.img and loader.efi boot the medium")
	fs.StringVar(&m.iso.Menu.Default, "default", "", "default menu entry: "+strings.Join(media.EntryIDs(), ", ")+" (default install)")
	fs.DurationVar(&m.iso.Menu.Timeout, "timeout", 0, "menu timeout, rounded up to whole seconds (default 10s)")
	fs.Var(&m.extra, "append", "extra kernel arguments for every entry (repeatable), e.g. --append console=ttyS0,115200n8")
	fs.StringVar(&m.iso.Menu.Unattended, "unattended", "", "storage_init for the default entry, making an unattended install medium, e.g. serial:XYZ or nvme")
	fs.StringVar(&m.iso.Label, "label", media.DefaultLabel, "volume label the installer looks for (label:NAME)")
	fs.BoolVar(&m.iso.EmbedBundle, "embed-bundle", false, "also put the bundle inside the installer initrd, for kernels that cannot see the medium (no USB drivers)")
	fs.StringVar(&m.root, "syslinux-root", "/", "root under which Debian's isolinux and syslinux-common are unpacked")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: nodeinit mkmedia %s [flags] OUT   (flags may also follow OUT; \"--\" ends them)\n\n%s\n\n", name, usage)
		fs.PrintDefaults()
	}
	return fs, m
}

func (m *mediaFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError(fs.Name(), fmt.Sprintf("give exactly one output, got %d arguments", fs.NArg()),
			"nodeinit "+fs.Name()+" --bundle DIR OUT, with flags before or after OUT (\"--\" ends them)")
	}
	m.target = fs.Arg(0)
	m.iso.Menu.ExtraArgs = m.extra
	m.iso.Syslinux = media.DebianSyslinux(m.root)
	return nil
}

func printMedia(w io.Writer, res *media.ISOResult) {
	fmt.Fprintf(w, "wrote %s (%d MiB, label %s)\n", res.Path, res.Size>>20, res.Label)
	for _, e := range res.Entries {
		mark := " "
		if e.Default {
			mark = "*"
		}
		// The menu's arguments may hold an admin password hash: a secret is never printed.
		var shown []string
		for _, tok := range strings.Fields(e.Cmdline(nil)) {
			shown = append(shown, cmdline.RedactToken(tok))
		}
		args := strings.Join(shown, " ")
		if e.Local {
			args = "(next boot device)"
		}
		fmt.Fprintf(w, " %s %-28s %s\n", mark, e.Title, args)
	}
}

// runMkmediaISO is `nodeinit mkmedia iso [flags] OUT.iso`.
func runMkmediaISO(args []string, stdout, stderr io.Writer) error {
	fs, m := newMediaFlags("iso", "Builds a hybrid image that boots as a CD and, written as is to a USB stick, as a disk,\n"+
		"on BIOS (isolinux) and UEFI (systemd-boot from the bundle).", stderr)
	if err := m.parse(fs, args); err != nil {
		return err
	}
	res, err := media.BuildISO(context.Background(), m.target, m.iso)
	if err != nil {
		return fmt.Errorf("mkmedia iso: %w", err)
	}
	printMedia(stdout, res)
	return nil
}

// runMkmediaUSB is `nodeinit mkmedia usb [flags] OUT|/dev/sdX`.
func runMkmediaUSB(args []string, stdout, stderr io.Writer) error {
	fs, m := newMediaFlags("usb", "Writes the same hybrid image as mkmedia iso (it is the USB image) to a file or to a USB stick's\n"+
		"whole disk. A device must be removable or on USB, have nothing mounted and not be used by md, LVM or swap.", stderr)
	var o media.USBOptions
	fs.BoolVar(&o.Force, "force", false, "write to a block device the kernel reports neither as removable nor on USB")
	if err := m.parse(fs, args); err != nil {
		return err
	}
	res, err := media.WriteUSB(context.Background(), m.target, m.iso, o)
	if err != nil {
		return fmt.Errorf("mkmedia usb: %w", err)
	}
	printMedia(stdout, res)
	return nil
}
