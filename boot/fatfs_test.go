package boot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/device/blockfile"
)

// fileBlock is a device.Block over an image file, for tests of this package.
type fileBlock struct {
	*os.File
	size    int64
	flushes int
}

func (b *fileBlock) Size() int64                      { return b.size }
func (b *fileBlock) LogicalSectorSize() int           { return 512 }
func (b *fileBlock) PhysicalSectorSize() int          { return 512 }
func (b *fileBlock) IsBlockDevice() bool              { return false }
func (b *fileBlock) Discard(int64, int64, bool) error { return device.ErrUnsupported }
func (b *fileBlock) ZeroRange(off, n int64) error {
	_, err := b.WriteAt(make([]byte, n), off)
	return err
}
func (b *fileBlock) Flush() error { b.flushes++; return b.Sync() }
func (b *fileBlock) Path() string { return b.Name() }

func newFATImage(t *testing.T, size int64) (string, *fileBlock) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "esp.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	b := &fileBlock{File: f, size: size}
	if _, err := fat32.Create(blockfile.Storage(b), size, 0, 512, "NODE-ESP", false); err != nil {
		t.Fatal(err)
	}
	return img, b
}

// TestFATLifecycleJudgedByMtools runs the ESP's whole life on the in-process FAT
// (loader, slot files, entries with boot counting, the ledger, bless, removal),
// then asks independent tools: fsck.vfat finds the filesystem clean and mtools
// reads back exactly what was written.
func TestFATLifecycleJudgedByMtools(t *testing.T) {
	for _, tool := range []string{"fsck.vfat", "mtype", "mdir"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (dosfstools, mtools)", tool)
		}
	}
	img, b := newFATImage(t, 512<<20) // the layout's ESP size
	esp, err := OpenFAT(b)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	loader := filepath.Join(src, "loader.efi")
	os.WriteFile(loader, append([]byte("MZ"), make([]byte, 70000)...), 0o644)
	for _, n := range []string{"vmlinuz", "initrd.img", "manifest.json"} {
		os.WriteFile(filepath.Join(src, n), []byte(n+" of slot a\n"), 0o644)
	}
	if err := InstallLoader(esp, loader); err != nil {
		t.Fatal(err)
	}
	if err := InstallSlot(esp, "a", filepath.Join(src, "vmlinuz"), filepath.Join(src, "initrd.img"), filepath.Join(src, "manifest.json")); err != nil {
		t.Fatal(err)
	}
	if err := WriteEntry(esp, Entry{Slot: "a", Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteEntry(esp, Entry{Slot: "b", Version: "2.0", Tries: 3}); err != nil {
		t.Fatal(err)
	}
	l := NewLedger("install-1")
	at := time.Unix(1700000000, 0)
	l.RecordSlot(at, "a", SlotGood, "1.0", "node")
	l.SetActive("a")
	for range 3 { // rewrites: each replaces both copies
		if err := l.Write(esp); err != nil {
			t.Fatal(err)
		}
	}
	if err := Bless(esp, "b"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveSlotEntry(esp, "a"); err != nil {
		t.Fatal(err)
	}
	if b.flushes == 0 {
		t.Fatal("nothing was flushed to the device")
	}

	// Read back in-process, through a fresh open.
	again, err := OpenFAT(b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadLedger(again)
	if err != nil || got.Seq != 3 || got.InstallID != "install-1" {
		t.Fatalf("ledger read back: %+v %v", got, err)
	}
	entries, err := Entries(again)
	if err != nil || len(entries) != 1 || entries[0].File != "node-b.conf" {
		t.Fatalf("entries read back: %+v %v", entries, err)
	}
	if _, err := again.Stat("loader/entries/node-a.conf"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("removed entry still there: %v", err)
	}

	// Independent judges.
	if out, err := exec.Command("fsck.vfat", "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.vfat -n: %v\n%s", err, out)
	}
	mt := func(args ...string) string {
		cmd := exec.Command(args[0], append([]string{"-i", img}, args[1:]...)...)
		cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if got := mt("mtype", "::node/a/vmlinuz"); got != "vmlinuz of slot a\n" {
		t.Errorf("mtype kernel = %q", got)
	}
	entry := mt("mtype", "::loader/entries/node-b.conf")
	if !strings.Contains(entry, "linux /node/b/vmlinuz") {
		t.Errorf("entry as mtools reads it:\n%s", entry)
	}
	if dir := mt("mdir", "-b", "::loader/entries"); strings.Contains(dir, "node-a") || strings.Contains(dir, "~") {
		t.Errorf("entries directory holds leftovers:\n%s", dir)
	}
	if got := mt("mtype", "::EFI/BOOT/BOOTX64.EFI"); len(got) != 70002 {
		t.Errorf("fallback loader is %d bytes", len(got))
	}
}

// TestFATReadsExactlyTheFileSize writes files of awkward sizes and reads each
// back byte for byte: go-diskfs can return bytes past a file's size (a ledger
// read with trailing NULs made the installed node refuse to boot, seen in QEMU).
func TestFATReadsExactlyTheFileSize(t *testing.T) {
	_, b := newFATImage(t, 512<<20)
	esp, err := OpenFAT(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 511, 512, 513, 549, 768, 1000, 4095, 4096, 4097, 70001} {
		want := bytes.Repeat([]byte{'x'}, n)
		name := fmt.Sprintf("node/f%d", n)
		if err := esp.WriteFile(name, want); err != nil {
			t.Fatal(err)
		}
		for round := range 2 {
			got, err := esp.ReadFile(name)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s (round %d): read %d bytes, want %d: %v", name, round, len(got), n, err)
			}
			if esp, err = OpenFAT(b); err != nil {
				t.Fatal(err)
			}
		}
	}
}
