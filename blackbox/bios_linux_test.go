package blackbox

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/boot"
)

// withBIOSLoader gives the env's installs GRUB images, so that
// nodeinit.firmware=bios installs for BIOS. The crash harness needs their
// writes, not a GRUB that starts: a boot sector with its signature and 64 KiB
// of random bytes as core.img (its first sector's blocklist area empty).
func (e *env) withBIOSLoader() {
	e.t.Helper()
	dir := filepath.Join(e.dir, "grub-i386-pc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	sector := make([]byte, 512)
	sector[510], sector[511] = 0x55, 0xaa
	core := make([]byte, 64<<10)
	rand.Read(core)
	clear(core[256:512]) // diskboot.img's blocklists: empty, as grub-mkimage leaves them
	for name, data := range map[string][]byte{boot.GrubBootImage: sector, boot.GrubCoreImage: core} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	e.biosLoader = dir
}

// installedBIOS is installed for a BIOS install: GRUB's grub.cfg and grubenv
// on the ESP instead of systemd-boot's entries.
func installedBIOS(e *env, img string, rels ...release) []string {
	return installedWith(e, img, "nodeinit.firmware=bios", rels...)
}

// TestCrashInstallBlankBIOS is TestCrashInstallBlank for BIOS: the BIOS boot
// partition, core.img, the MBR and GRUB's files on the ESP are written too.
func TestCrashInstallBlankBIOS(t *testing.T) {
	runCrashScenario(t, crashScenario{
		name: "install for BIOS onto a blank disk",
		prepare: func(e *env, img string) []string {
			e.withBIOSLoader()
			return []string{e.bundle(release{version: "1.0", fillerMiB: 2})}
		},
		line: "install storage_init=/dev/{disk} nodeinit.image={b1} nodeinit.firmware=bios " + vols + " hostname=node1.example.com",
		check: func(v, before, after nodeView) error {
			if v.boots == "" {
				return nil // nothing bootable yet is allowed on a blank disk
			}
			if err := bootsOneOf(v, "a/1.0"); err != nil {
				return err
			}
			return configIs(v, after.liveConfig())
		},
		rerunDone: func(v nodeView) error { return bootsOneOf(v, "a/1.0") },
	})
}

// TestCrashUpgradeBIOS cuts an upgrade of a BIOS install anywhere: its
// entry is grub.cfg's and its counters grubenv's, written in that order.
func TestCrashUpgradeBIOS(t *testing.T) {
	runCrashScenario(t, crashScenario{
		name: "upgrade a→b of a BIOS install, with config migration",
		prepare: func(e *env, img string) []string {
			e.withBIOSLoader()
			return installedBIOS(e, img, release{version: "1.0", fillerMiB: 2}, release{version: "1.1", fillerMiB: 2, migrations: migration})
		},
		line:      "upgrade nodeinit.image={b2}",
		check:     upgradeCheck("a/1.0", "b/1.1"),
		rerunDone: func(v nodeView) error { return bootsOneOf(v, "b/1.1") },
	})
}

// TestInstallBIOSDisk installs for BIOS through the recorder and judges the
// disk: sgdisk finds the BIOS boot partition in the first MiB and no problem,
// the MBR is boot.img's code pointing at core.img with the protective
// partition kept, core.img's blocklist covers the rest of it, and the ESP
// holds grub.cfg and an empty grubenv, no systemd-boot, and the inspector sees
// slot a boot.
func TestInstallBIOSDisk(t *testing.T) {
	e := newEnv(t)
	e.withBIOSLoader()
	b1 := e.bundle(release{version: "1.0", fillerMiB: 2})
	img := e.newDisk("disk.img")
	m := e.record(img, 512)
	res := e.apply(m, m.name, "install storage_init=/dev/"+m.name+" nodeinit.image="+b1+" nodeinit.firmware=bios "+vols+" hostname=node1.example.com")
	if res.err != nil {
		t.Fatalf("install: %v\n%s", res.err, res.out)
	}
	if got := res.ran(); slices.Contains(got, "boot-order") || !slices.Contains(got, "copy-boot-files") {
		t.Errorf("stages %v: want copy-boot-files and no boot-order", got)
	}
	if res.plan == nil || res.plan.Firmware != "bios" {
		t.Errorf("the plan is not for BIOS: %+v", res.plan)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if out := run(t, "sgdisk", "-v", img); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	if out := run(t, "sgdisk", "-i", "8", img); !strings.Contains(out, "21686148-6449-6E6F-744E-656564454649") ||
		!strings.Contains(out, "First sector: 34 ") || !strings.Contains(out, "Last sector: 2047 ") {
		t.Errorf("sgdisk -i 8:\n%s", out)
	}
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 1<<20)
	if _, err := f.ReadAt(head, 0); err != nil {
		t.Fatal(err)
	}
	core, err := os.ReadFile(filepath.Join(e.biosLoader, boot.GrubCoreImage))
	if err != nil {
		t.Fatal(err)
	}
	mbr := head[:512]
	if binary.LittleEndian.Uint64(mbr[0x5c:]) != 34 || mbr[0x64] != 0xff || mbr[0x1c2] != 0xee || mbr[510] != 0x55 || mbr[511] != 0xaa {
		t.Errorf("MBR: core.img at %d, boot drive %#x, partition type %#x, signature %x", binary.LittleEndian.Uint64(mbr[0x5c:]), mbr[0x64], mbr[0x1c2], mbr[510:])
	}
	written := head[34*512 : 34*512+len(core)]
	if !bytes.Equal(written[512:], core[512:]) || !bytes.Equal(written[:488], core[:488]) {
		t.Error("core.img is not in BIOS-BOOT as it was given, outside its blocklist")
	}
	bl := written[500:512]
	if start, n, seg := binary.LittleEndian.Uint64(bl), binary.LittleEndian.Uint16(bl[8:]), binary.LittleEndian.Uint16(bl[10:]); start != 35 || int(n) != len(core)/512-1 || seg != 0x820 {
		t.Errorf("core.img's blocklist: start %d, %d sectors, segment %#x", start, n, seg)
	}
	in, err := newInspector(512, t.TempDir(), b1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := in.inspect(img)
	if err != nil {
		t.Fatal(err)
	}
	if v.boots != "a" || v.version != "1.0" {
		t.Fatalf("the installed disk does not boot 1.0 from slot a: %s", v)
	}
	if len(v.entries) != 1 || !v.entries[0].Blessed() || !strings.HasSuffix(v.entries[0].File, "(grubenv)") {
		t.Errorf("entries: %+v; want slot a's, from grub.cfg, blessed", v.entries)
	}
}
