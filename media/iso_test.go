package media

import (
	"bytes"
	"context"
	"debug/pe"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// hostSyslinux returns the installed Debian isolinux/syslinux-common files, or skips.
func hostSyslinux(t *testing.T) Syslinux {
	t.Helper()
	sl := DebianSyslinux("/")
	for _, p := range []string{sl.IsolinuxBin, sl.HybridMBR, filepath.Join(sl.ModulesDir, "menu.c32")} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs Debian packages isolinux and syslinux-common: %v", err)
		}
	}
	return sl
}

func needTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// isoFakeBundle writes a bundle directory whose files stand in for the real ones: the ISO
// layout does not depend on their content.
func isoFakeBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"manifest.json":         []byte(`{"format":1,"name":"demo-node","version":"1.0"}`),
		"manifest.json.minisig": []byte("untrusted comment: test\n"),
		"rootfs.squashfs":       bytes.Repeat([]byte("R"), 3<<20+17),
		"vmlinuz":               bytes.Repeat([]byte("K"), 5<<20+3),
		"initrd.img":            bytes.Repeat([]byte("I"), 4<<20+1),
		"loader.efi":            ExitEFI(),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBuildISO(t *testing.T) {
	sl := hostSyslinux(t)
	needTool(t, "xorriso", "mtype", "fsck.vfat", "blkid")
	bundle := isoFakeBundle(t)
	out := filepath.Join(t.TempDir(), "node.iso")
	menu := MenuOptions{Timeout: 2 * time.Second, Unattended: "serial:XYZ", ExtraArgs: []string{"console=ttyS0,115200n8"}}
	res, err := BuildISO(context.Background(), out, ISOOptions{Bundle: bundle, Syslinux: sl, Menu: menu})
	if err != nil {
		t.Fatal(err)
	}
	if res.Size%hybridAlignment != 0 {
		t.Errorf("size %d not padded to 1 MiB", res.Size)
	}

	// blkid: an ISO9660 filesystem labelled NODEINIT, with a DOS partition table.
	blk, err := exec.Command("blkid", "-p", "-o", "export", out).CombinedOutput()
	if err != nil {
		t.Fatalf("blkid: %v\n%s", err, blk)
	}
	for _, want := range []string{"TYPE=iso9660", "LABEL=NODEINIT", "PTTYPE=dos"} {
		if !strings.Contains(string(blk), want+"\n") {
			t.Errorf("blkid lacks %s:\n%s", want, blk)
		}
	}

	// xorriso: El Torito entries for BIOS (no emulation, boot info table) and UEFI,
	// and Rock Ridge names for the bundle.
	et, err := exec.Command("xorriso", "-indev", out, "-report_el_torito", "plain").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso: %v\n%s", err, et)
	}
	if !regexpMatch(`El Torito boot img :\s+1\s+BIOS\s+y\s+none`, et) || !regexpMatch(`El Torito boot img :\s+2\s+UEFI\s+y\s+none`, et) {
		t.Errorf("El Torito entries:\n%s", et)
	}
	if !regexpMatch(`El Torito img path :\s+1\s+/isolinux/isolinux.bin`, et) || !regexpMatch(`El Torito img path :\s+2\s+/boot/efiboot.img`, et) {
		t.Errorf("El Torito paths:\n%s", et)
	}
	ls, err := exec.Command("xorriso", "-indev", out, "-find", "/", "-type", "f").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso -find: %v\n%s", err, ls)
	}
	for _, f := range []string{"manifest.json", "manifest.json.minisig", "rootfs.squashfs", "vmlinuz", "initrd.img", "loader.efi",
		"isolinux/isolinux.bin", "isolinux/ldlinux.c32", "isolinux/menu.c32", "isolinux/isolinux.cfg", "boot/efiboot.img"} {
		if !strings.Contains(string(ls), "'/"+f+"'") {
			t.Errorf("ISO lacks /%s:\n%s", f, ls)
		}
	}

	// isolinux.cfg, read back with go-diskfs.
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	isofs, err := iso9660.Read(file.New(f, true), res.Size, 0, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := isofs.ReadFile("isolinux/isolinux.cfg")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "TIMEOUT 20\n") || !strings.Contains(string(cfg), "KERNEL /vmlinuz\n  INITRD /initrd.img\n") {
		t.Errorf("isolinux.cfg:\n%s", cfg)
	}

	// The FAT image: fsck.vfat finds no error; mtools reads systemd-boot and the entries.
	efiOff := int64(res.EFIImageLBA) * isoBlock
	efiImg := filepath.Join(t.TempDir(), "efiboot.img")
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	efiSize, err := fatVolumeSize(f, efiOff)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(efiImg, raw[efiOff:efiOff+efiSize], 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("fsck.vfat", "-n", efiImg).CombinedOutput(); err != nil {
		t.Errorf("fsck.vfat -n: %v\n%s", err, out)
	}
	if blk, _ := exec.Command("blkid", "-p", "-o", "export", efiImg).CombinedOutput(); !strings.Contains(string(blk), "VERSION=FAT32") ||
		!strings.Contains(string(blk), "LABEL="+EFILabel) {
		t.Errorf("EFI image is not FAT32 labelled %s:\n%s", EFILabel, blk)
	}
	mtype := func(p string) string {
		b, err := exec.Command("mtype", "-i", efiImg, "::"+p).CombinedOutput()
		if err != nil {
			t.Fatalf("mtype %s: %v\n%s", p, err, b)
		}
		return string(b)
	}
	sdboot := map[string]string{"loader.conf": mtype("/loader/loader.conf")}
	for _, e := range res.Entries {
		sdboot["entries/"+e.ID+".conf"] = mtype("/loader/entries/" + e.ID + ".conf")
	}
	checkMenus(t, res.Entries, string(cfg), sdboot)
	if !strings.Contains(sdboot["loader.conf"], "timeout 2\n") || !strings.Contains(sdboot["loader.conf"], "default install.conf\n") {
		t.Errorf("loader.conf:\n%s", sdboot["loader.conf"])
	}
	if got := mtype("/EFI/BOOT/BOOTX64.EFI"); got != string(ExitEFI()) {
		t.Errorf("BOOTX64.EFI is not the bundle's loader.efi")
	}
	if got := mtype("/vmlinuz"); len(got) != 5<<20+3 {
		t.Errorf("vmlinuz in FAT has %d bytes", len(got))
	}

	// The isohybrid MBR: syslinux boot code, isolinux.bin's sector, one EFI partition over
	// the FAT image.
	code, _ := os.ReadFile(sl.HybridMBR)
	if !bytes.Equal(raw[:mbrCodeSize], code[:mbrCodeSize]) {
		t.Error("MBR boot code is not isohdpfx.bin")
	}
	if got := binary.LittleEndian.Uint32(raw[432:]); got != res.BIOSBootLBA*4 {
		t.Errorf("MBR boot LBA %d, want %d", got, res.BIOSBootLBA*4)
	}
	p := raw[446:462]
	if p[0] != 0x80 || p[4] != 0xef || binary.LittleEndian.Uint32(p[8:]) != res.EFIImageLBA*4 ||
		int64(binary.LittleEndian.Uint32(p[12:]))*512 != efiSize || raw[510] != 0x55 || raw[511] != 0xaa {
		t.Errorf("MBR partition 1 = % x", p)
	}
	if !bytes.Equal(raw[462:510], make([]byte, 48)) {
		t.Error("MBR has more than one partition")
	}
}

