//go:build !initramfs

package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/nodeinit/nodeinit/media"
)

// argList collects a repeatable flag; each value may hold several space-separated arguments.
type argList []string

func (a *argList) String() string { return strings.Join(*a, " ") }

func (a *argList) Set(v string) error {
	*a = append(*a, strings.Fields(v)...)
	return nil
}

// runMkmediaPXE is `nodeinit mkmedia pxe [flags] DIR` (mkmedia.go dispatches "pxe" here).
func runMkmediaPXE(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkmedia pxe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o media.PXEOptions
	var extra argList
	fs.StringVar(&o.Bundle, "bundle", "", "signed image bundle directory (its vmlinuz and initrd.img are used unless -kernel/-initramfs)")
	fs.StringVar(&o.Kernel, "kernel", "", "kernel to boot (default: the bundle's vmlinuz)")
	fs.StringVar(&o.Initramfs, "initramfs", "", "nodeinit initramfs (default: the bundle's initrd.img)")
	fs.StringVar(&o.ImageURL, "image-url", "", "http(s) URL where DIR/bundle/ is served; may hold ${mac}, ${serial}, ${uuid}, ${hostname}")
	fs.BoolVar(&o.EmbedBundle, "embed-bundle", false, "put the bundle inside the initramfs (no HTTP server needed)")
	fs.StringVar(&o.Menu.Default, "default", "", "default entry: "+strings.Join(media.EntryIDs(), ", ")+" (default install)")
	fs.DurationVar(&o.Menu.Timeout, "timeout", 0, "menu timeout (default 10s)")
	fs.Var(&extra, "append", "extra kernel arguments for every entry (repeatable)")
	fs.StringVar(&o.Menu.Unattended, "unattended", "", "storage_init value for the default entry: an unattended install, e.g. nvme or serial:XYZ")
	fs.StringVar(&o.PXELinux, "pxelinux", "", "pxelinux.0 to copy (default "+media.DebianPXELinux+" when installed)")
	fs.StringVar(&o.SyslinuxModules, "syslinux-modules", "", "directory of ldlinux.c32 and menu.c32 (default "+media.DebianSyslinuxModules+")")
	fs.StringVar(&o.GrubNet, "grubnet", "", "GRUB's UEFI network boot image to copy to "+media.PXEGrubNet+" (default "+media.DebianGrubNet+" when installed)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: nodeinit mkmedia pxe [flags] DIR   (flags may also follow DIR; \"--\" ends them)\n\nWrites the TFTP tree for network boot into DIR.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError("mkmedia pxe", fmt.Sprintf("give exactly one output directory, got %d arguments", fs.NArg()),
			"nodeinit mkmedia pxe --bundle DIR --image-url URL TFTPDIR, with flags before or after TFTPDIR (\"--\" ends them)")
	}
	o.Dir = fs.Arg(0)
	o.Menu.ExtraArgs = extra
	res, err := media.WritePXE(o)
	if err != nil {
		return err
	}
	for _, f := range res.Files {
		fmt.Fprintf(stdout, "wrote %s/%s\n", o.Dir, f)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	return nil
}
