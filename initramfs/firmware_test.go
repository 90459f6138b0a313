package initramfs

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nodeinit/nodeinit/internal/testkernel"
)

// jr3Module is a module of Debian's cloud kernel that declares firmware in a
// subdirectory (MODULE_FIRMWARE("comedi/jr3pci.idm")).
const jr3Module = "kernel/drivers/comedi/drivers/jr3_pci.ko"

// TestDeclaredFirmware reads MODULE_FIRMWARE from a real module's .modinfo, and
// none from a module that declares none.
func TestDeclaredFirmware(t *testing.T) {
	mods := testkernel.ModulesDir(t, jr3Module)
	data, err := os.ReadFile(filepath.Join(mods, jr3Module))
	if err != nil {
		t.Fatal(err)
	}
	got, err := DeclaredFirmware(data)
	if err != nil || !slices.Equal(got, []string{"comedi/jr3pci.idm"}) {
		t.Errorf("jr3_pci declares %v (%v), want [comedi/jr3pci.idm]", got, err)
	}
	data, err = os.ReadFile(filepath.Join(mods, "kernel/fs/squashfs/squashfs.ko"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DeclaredFirmware(data); err != nil || len(got) != 0 {
		t.Errorf("squashfs declares %v (%v), want none", got, err)
	}
	if _, err := DeclaredFirmware([]byte("not an ELF file")); err == nil {
		t.Error("a file that is not ELF gave no error")
	}
}

// TestFirmwareGoesInWhereTheTreeHasIt builds with a module that declares firmware
// and a firmware tree holding it zstd-compressed: the archive carries it at
// lib/firmware/<name>.zst, the result lists it, and without the file the name is
// reported missing and nothing is added.
func TestFirmwareGoesInWhereTheTreeHasIt(t *testing.T) {
	mods := testkernel.ModulesDir(t, jr3Module)
	bin := nodeinitBinary(t)
	dir := t.TempDir()
	fw := filepath.Join(dir, "firmware")
	if err := os.MkdirAll(filepath.Join(fw, "comedi"), 0o755); err != nil {
		t.Fatal(err)
	}
	opts := Options{ModulesDir: mods, Modules: []string{"jr3_pci"}, FirmwareDir: fw, Binary: bin,
		Commands: []string{"ls"}, Output: filepath.Join(dir, "missing.img"), Compression: ZstdFast}
	res, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Firmware) != 0 || !slices.Equal(res.MissingFirmware, []string{"comedi/jr3pci.idm"}) {
		t.Errorf("without the file: firmware %v, missing %v; want none, [comedi/jr3pci.idm]", res.Firmware, res.MissingFirmware)
	}
	if err := os.WriteFile(filepath.Join(fw, "comedi", "jr3pci.idm.zst"), []byte("firmware bytes"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts.Output = filepath.Join(dir, "with.img")
	if res, err = Build(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Firmware, []string{"comedi/jr3pci.idm.zst"}) || len(res.MissingFirmware) != 0 {
		t.Errorf("with the file: firmware %v, missing %v", res.Firmware, res.MissingFirmware)
	}
	recs := readCPIO(t, opts.Output)
	r, ok := recs["lib/firmware/comedi/jr3pci.idm.zst"]
	if !ok {
		t.Fatal("the archive has no lib/firmware/comedi/jr3pci.idm.zst")
	}
	if got := content(t, r); got != "firmware bytes" {
		t.Errorf("firmware content %q", got)
	}
}
