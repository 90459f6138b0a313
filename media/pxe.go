package media

import (
	"bufio"
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/netboot"
	"github.com/nodeinit/nodeinit/operr"
)

// Files WritePXE writes, relative to PXEOptions.Dir (the TFTP root).
const (
	PXEKernel    = "vmlinuz"
	PXEInitrd    = "initrd.img"
	PXELinuxCfg  = "pxelinux.cfg/default"
	PXEIPXE      = "boot.ipxe"
	PXEGrubNet   = "grubnetx64.efi" // GRUB's UEFI network boot image (PXEOptions.GrubNet)
	PXEGrubCfg   = "grub/grub.cfg"  // where that image reads its config (see DebianGrubNet)
	PXEDnsmasq   = "dnsmasq-nodeinit.conf"
	PXEBundleDir = "bundle"
	PXEReadme    = "README.txt"
)

// DebianPXELinux and DebianSyslinuxModules are where Debian's pxelinux and syslinux-common
// packages put the BIOS network boot loader and its modules; DebianGrubNet is where
// grub-efi-amd64-signed puts GRUB's UEFI network boot image.
//
// Debian builds that image with the prefix "/grub" and no device, so GRUB reads
// $prefix/grub.cfg, PXEGrubCfg, from the TFTP server it booted from: the path is absolute on
// the server, wherever the image itself lies. (Its built-in config would read
// $prefix/x86_64-efi/grub.cfg first; the tree has none.) Debian's installer variant,
// grubnetx64-installer.efi.signed, has the prefix /debian-installer/amd64/grub instead, and
// WritePXE refuses it.
const (
	DebianPXELinux        = "/usr/lib/PXELINUX/pxelinux.0"
	DebianSyslinuxModules = "/usr/lib/syslinux/modules/bios"
	DebianGrubNet         = "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed"
)

// pxeSyslinuxModules are the modules pxelinux.0 needs for our menu: ldlinux.c32 always, and
// menu.c32 with its libraries for the menu screen.
var pxeSyslinuxModules = []string{"ldlinux.c32", "menu.c32", "libutil.c32", "libcom32.c32"}

// PXEOptions say what WritePXE writes.
type PXEOptions struct {
	// Dir is the output directory: the TFTP root (and, with the bundle, an HTTP root).
	Dir string
	// Kernel and Initramfs are the kernel and the nodeinit initramfs; empty means the
	// bundle's vmlinuz and initrd.img.
	Kernel, Initramfs string
	// Bundle is a signed image bundle directory. It is copied to Dir/bundle for an HTTP
	// server, or, with EmbedBundle, into the initramfs at /bundle.
	Bundle string
	// EmbedBundle appends the bundle to the initramfs, for sites without an HTTP server.
	EmbedBundle bool
	// ImageURL is the nodeinit.image= every entry carries: where the HTTP server serves
	// the bundle. It may hold ${mac}, ${serial}, ${uuid}, ${hostname} and ${ip} (see
	// netboot.Expand), and list mirrors joined by commas (cmdline.SplitMirrors).
	ImageURL string
	// Menu shapes the entries (default, timeout, extra arguments, unattended disk).
	Menu MenuOptions
	// PXELinux is pxelinux.0 and SyslinuxModules the directory of ldlinux.c32 and menu.c32.
	// When PXELinux is empty, the Debian paths are used if present; without them, the
	// pxelinux.cfg is still written and the README says what to add.
	PXELinux, SyslinuxModules string
	// GrubNet is GRUB's UEFI network boot image, copied to grubnetx64.efi. When it is
	// empty, DebianGrubNet is used if present; without it, grub/grub.cfg is still
	// written and the README says what to add.
	GrubNet string
}

// PXEResult lists what WritePXE wrote, relative to Dir.
type PXEResult struct {
	Files []string
	// Notes are things the operator still has to do (a missing boot loader).
	Notes []string
}

