// Package vm boots QEMU virtual machines for nodeinit's end-to-end tests: Debian's cloud
// kernel straight from -kernel/-initrd, or UEFI through OVMF with writable variables, with
// NVMe and virtio disks (512- or 4096-byte sectors) in sparse files, under software
// emulation (TCG; KVM only with NODEINIT_KVM=1; -cpu max without ERMS and FSRM, or
// $NODEINIT_QEMU_CPU). Tests wait for regular expressions on the
// serial console; a timeout fails with the last console lines. It also fetches the Debian
// kernel, firmware and boot loaders into a cache with apt-get download (Fetch).
package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// KernelMetaPackage is the Debian metapackage whose dependency names the cloud kernel we boot.
const KernelMetaPackage = "linux-image-cloud-amd64"

// GenericKernelMetaPackage is Debian's distribution kernel: unlike the cloud kernel it
// has USB (xhci, usb-storage, uas), AHCI, the SCSI HBAs and the NICs of real hosts as
// modules. It is unpacked into a root of its own (Artifacts.Generic).
const GenericKernelMetaPackage = "linux-image-amd64"

// FirmwarePackages are the Debian packages fetched next to the kernel. grub-efi-amd64-signed
// has GRUB's UEFI network boot image (grubnetx64.efi.signed); firmware-linux-free is the
// device firmware in Debian's main archive (isci's, for one), in lib/firmware.
var FirmwarePackages = []string{"ovmf", "systemd-boot-efi", "isolinux", "syslinux-common", "ipxe-qemu", "pxelinux",
	"grub-efi-amd64-signed", "firmware-linux-free"}

// Artifacts are the paths of the Debian files the tests boot with, inside a cache directory.
type Artifacts struct {
	CacheDir      string // the cache root
	KernelVersion string // e.g. 6.1.0-56-cloud-amd64
	Vmlinuz       string // boot/vmlinuz-<version>
	ModulesDir    string // lib/modules/<version>, with modules.dep
	OVMFCode      string // OVMF_CODE.fd (read-only firmware; see ovmfCode)
	OVMFVars      string // OVMF_VARS.fd (template; copy before use)
	BenchOVMFCode string // OVMF_CODE_4M.fd, the build Debian recommends, which the benches boot (see ovmfCode)
	BenchOVMFVars string // OVMF_VARS_4M.fd (its template)
	SystemdBoot   string // systemd-bootx64.efi
	GrubNetEFI    string // grubnetx64.efi.signed, GRUB's UEFI network boot image
	FirmwareDir   string // lib/firmware, from firmware-linux-free
	// Generic is Debian's distribution kernel (GenericKernelMetaPackage), in
	// <cache>/generic; its fields are empty when it was never fetched.
	Generic Kernel
}

// Kernel is one unpacked Debian kernel package.
type Kernel struct {
	Version    string // e.g. 6.1.0-57-amd64
	Vmlinuz    string // boot/vmlinuz-<version>
	ModulesDir string // lib/modules/<version>, with modules.dep
}

// DefaultCacheDir returns $NODEINIT_CACHE, or /var/cache/nodeinit.
func DefaultCacheDir() string {
	if d := os.Getenv("NODEINIT_CACHE"); d != "" {
		return d
	}
	return "/var/cache/nodeinit"
}

// Fetch makes sure the Debian cloud kernel (with its modules), OVMF, systemd-boot, isolinux,
// syslinux and iPXE are downloaded with `apt-get download` and unpacked with `dpkg-deb -x`
// under cacheDir, and returns their paths. It downloads only packages not already cached,
// so a second call costs a few apt-cache lookups. The caller runs `apt-get update` first.
func Fetch(ctx context.Context, cacheDir string) (Artifacts, error) {
	debs := filepath.Join(cacheDir, "debs")
	root := filepath.Join(cacheDir, "root")
	for _, d := range []string{debs, root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return Artifacts{}, fmt.Errorf("fetch debian artifacts: %w", err)
		}
	}
	kernelPkg, err := resolveKernelPackage(ctx, KernelMetaPackage)
	if err != nil {
		return Artifacts{}, err
	}
	for _, pkg := range append([]string{kernelPkg}, FirmwarePackages...) {
		if err := fetchInto(ctx, debs, root, pkg); err != nil {
			return Artifacts{}, err
		}
	}
	version := strings.TrimPrefix(kernelPkg, "linux-image-")
	if err := ensureModulesDep(ctx, root, version); err != nil {
		return Artifacts{}, err
	}
	genericPkg, err := resolveKernelPackage(ctx, GenericKernelMetaPackage)
	if err != nil {
		return Artifacts{}, err
	}
	genericRoot := filepath.Join(cacheDir, "generic")
	if err := fetchInto(ctx, debs, genericRoot, genericPkg); err != nil {
		return Artifacts{}, err
	}
	if err := ensureModulesDep(ctx, genericRoot, strings.TrimPrefix(genericPkg, "linux-image-")); err != nil {
		return Artifacts{}, err
	}
	a := artifactsIn(cacheDir, version)
	return a, a.check()
}

