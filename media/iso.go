package media

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/nodeinit/nodeinit/initramfs"
)

// DefaultLabel is the volume label of the media: the installer's default image source
// label:NODEINIT finds the bundle on a medium by it.
const DefaultLabel = "NODEINIT"

// EFILabel is the label of the FAT image inside the ISO that UEFI boots. It differs from
// the ISO's label so that, on a USB stick whose kernel parses the MBR, label:NODEINIT
// finds exactly one filesystem (the ISO on the whole disk, not the FAT partition).
const EFILabel = "NODEINIT-EF"

// Paths inside the ISO.
const (
	isoIsolinuxDir = "isolinux"
	isoBootCatalog = "isolinux/boot.cat"
	isoEFIImage    = "boot/efiboot.img"
	isoInstallerRD = "boot/installer.img"
)

// Files of a bundle directory the media need (besides everything else in it, copied too).
const (
	bundleKernel = "vmlinuz"
	bundleInitrd = "initrd.img"
	bundleLoader = "loader.efi"
)

// Syslinux locates the BIOS boot files of Debian's isolinux and syslinux-common packages.
type Syslinux struct {
	// IsolinuxBin is isolinux.bin (Debian: /usr/lib/ISOLINUX/isolinux.bin).
	IsolinuxBin string
	// HybridMBR is the isohybrid MBR, isohdpfx.bin (Debian: /usr/lib/ISOLINUX/isohdpfx.bin).
	HybridMBR string
	// ModulesDir holds ldlinux.c32, menu.c32, libutil.c32 and libcom32.c32
	// (Debian: /usr/lib/syslinux/modules/bios).
	ModulesDir string
}

// DebianSyslinux returns the paths of the Debian packages isolinux and syslinux-common
// unpacked under root ("/" for the installed packages).
func DebianSyslinux(root string) Syslinux {
	return Syslinux{
		IsolinuxBin: filepath.Join(root, "usr/lib/ISOLINUX/isolinux.bin"),
		HybridMBR:   filepath.Join(root, "usr/lib/ISOLINUX/isohdpfx.bin"),
		ModulesDir:  filepath.Join(root, "usr/lib/syslinux/modules/bios"),
	}
}

// syslinuxModules are the COM32 modules the isolinux menu needs.
var syslinuxModules = []string{"ldlinux.c32", "menu.c32", "libutil.c32", "libcom32.c32"}

// ISOOptions say what goes on an install ISO.
type ISOOptions struct {
	// Bundle is a signed bundle directory (manifest.json, its signature, rootfs.squashfs,
	// vmlinuz, initrd.img, loader.efi). It is copied to the root of the ISO, where the
	// installer finds it as label:NODEINIT; its vmlinuz and initrd.img boot the installer
	// and its loader.efi (systemd-boot) is the UEFI boot loader.
	Bundle string
	// Syslinux are the BIOS boot files.
	Syslinux Syslinux
	// Menu shapes the boot menus (isolinux and systemd-boot).
	Menu MenuOptions
	// Label is the volume label; empty means DefaultLabel.
	Label string
	// EmbedBundle appends the bundle to the installer initrd (at /bundle, the installer's
	// first image source), so the installer needs no driver for the medium: for kernels
	// that cannot see it (the Debian cloud kernel has no USB storage drivers).
	EmbedBundle bool
	// WorkDir holds the staging tree while building; empty means next to the output.
	WorkDir string
}

// ISOResult describes a built image.
type ISOResult struct {
	Path        string
	Size        int64
	Label       string
	Entries     []Entry
	EFIImageLBA uint32 // 2048-byte block of boot/efiboot.img (the MBR's EFI partition)
	BIOSBootLBA uint32 // 2048-byte block of isolinux.bin
}

func (o *ISOOptions) check() error {
	if o.Bundle == "" {
		return errors.New("no bundle given (hint: pass --bundle DIR, a directory made by `nodeinit image build` and signed)")
	}
	for _, name := range []string{"manifest.json", bundleKernel, bundleInitrd, bundleLoader} {
		if _, err := os.Stat(filepath.Join(o.Bundle, name)); err != nil {
			return fmt.Errorf("bundle %s: %w (hint: the bundle must hold %s; build it with `nodeinit image build`)", o.Bundle, err, name)
		}
	}
	if err := fitsISO9660(o.Bundle); err != nil {
		return err
	}
	sl := o.Syslinux
	files := []string{sl.IsolinuxBin, sl.HybridMBR}
	for _, m := range syslinuxModules {
		files = append(files, filepath.Join(sl.ModulesDir, m))
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("syslinux file: %w (hint: install the Debian packages isolinux and syslinux-common)", err)
		}
	}
	if o.Label == "" {
		o.Label = DefaultLabel
	}
	if len(o.Label) > 32 || strings.ContainsAny(o.Label, " /") {
		return fmt.Errorf("volume label %q: at most 32 characters, no spaces or slashes (hint: keep the default %s, which the installer looks for)", o.Label, DefaultLabel)
	}
	return o.Menu.Validate()
}

