package boot

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
)

// Paths on the ESP, relative to its root.
const (
	FallbackLoaderPath = "EFI/BOOT/BOOTX64.EFI"
	SystemdLoaderPath  = "EFI/systemd/systemd-bootx64.efi"
	LoaderConfPath     = "loader/loader.conf"
	EntriesDir         = "loader/entries"
	SlotDirPrefix      = "node" // per-slot files live in node/<slot>/

	KernelName   = "vmlinuz"
	InitrdName   = "initrd.img"
	ManifestName = "manifest.json"
)

// LoaderConfig is what goes into loader/loader.conf.
type LoaderConfig struct {
	Timeout     int    // seconds the menu shows; 0 hides it (hold a key to see it)
	ConsoleMode string // systemd-boot console-mode: keep, auto, max, 0, 1, …
}

// DefaultLoaderConfig shows the menu for 1 second, the shortest countdown that
// still shows it: any key stops the countdown, so an operator at the console can
// pick the other slot by hand, and no node waits longer than that on every boot.
var DefaultLoaderConfig = LoaderConfig{Timeout: 1, ConsoleMode: "keep"}

// InstallLoader copies systemd-boot (loaderEFI, from the image bundle) to the
// removable-media fallback path EFI/BOOT/BOOTX64.EFI and to
// EFI/systemd/systemd-bootx64.efi, and writes loader/loader.conf with
// DefaultLoaderConfig. It is idempotent.
func InstallLoader(esp FS, loaderEFI string) error {
	return InstallLoaderWith(esp, loaderEFI, DefaultLoaderConfig)
}

// InstallLoaderWith is InstallLoader with an explicit loader.conf.
func InstallLoaderWith(esp FS, loaderEFI string, c LoaderConfig) error {
	if err := checkPE(loaderEFI); err != nil {
		return fmt.Errorf("install loader: %w", err)
	}
	for _, rel := range []string{FallbackLoaderPath, SystemdLoaderPath} {
		if err := copyInto(esp, loaderEFI, rel); err != nil {
			return fmt.Errorf("install loader %s: %w", rel, err)
		}
	}
	if err := esp.MkdirAll(EntriesDir); err != nil {
		return fmt.Errorf("install loader: %w", err)
	}
	data := []byte(c.render())
	if old, err := esp.ReadFile(LoaderConfPath); err == nil && bytes.Equal(old, data) {
		return nil
	}
	if err := esp.WriteFile(LoaderConfPath, data); err != nil {
		return fmt.Errorf("install loader: write %s: %w", LoaderConfPath, err)
	}
	return nil
}

func (c LoaderConfig) render() string {
	mode := c.ConsoleMode
	if mode == "" {
		mode = "keep"
	}
	return fmt.Sprintf("# Written by nodeinit. Entries sort newest first; one that runs out of tries falls behind.\n"+
		"timeout %d\ndefault node-*\nconsole-mode %s\neditor no\nauto-entries no\nauto-firmware no\n", c.Timeout, mode)
}

// checkPE refuses anything that is not a PE/COFF image ("MZ"), so a wrong
// bundle path fails before the ESP is touched.
func checkPE(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("boot loader %s: %w (hint: the image bundle must carry systemd-bootx64.efi)", path, err)
	}
	defer f.Close()
	magic := make([]byte, 2)
	if _, err := io.ReadFull(f, magic); err != nil || !bytes.Equal(magic, []byte("MZ")) {
		return fmt.Errorf("boot loader %s is not an EFI executable (no MZ header); use systemd-bootx64.efi from Debian's systemd-boot-efi", path)
	}
	return nil
}

// SlotDir is the ESP directory holding a slot's kernel, initrd and manifest.
func SlotDir(slot string) string {
	return path.Join(SlotDirPrefix, slot)
}

// InstallSlot copies a slot's kernel, initrd and manifest into node/<slot>/
// on the ESP, each through a temporary file, fsync and rename.
func InstallSlot(esp FS, slot, kernel, initrd, manifest string) error {
	if err := ValidSlot(slot); err != nil {
		return fmt.Errorf("install slot: %w", err)
	}
	files := []struct{ src, name string }{{kernel, KernelName}, {initrd, InitrdName}, {manifest, ManifestName}}
	for _, f := range files {
		st, err := os.Stat(f.src)
		if err != nil {
			return fmt.Errorf("install slot %s: %s: %w", slot, f.name, err)
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("install slot %s: %s source %s is not a regular file", slot, f.name, f.src)
		}
	}
	dir := SlotDir(slot)
	for _, f := range files {
		if err := copyInto(esp, f.src, path.Join(dir, f.name)); err != nil {
			return fmt.Errorf("install slot %s: copy %s: %w", slot, f.name, err)
		}
	}
	return nil
}

// ValidSlot accepts the slot names "a" and "b".
func ValidSlot(slot string) error {
	if slot != "a" && slot != "b" {
		return fmt.Errorf("slot %q is not a or b (hint: nodeinit.slot=a or nodeinit.slot=b)", slot)
	}
	return nil
}