func TestBuildISOEmbedBundle(t *testing.T) {
	sl := hostSyslinux(t)
	needTool(t, "mtype")
	bundle := isoFakeBundle(t)
	out := filepath.Join(t.TempDir(), "node.iso")
	res, err := BuildISO(context.Background(), out, ISOOptions{Bundle: bundle, Syslinux: sl, EmbedBundle: true})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(out)
	defer f.Close()
	isofs, err := iso9660.Read(file.New(f, true), res.Size, 0, 2048)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := isofs.ReadFile("isolinux/isolinux.cfg")
	if !strings.Contains(string(cfg), "INITRD /"+isoInstallerRD+"\n") {
		t.Errorf("isolinux.cfg does not boot the installer initrd:\n%s", cfg)
	}
	rd, err := isofs.ReadFile(isoInstallerRD)
	if err != nil {
		t.Fatal(err)
	}
	// The initrd, padded to 4 bytes, then a newc cpio holding bundle/manifest.json.
	if !bytes.HasPrefix(rd, bytes.Repeat([]byte("I"), 4<<20+1)) || !bytes.Contains(rd, []byte("bundle/manifest.json")) ||
		!bytes.Equal(rd[4<<20+4:4<<20+10], []byte("070701")) {
		t.Errorf("installer initrd is not initrd + bundle cpio (%d bytes)", len(rd))
	}
	if res.Size < int64(len(rd)) {
		t.Errorf("ISO smaller than its initrd")
	}
}