// maxISOFile is the largest file the ISO 9660 writer can hold: go-diskfs
// writes each file as one extent, whose size field is 32 bits.
const maxISOFile = 1<<32 - 1

// fitsISO9660 refuses a bundle with a file too large for one ISO 9660 extent,
// rather than write an ISO whose copy of it is cut short.
func fitsISO9660(bundle string) error {
	entries, err := os.ReadDir(bundle)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", bundle, err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("bundle %s: %w", bundle, err)
		}
		if fi.Mode().IsRegular() && fi.Size() > maxISOFile {
			return fmt.Errorf("bundle file %s is %.1f GiB; a file on the ISO holds at most 4 GiB (hint: put this image on a stick with `nodeinit mkmedia usb`, "+
				"or serve it over HTTP with `nodeinit mkmedia pxe`, or make the rootfs smaller)", filepath.Join(bundle, e.Name()), float64(fi.Size())/(1<<30))
		}
	}
	return nil
}

// BuildISO writes a hybrid install image to out: an ISO9660 filesystem (Rock Ridge names,
// volume label NODEINIT) holding the bundle, with El Torito boot entries for BIOS
// (isolinux with a menu) and UEFI (a FAT image holding systemd-boot, its menu entries, the
// kernel and the initrd), and an isohybrid MBR so the same bytes boot from a USB stick.
// On error nothing is left at out.
func BuildISO(ctx context.Context, out string, o ISOOptions) (res *ISOResult, err error) {
	if err := o.check(); err != nil {
		return nil, fmt.Errorf("build ISO %s: %w", out, err)
	}
	work := o.WorkDir
	if work == "" {
		work = filepath.Dir(out)
	}
	stage, err := os.MkdirTemp(work, ".mkmedia-")
	if err != nil {
		return nil, fmt.Errorf("build ISO %s: %w", out, err)
	}
	defer os.RemoveAll(stage)
	tree := filepath.Join(stage, "tree")
	defer func() {
		if err != nil {
			os.Remove(out)
			err = fmt.Errorf("build ISO %s: %w", out, err)
		}
	}()

	entries := Entries(o.Menu)
	initrd := bundleInitrd
	if o.EmbedBundle {
		initrd = isoInstallerRD
	}
	if err := stageTree(tree, o, entries, initrd); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	efiImg := filepath.Join(tree, isoEFIImage)
	if err := buildEFIImage(efiImg, o, entries, filepath.Join(tree, initrd)); err != nil {
		return nil, fmt.Errorf("EFI boot image: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := writeISO9660(out, tree, o.Label); err != nil {
		return nil, err
	}
	h, err := makeHybrid(out, o.Syslinux.HybridMBR)
	if err != nil {
		return nil, fmt.Errorf("isohybrid MBR: %w", err)
	}
	st, err := os.Stat(out)
	if err != nil {
		return nil, err
	}
	return &ISOResult{Path: out, Size: st.Size(), Label: o.Label, Entries: entries,
		EFIImageLBA: h.efiLBA, BIOSBootLBA: h.biosLBA}, nil
}

// stageTree lays out the ISO's files under tree. Large files are hard links when the
// staging directory shares a filesystem with their source, copies otherwise.
func stageTree(tree string, o ISOOptions, entries []Entry, initrd string) error {
	for _, d := range []string{isoIsolinuxDir, "boot"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o755); err != nil {
			return err
		}
	}
	bundleFiles, err := os.ReadDir(o.Bundle)
	if err != nil {
		return fmt.Errorf("read bundle %s: %w", o.Bundle, err)
	}
	for _, f := range bundleFiles {
		if !f.Type().IsRegular() {
			continue // a bundle is flat; anything else is not ours to copy
		}
		if err := linkOrCopy(filepath.Join(o.Bundle, f.Name()), filepath.Join(tree, f.Name())); err != nil {
			return err
		}
	}
	if err := linkOrCopy(o.Syslinux.IsolinuxBin, filepath.Join(tree, isoIsolinuxDir, "isolinux.bin")); err != nil {
		return err
	}
	for _, m := range syslinuxModules {
		if err := linkOrCopy(filepath.Join(o.Syslinux.ModulesDir, m), filepath.Join(tree, isoIsolinuxDir, m)); err != nil {
			return err
		}
	}
	cfg := IsolinuxConfig(entries, o.Menu, "/"+bundleKernel, "/"+initrd)
	if err := os.WriteFile(filepath.Join(tree, isoIsolinuxDir, "isolinux.cfg"), []byte(cfg), 0o644); err != nil {
		return err
	}
	if o.EmbedBundle {
		if err := writeInstallerInitrd(filepath.Join(tree, initrd), filepath.Join(o.Bundle, bundleInitrd), o.Bundle); err != nil {
			return fmt.Errorf("installer initrd with embedded bundle: %w", err)
		}
	}
	return nil
}