// Validate checks the options before anything is written, naming the bad one.
func (o PXEOptions) Validate() error {
	if o.Dir == "" {
		return errors.New("pxe: no output directory (hint: nodeinit mkmedia pxe DIR)")
	}
	if err := o.Menu.Validate(); err != nil {
		return fmt.Errorf("pxe: %w", err)
	}
	if o.Bundle != "" {
		if _, err := os.Stat(filepath.Join(o.Bundle, "manifest.json")); err != nil {
			return fmt.Errorf("pxe: bundle %s has no manifest.json (hint: give the directory `nodeinit image build` wrote): %w", o.Bundle, err)
		}
	}
	if o.EmbedBundle && o.Bundle == "" {
		return errors.New("pxe: embedding the bundle needs the bundle (hint: add -bundle DIR)")
	}
	if o.Bundle != "" && !o.EmbedBundle && o.ImageURL == "" {
		return fmt.Errorf("pxe: the bundle is copied to %s/%s for an HTTP server, but no -image-url says where it is served "+
			"(hint: -image-url http://SERVER/PATH/%s/, or -embed-bundle for sites without HTTP)", o.Dir, PXEBundleDir, PXEBundleDir)
	}
	if o.Bundle == "" && o.ImageURL == "" {
		return errors.New("pxe: no image: give -bundle DIR (with -image-url URL or -embed-bundle), or -image-url URL of a served bundle")
	}
	if o.ImageURL != "" && !netboot.IsHTTP(o.ImageURL) {
		return fmt.Errorf("pxe: image URL %q is not http(s):// (hint: -image-url http://SERVER/PATH/bundle/)", o.ImageURL)
	}
	if o.ImageURL != "" {
		if _, err := netboot.Expand(o.ImageURL, netboot.Vars{MAC: "x", Serial: "x", UUID: "x", Hostname: "x", IP: "x"}); err != nil {
			return fmt.Errorf("pxe: image URL: %w", err)
		}
	}
	for _, f := range []struct{ flag, path string }{{"-kernel", o.kernel()}, {"-initramfs", o.initramfs()}} {
		if f.path == "" {
			return fmt.Errorf("pxe: no kernel or initramfs (hint: give %s, or -bundle DIR holding vmlinuz and initrd.img)", f.flag)
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("pxe: %s %s: %w", f.flag, f.path, err)
		}
	}
	if img, ok := o.grubNet(); ok {
		if err := checkGrubNet(img); err != nil {
			return err
		}
	}
	return nil
}

// grubNet is the GRUB network image to copy: GrubNet, else Debian's when installed.
func (o PXEOptions) grubNet() (string, bool) {
	if o.GrubNet != "" {
		return o.GrubNet, true
	}
	if _, err := os.Stat(DebianGrubNet); err == nil {
		return DebianGrubNet, true
	}
	return "", false
}

// checkGrubNet refuses a GRUB image that would not read the tree's grub.cfg.
func checkGrubNet(img string) error {
	what := "pxe: -grubnet " + img
	prefix, err := grubPrefix(img)
	if err != nil {
		return operr.Wrap(err, what, "give GRUB's network image, e.g. "+DebianGrubNet+" from grub-efi-amd64-signed", "")
	}
	// A device in front, (tftp,SERVER)/grub, names the server; the path is what the tree must match.
	dir := prefix
	if strings.HasPrefix(dir, "(") {
		if i := strings.Index(dir, ")"); i >= 0 {
			dir = dir[i+1:]
		}
	}
	if want := "/" + path.Dir(PXEGrubCfg); strings.TrimSuffix(dir, "/") != want {
		return operr.New(fmt.Sprintf("%s reads %s/grub.cfg", what, strings.TrimSuffix(prefix, "/")),
			"the tree has /"+PXEGrubCfg+", where Debian's grubnetx64.efi.signed looks",
			"use "+DebianGrubNet+", or an image built with grub-mkimage --prefix="+want, "")
	}
	return nil
}

