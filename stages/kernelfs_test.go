package stages

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestMissingFilesystems: a filesystem counts as there when /proc/filesystems
// lists it or modules.dep lists its module and the file is present; without a
// readable /proc/filesystems nothing is reported missing.
func TestMissingFilesystems(t *testing.T) {
	root := t.TempDir()
	if got := missingFilesystems(root, []string{"ext4"}); got != nil {
		t.Errorf("no /proc/filesystems: missing = %q, want nothing (unknown is not missing)", got)
	}
	write := func(p, s string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("proc/filesystems", "nodev\tsysfs\nnodev\ttmpfs\n\text4\nnodev\toverlay\n")
	write("proc/sys/kernel/osrelease", "6.1.0-57-cloud-amd64\n")
	mods := "lib/modules/6.1.0-57-cloud-amd64/"
	write(mods+"modules.dep", "kernel/fs/fat/vfat.ko.xz: kernel/fs/fat/fat.ko.xz\nkernel/fs/fat/fat.ko.xz:\nkernel/fs/squashfs/squashfs.ko.xz:\n")
	write(mods+"kernel/fs/fat/vfat.ko.xz", "")
	write(mods+"kernel/fs/fat/fat.ko.xz", "")
	// squashfs is in modules.dep but its file was left out of the initramfs.
	got := missingFilesystems(root, []string{"ext4", "squashfs", "overlay", "vfat", "btrfs"})
	if want := []string{"squashfs", "btrfs"}; !slices.Equal(got, want) {
		t.Errorf("missing = %q, want %q (ext4 and overlay are registered, vfat's module is there)", got, want)
	}
}