// fetchInto downloads pkg into debs (when not cached) and unpacks it under root.
func fetchInto(ctx context.Context, debs, root, pkg string) error {
	deb, err := download(ctx, debs, pkg)
	if err != nil {
		return err
	}
	return extract(ctx, deb, root)
}

// Cached returns the artifacts already in cacheDir without touching the network or apt,
// or an error saying to run the fetch when something is missing.
func Cached(cacheDir string) (Artifacts, error) {
	mods, _ := filepath.Glob(filepath.Join(cacheDir, "root", "lib", "modules", "*", "modules.dep"))
	if len(mods) == 0 {
		return Artifacts{}, fmt.Errorf("no kernel in cache %s: run `make fetch` (go run ./qemu-tests/vm/cmd/fetch)", cacheDir)
	}
	// Several kernels may have been cached over time; take the last by name.
	version := filepath.Base(filepath.Dir(mods[len(mods)-1]))
	a := artifactsIn(cacheDir, version)
	return a, a.check()
}

// ovmfCode and ovmfVars are Debian's 2 MiB OVMF build, whose PEI phase is 64-bit
// code like the rest. The 4 MiB build (OVMF_CODE_4M.fd) has the same drivers but
// a 32-bit PEI phase, and under TCG it reached the boot manager about 1.1 s later
// on every UEFI boot (2026-12-04, an installed node: 4.8-5.1 s against 3.6-4.1 s
// from QEMU's start, the kernel's first line 6.9-7.2 s against 5.6-6.2 s). The
// tests' variables are boot entries, which fit the 2 MiB build's store. The
// benches boot the 4 MiB build all the same: their figures start at the
// kernel, and in 8 interleaved boots of each the kernel reached /init later
// under the 2 MiB build in 7 (by 0.2 s on average, within the noise of one
// boot), so the figures stay those of the firmware a node gets.
const (
	ovmfCode = "OVMF_CODE.fd"
	ovmfVars = "OVMF_VARS.fd"
)

func artifactsIn(cacheDir, version string) Artifacts {
	root := filepath.Join(cacheDir, "root")
	return Artifacts{
		CacheDir:      cacheDir,
		KernelVersion: version,
		Vmlinuz:       filepath.Join(root, "boot", "vmlinuz-"+version),
		ModulesDir:    filepath.Join(root, "lib", "modules", version),
		OVMFCode:      filepath.Join(root, "usr", "share", "OVMF", ovmfCode),
		OVMFVars:      filepath.Join(root, "usr", "share", "OVMF", ovmfVars),
		BenchOVMFCode: filepath.Join(root, "usr", "share", "OVMF", "OVMF_CODE_4M.fd"),
		BenchOVMFVars: filepath.Join(root, "usr", "share", "OVMF", "OVMF_VARS_4M.fd"),
		SystemdBoot:   filepath.Join(root, "usr", "lib", "systemd", "boot", "efi", "systemd-bootx64.efi"),
		GrubNetEFI:    filepath.Join(root, "usr", "lib", "grub", "x86_64-efi-signed", "grubnetx64.efi.signed"),
		FirmwareDir:   filepath.Join(root, "lib", "firmware"),
		Generic:       kernelIn(filepath.Join(cacheDir, "generic")),
	}
}

