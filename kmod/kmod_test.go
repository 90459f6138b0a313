package kmod

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/internal/testkernel"
	"github.com/nodeinit/nodeinit/modalias"
)

// procFilesystems is /proc/filesystems of Debian's 6.1 cloud kernel in an
// initramfs before any filesystem module has loaded.
const procFilesystems = "nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\n\text4\nnodev\tsecurityfs\n\text3\n\text2\n"

func TestRegistered(t *testing.T) {
	for fstype, want := range map[string]bool{
		"ext4": true, "tmpfs": true, "sysfs": true, "squashfs": false, "overlay": false, "vfat": false, "nodev": false, "ext": false,
	} {
		if got := Registered([]byte(procFilesystems), fstype); got != want {
			t.Errorf("Registered(%q) = %v, want %v", fstype, got, want)
		}
	}
}

// TestResolve maps what callers ask for to module names with a modules.alias
// excerpt of the same kernel: a filesystem's alias, a protocol family, a plain
// module name (found by name, not alias), and a dashed name.
func TestResolve(t *testing.T) {
	table, err := modalias.Parse(strings.NewReader("alias fs-iso9660 isofs\nalias fs-squashfs squashfs\nalias net-pf-17 af_packet\nalias devname:loop-control loop\nalias rtnl-link-vlan 8021q\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]string{
		FilesystemAlias("iso9660"):  {"isofs"},
		FilesystemAlias("squashfs"): {"squashfs"},
		"net-pf-17":                 {"af_packet"},
		"loop":                      {"loop"},
		"dm-mod":                    {"dm_mod"},
	} {
		if got := Resolve(table, name); !slices.Equal(got, want) {
			t.Errorf("Resolve(%q) = %v, want %v", name, got, want)
		}
	}
	if got := Resolve(nil, "fs-xfs"); !slices.Equal(got, []string{"fs_xfs"}) {
		t.Errorf("Resolve without a table = %v, want the name itself", got)
	}
}

func TestCodepages(t *testing.T) {
	dep := "kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\nkernel/fs/fat/fat.ko:\nkernel/fs/nls/nls_cp437.ko:\nkernel/fs/nls/nls_iso8859-1.ko:\nkernel/fs/nls/nls_ascii.ko.xz:\nkernel/fs/squashfs/squashfs.ko:\n"
	if got, want := Codepages([]byte(dep)), []string{"nls_cp437", "nls_iso8859_1", "nls_ascii"}; !slices.Equal(got, want) {
		t.Errorf("Codepages = %v, want %v", got, want)
	}
}

// TestResolveWithTheFetchedKernel maps the names /init asks for on demand
// with the cached Debian kernel's own modules.alias and modules.dep.
func TestResolveWithTheFetchedKernel(t *testing.T) {
	dir := testkernel.ModulesDir(t, "modules.alias")
	table, err := modalias.ReadFile(filepath.Join(dir, "modules.alias"))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		FilesystemAlias("iso9660"): "isofs", FilesystemAlias("vfat"): "vfat", FilesystemAlias("squashfs"): "squashfs",
		FilesystemAlias("overlay"): "overlay", FilesystemAlias("efivarfs"): "efivarfs", FilesystemAlias("xfs"): "xfs",
		"rtnl-link-vlan": "8021q", "devname:loop-control": "loop", "loop": "loop",
	} {
		if got := Resolve(table, name); !slices.Equal(got, []string{want}) {
			t.Errorf("Resolve(%q) = %v, want [%s]", name, got, want)
		}
	}
	dep, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	cps := Codepages(dep)
	for _, want := range []string{"nls_cp437", "nls_ascii", "nls_utf8", "nls_iso8859_1"} {
		if !slices.Contains(cps, want) {
			t.Errorf("Codepages of the kernel's modules.dep lack %s (%d found)", want, len(cps))
		}
	}
}