// writeInstallerInitrd writes initrd followed by a cpio archive of bundle at /bundle:
// the kernel unpacks concatenated archives, each starting on a 4-byte boundary.
func writeInstallerInitrd(out, initrd, bundle string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	in, err := os.Open(initrd)
	if err != nil {
		f.Close()
		return err
	}
	n, err := io.Copy(f, in)
	in.Close()
	if err == nil && n%4 != 0 {
		_, err = f.Write(make([]byte, 4-n%4))
	}
	if err == nil {
		err = initramfs.WriteDirArchive(f, bundle, "/bundle")
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// efiImageMin is the smallest FAT image made. go-diskfs' fat32 writer uses 512-byte
// clusters below 260 MiB; firmware decides FAT12/16/32 by cluster count alone, so a FAT32
// volume needs at least 65525 clusters (32 MiB) to be read as FAT32 by OVMF and others.
const efiImageMin = 40 << 20

// buildEFIImage writes the FAT image UEFI boots from: systemd-boot as the removable-media
// loader, its loader.conf and entries, and the kernel and initrd (systemd-boot loads
// files only from its own partition).
func buildEFIImage(path string, o ISOOptions, entries []Entry, initrd string) error {
	files := map[string]string{ // FAT path → host path
		"/EFI/BOOT/BOOTX64.EFI": filepath.Join(o.Bundle, bundleLoader),
		"/" + bundleKernel:      filepath.Join(o.Bundle, bundleKernel),
		"/" + bundleInitrd:      initrd,
	}
	var payload int64
	for _, src := range files {
		st, err := os.Stat(src)
		if err != nil {
			return err
		}
		payload += st.Size()
	}
	size := payload + payload/8 + 4<<20
	if size < efiImageMin {
		size = efiImageMin
	}
	size = (size + 1<<20 - 1) &^ (1<<20 - 1)
	os.Remove(path)
	b, err := file.CreateFromPath(path, size)
	if err != nil {
		return err
	}
	defer b.Close()
	fs, err := fat32.Create(b, size, 0, 512, EFILabel, true)
	if err != nil {
		return fmt.Errorf("create FAT32 (%d bytes): %w", size, err)
	}
	for _, d := range []string{"/EFI", "/EFI/BOOT", "/EFI/nodeinit", "/loader", "/loader/entries"} {
		if err := fs.Mkdir(d); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	for _, dst := range slices.Sorted(maps.Keys(files)) {
		if err := copyIntoFAT(fs, dst, files[dst]); err != nil {
			return err
		}
	}
	if err := writeFAT(fs, ExitEFIPath, bytes.NewReader(ExitEFI())); err != nil {
		return err
	}
	conf := SystemdBootConfig(entries, o.Menu, "/"+bundleKernel, "/"+bundleInitrd)
	for _, name := range slices.Sorted(maps.Keys(conf)) {
		if err := writeFAT(fs, "/loader/"+name, strings.NewReader(conf[name])); err != nil {
			return err
		}
	}
	if err := b.Close(); err != nil {
		return err
	}
	return fixFAT32(path)
}

func copyIntoFAT(fs *fat32.FileSystem, dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFAT(fs, dst, in)
}

// writeFAT writes r to the new file dst of the FAT image in 8 MiB writes: go-diskfs
// extends the cluster chain once per Write call, so small writes are slow. (The wrappers
// hide ReadFrom/WriteTo, which would otherwise bypass the buffer with 32 KiB writes; this
// halves the time of a build.)
func writeFAT(fs *fat32.FileSystem, dst string, r io.Reader) error {
	f, err := fs.OpenFile(dst, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s in FAT image: %w", dst, err)
	}
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, struct{ io.Reader }{r}, make([]byte, 8<<20)); err != nil {
		f.Close()
		return fmt.Errorf("write %s in FAT image: %w", dst, err)
	}
	return f.Close()
}

// writeISO9660 writes tree as an ISO9660 filesystem with Rock Ridge (the bundle's names
// are not 8.3) and two El Torito entries: isolinux.bin (BIOS, no emulation, boot info
// table) and the FAT image (UEFI).
func writeISO9660(out, tree, label string) error {
	f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fs, err := iso9660.Create(file.New(f, false), 0, 0, 2048, tree)
	if err != nil {
		return fmt.Errorf("create ISO9660: %w", err)
	}
	bios := &iso9660.ElToritoEntry{Platform: iso9660.BIOS, Emulation: iso9660.NoEmulation,
		BootFile: isoIsolinuxDir + "/isolinux.bin", BootTable: true}
	bios.SetLoadSize(4) // isolinux loads the rest of itself
	efi := &iso9660.ElToritoEntry{Platform: iso9660.EFI, Emulation: iso9660.NoEmulation, BootFile: isoEFIImage}
	err = fs.Finalize(iso9660.FinalizeOptions{
		RockRidge:        true,
		VolumeIdentifier: label,
		ElTorito: &iso9660.ElTorito{
			BootCatalog: isoBootCatalog,
			Entries:     []*iso9660.ElToritoEntry{bios, efi},
		},
	})
	if err != nil {
		return fmt.Errorf("write ISO9660: %w", err)
	}
	return f.Sync()
}

// linkOrCopy hard-links src to dst, or copies it when they are on different filesystems.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