// grubPrefix returns the prefix grub-mkimage built into a GRUB EFI image: the directory
// whose grub.cfg the image reads, "/grub" for Debian's grubnetx64.efi.signed. grub-mkimage
// puts its modules, memdisk, early config and prefix as typed objects in the image's "mods"
// PE section, after a module info header (magic "mimg", then the objects' offset and size).
func grubPrefix(img string) (string, error) {
	f, err := pe.Open(img)
	if err != nil {
		return "", fmt.Errorf("not an EFI image: %w", err)
	}
	defer f.Close()
	sec := f.Section("mods")
	if sec == nil {
		return "", errors.New("not a GRUB image: no mods section")
	}
	mods, err := sec.Data()
	if err != nil {
		return "", fmt.Errorf("read mods section: %w", err)
	}
	return grubModsPrefix(mods)
}

// grubObjPrefix is grub-mkimage's OBJ_TYPE_PREFIX.
const grubObjPrefix = 3

// grubModsPrefix reads the prefix object from a mods section (struct grub_module_info64,
// then grub_module_header objects whose size includes their 8-byte header).
func grubModsPrefix(mods []byte) (string, error) {
	if len(mods) < 24 || string(mods[:4]) != "mimg" {
		return "", errors.New("not a GRUB image: no module info in the mods section")
	}
	off, size := binary.LittleEndian.Uint64(mods[8:]), binary.LittleEndian.Uint64(mods[16:])
	if size > uint64(len(mods)) || off > size {
		return "", errors.New("GRUB module info out of bounds")
	}
	for p := off; p+8 <= size; {
		typ, n := binary.LittleEndian.Uint32(mods[p:]), uint64(binary.LittleEndian.Uint32(mods[p+4:]))
		if n < 8 || p+n > size {
			return "", fmt.Errorf("GRUB module object at %d has size %d", p, n)
		}
		if typ == grubObjPrefix {
			obj := mods[p+8 : p+n]
			if i := bytes.IndexByte(obj, 0); i >= 0 {
				obj = obj[:i]
			}
			return string(obj), nil
		}
		p += n
	}
	return "", errors.New("the GRUB image has no built-in prefix")
}

func (o PXEOptions) kernel() string {
	if o.Kernel == "" && o.Bundle != "" {
		return filepath.Join(o.Bundle, "vmlinuz")
	}
	return o.Kernel
}

func (o PXEOptions) initramfs() string {
	if o.Initramfs == "" && o.Bundle != "" {
		return filepath.Join(o.Bundle, "initrd.img")
	}
	return o.Initramfs
}

// PXEEntries are the menu entries of the network boot configs: the media entries with
// nodeinit.image= added when the image comes over HTTP.
func (o PXEOptions) PXEEntries() []Entry {
	m := o.Menu
	if o.ImageURL != "" {
		m.ExtraArgs = append([]string{"nodeinit.image=" + o.ImageURL}, m.ExtraArgs...)
	}
	return Entries(m)
}