// kernelIn finds the kernel unpacked under root (the last by name when there are
// several), or the zero Kernel.
func kernelIn(root string) Kernel {
	mods, _ := filepath.Glob(filepath.Join(root, "lib", "modules", "*", "modules.dep"))
	if len(mods) == 0 {
		return Kernel{}
	}
	version := filepath.Base(filepath.Dir(mods[len(mods)-1]))
	return Kernel{Version: version, Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+version),
		ModulesDir: filepath.Join(root, "lib", "modules", version)}
}

func (a Artifacts) check() error {
	if a.Generic.Version == "" {
		return fmt.Errorf("debian artifacts in %s incomplete: no %s unpacked in %s (run `make fetch` again)",
			a.CacheDir, GenericKernelMetaPackage, filepath.Join(a.CacheDir, "generic"))
	}
	for _, p := range []string{a.Vmlinuz, filepath.Join(a.ModulesDir, "modules.dep"), a.OVMFCode, a.OVMFVars, a.BenchOVMFCode,
		a.BenchOVMFVars, a.SystemdBoot, a.GrubNetEFI, a.FirmwareDir, a.Generic.Vmlinuz} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("debian artifacts in %s incomplete: %w (run `make fetch` again)", a.CacheDir, err)
		}
	}
	return nil
}

var dependsRE = regexp.MustCompile(`(?m)^\s*Depends:\s*(linux-image-\S+)`)

// resolveKernelPackage asks apt which real kernel package the metapackage meta depends on.
func resolveKernelPackage(ctx context.Context, meta string) (string, error) {
	out, err := exec.CommandContext(ctx, "apt-cache", "depends", meta).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w (run `apt-get update` first)", meta, err)
	}
	m := dependsRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("apt-cache depends %s: no linux-image dependency in %q", meta, out)
	}
	return string(m[1]), nil
}

// download returns the cached .deb of pkg, running `apt-get download` in dir when there is none.
func download(ctx context.Context, dir, pkg string) (string, error) {
	if deb, ok := cachedDeb(dir, pkg); ok {
		return deb, nil
	}
	cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apt-get download %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
	}
	deb, ok := cachedDeb(dir, pkg)
	if !ok {
		return "", fmt.Errorf("apt-get download %s: no %s_*.deb appeared in %s", pkg, pkg, dir)
	}
	return deb, nil
}

func cachedDeb(dir, pkg string) (string, bool) {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	if len(m) == 0 {
		return "", false
	}
	return m[len(m)-1], true
}

// extract unpacks deb into root once; a stamp file records that it was done.
func extract(ctx context.Context, deb, root string) error {
	stamp := filepath.Join(root, ".extracted", filepath.Base(deb))
	if _, err := os.Stat(stamp); err == nil {
		return nil
	}
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %w: %s", deb, err, out)
	}
	if err := os.MkdirAll(filepath.Dir(stamp), 0o755); err != nil {
		return fmt.Errorf("extract %s: %w", deb, err)
	}
	return os.WriteFile(stamp, nil, 0o644)
}

// ensureModulesDep runs depmod on the unpacked modules: the .deb ships modules.order and
// modules.builtin, but modules.dep and modules.alias are made by its postinst script.
func ensureModulesDep(ctx context.Context, root, version string) error {
	dep := filepath.Join(root, "lib", "modules", version, "modules.dep")
	if fi, err := os.Stat(dep); err == nil && fi.Size() > 0 {
		return nil
	}
	out, err := exec.CommandContext(ctx, "depmod", "-b", root, version).CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("depmod not found: install the Debian package kmod")
		}
		return fmt.Errorf("depmod -b %s %s: %w: %s", root, version, err, out)
	}
	return nil
}

// Describe writes the artifact paths, one per line, for the fetch command's output.
func (a Artifacts) Describe() string {
	return fmt.Sprintf("kernel    %s\nvmlinuz   %s\nmodules   %s\ngeneric   %s\nvmlinuz   %s\nmodules   %s\n"+
		"ovmf-code %s\novmf-vars %s\nsd-boot   %s\ngrubnet   %s\n",
		a.KernelVersion, a.Vmlinuz, a.ModulesDir, a.Generic.Version, a.Generic.Vmlinuz, a.Generic.ModulesDir,
		a.OVMFCode, a.OVMFVars, a.SystemdBoot, a.GrubNetEFI)
}