func TestBuildISOBadInputWritesNothing(t *testing.T) {
	sl := hostSyslinux(t)
	bundle := isoFakeBundle(t)
	os.Remove(filepath.Join(bundle, "loader.efi"))
	huge := isoFakeBundle(t) // a sparse 4 GiB rootfs: one byte more than an ISO file holds
	if err := os.Truncate(filepath.Join(huge, "rootfs.squashfs"), 1<<32); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "node.iso")
	for _, tc := range []struct {
		o    ISOOptions
		want string
	}{
		{ISOOptions{Bundle: bundle, Syslinux: sl}, "loader.efi"},
		{ISOOptions{Syslinux: sl}, "--bundle"},
		{ISOOptions{Bundle: isoFakeBundle(t), Syslinux: DebianSyslinux("/nonexistent")}, "isolinux"},
		{ISOOptions{Bundle: isoFakeBundle(t), Syslinux: sl, Menu: MenuOptions{Default: "nope"}}, `"nope"`},
		{ISOOptions{Bundle: isoFakeBundle(t), Syslinux: sl, Label: "A B"}, "volume label"},
		{ISOOptions{Bundle: huge, Syslinux: sl}, "rootfs.squashfs is 4.0 GiB"},
	} {
		_, err := BuildISO(context.Background(), out, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "hint") {
			t.Errorf("BuildISO(%+v) = %v, want an error naming %s with a hint", tc.o, err, tc.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s written despite bad input", out)
		}
	}
}

func TestExitEFIIsAnEFIApplication(t *testing.T) {
	f, err := pe.NewFile(bytes.NewReader(ExitEFI()))
	if err != nil {
		t.Fatal(err)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok || f.Machine != pe.IMAGE_FILE_MACHINE_AMD64 || oh.Subsystem != pe.IMAGE_SUBSYSTEM_EFI_APPLICATION {
		t.Fatalf("not an x86-64 EFI application: machine %#x %T", f.Machine, f.OptionalHeader)
	}
	text := f.Section(".text")
	if text == nil || oh.AddressOfEntryPoint != text.VirtualAddress {
		t.Fatalf("entry point %#x not at .text", oh.AddressOfEntryPoint)
	}
	data, _ := text.Data()
	// mov rax, EFI_NOT_FOUND; ret
	if !bytes.HasPrefix(data, []byte{0x48, 0xb8, 0x0e, 0, 0, 0, 0, 0, 0, 0x80, 0xc3}) {
		t.Fatalf("code % x", data[:11])
	}
}

func regexpMatch(re string, b []byte) bool { return regexp.MustCompile(re).Match(b) }

// BenchmarkBuildISO builds a hybrid ISO from a bundle the size of the demo one (14 MiB
// kernel, 10 MiB initrd, 32 MiB root image). Run: go test -run - -bench BuildISO ./media/
func BenchmarkBuildISO(b *testing.B) {
	sl := DebianSyslinux("/")
	if _, err := os.Stat(sl.IsolinuxBin); err != nil {
		b.Skip("needs Debian packages isolinux and syslinux-common")
	}
	dir := b.TempDir()
	for name, size := range map[string]int{"vmlinuz": 14 << 20, "initrd.img": 10 << 20, "rootfs.squashfs": 32 << 20, "manifest.json": 900} {
		if err := os.WriteFile(filepath.Join(dir, name), bytes.Repeat([]byte{0xa5}, size), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "loader.efi"), ExitEFI(), 0o644)
	out := filepath.Join(b.TempDir(), "bench.iso")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res, err := BuildISO(context.Background(), out, ISOOptions{Bundle: dir, Syslinux: sl})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(res.Size)
	}
}