// WritePXE writes the network boot tree: kernel, initramfs (with the bundle when embedded),
// pxelinux.cfg/default with IPAPPEND 2 (pxelinux appends BOOTIF=01-<mac>), boot.ipxe
// (BOOTIF from ${net0/mac}), grub/grub.cfg (BOOTIF from ${net_default_mac}), a dnsmasq
// snippet, the bundle for the HTTP server, and pxelinux.0 with its modules and
// grubnetx64.efi when found.
// Every option is checked before the first file is written.
func WritePXE(o PXEOptions) (*PXEResult, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	res := &PXEResult{}
	w := func(rel string, write func(io.Writer) error) error {
		if err := writeFileAtomic(filepath.Join(o.Dir, rel), write); err != nil {
			return fmt.Errorf("pxe: write %s: %w", rel, err)
		}
		res.Files = append(res.Files, rel)
		return nil
	}
	entries := o.PXEEntries()
	m := o.Menu
	if err := w(PXEKernel, copyFrom(o.kernel())); err != nil {
		return nil, err
	}
	if err := w(PXEInitrd, func(out io.Writer) error { return o.writeInitrd(out) }); err != nil {
		return nil, err
	}
	configs := []struct {
		rel  string
		text string
	}{
		{PXELinuxCfg, PXELinuxConfig(entries, m)},
		{PXEIPXE, IPXEScript(entries, m)},
		{PXEGrubCfg, GrubNetConfig(entries, m)},
		{PXEDnsmasq, DnsmasqSnippet(o.Dir)},
	}
	for _, c := range configs {
		if err := w(c.rel, func(out io.Writer) error { _, err := io.WriteString(out, c.text); return err }); err != nil {
			return nil, err
		}
	}
	if o.Bundle != "" && !o.EmbedBundle {
		names, err := copyDir(o.Bundle, filepath.Join(o.Dir, PXEBundleDir))
		if err != nil {
			return nil, fmt.Errorf("pxe: copy bundle: %w", err)
		}
		for _, n := range names {
			res.Files = append(res.Files, filepath.Join(PXEBundleDir, n))
		}
	}
	if err := o.copyPXELinux(res, w); err != nil {
		return nil, err
	}
	if err := o.copyGrubNet(res, w); err != nil {
		return nil, err
	}
	if err := w(PXEReadme, func(out io.Writer) error { _, err := io.WriteString(out, o.readme(res)); return err }); err != nil {
		return nil, err
	}
	return res, nil
}

func (o PXEOptions) writeInitrd(out io.Writer) error {
	f, err := os.Open(o.initramfs())
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(out, f)
	if err != nil || !o.EmbedBundle {
		return err
	}
	// The kernel finds the next concatenated archive at a 4-byte boundary.
	if pad := (4 - n%4) % 4; pad > 0 {
		if _, err := out.Write(make([]byte, pad)); err != nil {
			return err
		}
	}
	return initramfs.WriteDirArchive(out, o.Bundle, "/bundle")
}

// copyPXELinux copies pxelinux.0 and its modules when they can be found.
func (o PXEOptions) copyPXELinux(res *PXEResult, w func(string, func(io.Writer) error) error) error {
	pxe, mods := o.PXELinux, o.SyslinuxModules
	if pxe == "" {
		pxe = DebianPXELinux
		if _, err := os.Stat(pxe); err != nil {
			res.Notes = append(res.Notes, "pxelinux.0 not copied: install Debian's pxelinux and syslinux-common, "+
				"or give -pxelinux and -syslinux-modules (BIOS clients without iPXE need it)")
			return nil
		}
	}
	if mods == "" {
		mods = DebianSyslinuxModules
	}
	if err := w("pxelinux.0", copyFrom(pxe)); err != nil {
		return err
	}
	for _, m := range pxeSyslinuxModules {
		if err := w(m, copyFrom(filepath.Join(mods, m))); err != nil {
			return fmt.Errorf("%w (hint: -syslinux-modules names the directory of ldlinux.c32, from syslinux-common)", err)
		}
	}
	return nil
}

// copyGrubNet copies GRUB's network boot image when it can be found.
func (o PXEOptions) copyGrubNet(res *PXEResult, w func(string, func(io.Writer) error) error) error {
	img, ok := o.grubNet()
	if !ok {
		res.Notes = append(res.Notes, PXEGrubNet+" not copied: install Debian's grub-efi-amd64-signed, "+
			"or give -grubnet (UEFI clients without iPXE need it)")
		return nil
	}
	return w(PXEGrubNet, copyFrom(img))
}

// bootLine is a kernel command line of an entry as a boot loader writes it.
func bootLine(e Entry) string { return e.Cmdline(nil) }

// PXELinuxConfig is pxelinux.cfg/default: a menu.c32 menu whose entries load the kernel
// and initramfs over TFTP, with IPAPPEND 2 so pxelinux adds BOOTIF=01-<MAC of the boot NIC>.
func PXELinuxConfig(entries []Entry, m MenuOptions) string {
	head := "# nodeinit network boot menu for pxelinux (written by nodeinit mkmedia pxe).\n" +
		"UI menu.c32\nPROMPT 0\nMENU TITLE nodeinit\n"
	return syslinuxMenu(head, entries, m, "0", func(e Entry) string {
		return fmt.Sprintf("  KERNEL %s\n  INITRD %s\n  APPEND %s\n  IPAPPEND 2\n", PXEKernel, PXEInitrd, bootLine(e))
	})
}

// IPXEBootIf is the BOOTIF argument of the iPXE entries: the MAC of the NIC iPXE booted
// from, in pxelinux's 01-aa-bb-… form.
const IPXEBootIf = "BOOTIF=01-${net0/mac:hexhyp}"

// IPXEScript is boot.ipxe: a menu whose entries load the kernel and initramfs relative to
// the script's own URL (TFTP or HTTP). iPXE expands ${…} itself, so nodeinit's URL
// templates are written in their @NAME@ form, which nodeinit expands the same way.
func IPXEScript(entries []Entry, m MenuOptions) string {
	var b strings.Builder
	b.WriteString("#!ipxe\n# nodeinit network boot menu for iPXE (written by nodeinit mkmedia pxe).\n")
	b.WriteString("isset ${ip} || dhcp\n")
	def := DefaultEntry(entries).ID
	b.WriteString("menu nodeinit\n")
	for _, e := range entries {
		fmt.Fprintf(&b, "item %s %s\n", e.ID, e.Title)
	}
	fmt.Fprintf(&b, "choose --default %s --timeout %d target || set target %s\ngoto ${target}\n", def, m.TimeoutSeconds()*1000, def)
	for _, e := range entries {
		fmt.Fprintf(&b, "\n:%s\n", e.ID)
		if e.Local {
			b.WriteString("exit\n")
			continue
		}
		// initrd= lets the EFI stub of kernels find the initramfs under UEFI iPXE builds
		// without LoadFile2; nodeinit drops it from the installed entry.
		fmt.Fprintf(&b, "kernel %s initrd=%s %s %s\ninitrd %s\nboot\n", PXEKernel, PXEInitrd,
			netboot.ToAtForm(bootLine(e)), IPXEBootIf, PXEInitrd)
	}
	return b.String()
}

// GrubBootIf is the BOOTIF argument of the GRUB entries; GRUB's net_default_mac is
// aa:bb:…, which BOOTIF accepts after the 01- type.
const GrubBootIf = "BOOTIF=01-${net_default_mac}"

// GrubNetConfig is grub/grub.cfg for GRUB's network boot image (grubnetx64.efi), with the
// kernel and initramfs at the TFTP root. Every argument is single-quoted so GRUB expands
// nothing in it (password hashes hold '$'); only BOOTIF is expanded.
func GrubNetConfig(entries []Entry, m MenuOptions) string {
	var b strings.Builder
	b.WriteString("# nodeinit network boot menu for GRUB (written by nodeinit mkmedia pxe).\n")
	fmt.Fprintf(&b, "set default=%s\nset timeout=%d\n", DefaultEntry(entries).ID, m.TimeoutSeconds())
	for _, e := range entries {
		fmt.Fprintf(&b, "\nmenuentry %s --id %s {\n", grubQuote(e.Title), e.ID)
		if e.Local {
			b.WriteString("\texit\n}\n")
			continue
		}
		args := strings.Fields(netboot.ToAtForm(bootLine(e)))
		for i, a := range args {
			args[i] = grubQuote(a)
		}
		fmt.Fprintf(&b, "\techo 'Loading nodeinit...'\n\tlinux /%s %s %s\n\tinitrd /%s\n}\n", PXEKernel, strings.Join(args, " "), GrubBootIf, PXEInitrd)
	}
	return b.String()
}

// grubQuote single-quotes s for grub.cfg; a single quote inside is closed, escaped and reopened.
func grubQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// DnsmasqSnippet is a dnsmasq configuration that serves dir over TFTP and hands each
// client the right first stage: iPXE (which sends user class "iPXE") gets boot.ipxe,
// BIOS PXE ROMs get pxelinux.0, UEFI ones GRUB's network image.
func DnsmasqSnippet(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	return `# nodeinit network boot for dnsmasq (written by nodeinit mkmedia pxe).
# Copy to /etc/dnsmasq.d/nodeinit.conf. Add a dhcp-range for your network, e.g.
#   dhcp-range=192.168.10.100,192.168.10.200,12h
# or, next to another DHCP server, answer only PXE requests:
#   dhcp-range=192.168.10.0,proxy
enable-tftp
tftp-root=` + abs + `

# iPXE announces itself with user class "iPXE": give it the nodeinit menu.
dhcp-userclass=set:ipxe,iPXE
dhcp-boot=tag:ipxe,` + PXEIPXE + `

# Firmware PXE ROMs: BIOS gets pxelinux, UEFI x86-64 gets GRUB's network image
# (grubnetx64.efi: Debian's grubnetx64.efi.signed from grub-efi-amd64-signed; it
# reads ` + PXEGrubCfg + ` from this server).
dhcp-match=set:efi64,option:client-arch,7
dhcp-match=set:efi64,option:client-arch,9
dhcp-boot=tag:!ipxe,tag:!efi64,pxelinux.0
dhcp-boot=tag:!ipxe,tag:efi64,` + PXEGrubNet + `
pxe-service=tag:!ipxe,x86PC,"nodeinit network boot",pxelinux
pxe-service=tag:!ipxe,X86-64_EFI,"nodeinit network boot",` + PXEGrubNet + `
`
}

func (o PXEOptions) readme(res *PXEResult) string {
	var b strings.Builder
	b.WriteString("nodeinit network boot tree (nodeinit mkmedia pxe)\n\n")
	b.WriteString("Serve this directory over TFTP (" + PXEDnsmasq + " is a ready dnsmasq snippet).\n")
	b.WriteString("  iPXE:     chain " + PXEIPXE + " (BOOTIF comes from ${net0/mac})\n")
	b.WriteString("  pxelinux: " + PXELinuxCfg + " (IPAPPEND 2 adds BOOTIF)\n")
	b.WriteString("  GRUB:     " + PXEGrubNet + " reads " + PXEGrubCfg + " (BOOTIF from ${net_default_mac})\n")
	b.WriteString("Per-machine values in nodeinit.image, nodeinit.status_url and local_boot_trigger:\n")
	b.WriteString("  ${" + strings.Join(netboot.TemplateNames, "}, ${") + "}\n")
	b.WriteString("  (the loader configs carry them as @MAC@, @IP@, ...: iPXE and GRUB would expand ${...} themselves;\n")
	b.WriteString("  nodeinit expands them once the boot NIC is up)\n")
	switch {
	case o.EmbedBundle:
		b.WriteString("The image bundle is inside " + PXEInitrd + " (at /bundle); no HTTP server is needed.\n")
	case o.Bundle != "":
		fmt.Fprintf(&b, "Serve %s/ over HTTP so that %s reaches it.\n", PXEBundleDir, o.ImageURL)
	default:
		fmt.Fprintf(&b, "The image is fetched from %s.\n", o.ImageURL)
	}
	for _, n := range res.Notes {
		b.WriteString("NOTE: " + n + "\n")
	}
	return b.String()
}

func copyFrom(path string) func(io.Writer) error {
	return func(w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}
}

// copyDir copies the regular files of src (one level, as a bundle is) into dst.
func copyDir(src, dst string) ([]string, error) {
	ents, err := os.ReadDir(src)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := writeFileAtomic(filepath.Join(dst, e.Name()), copyFrom(filepath.Join(src, e.Name()))); err != nil {
			return nil, err
		}
		names = append(names, e.Name())
	}
	return names, nil
}

// writeFileAtomic writes path through a temporary file renamed into place, so a server
// never hands out half a file.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	bw := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(bw); err != nil {
		tmp.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
