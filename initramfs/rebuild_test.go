package initramfs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/u-root/mkuimage/cpio"

	"github.com/nodeinit/nodeinit/internal/testkernel"
)

// writeArchive writes a gzip newc archive of recs (a stand-in for a built
// initramfs: AddTo needs only bin/nodeinit to be there) and returns its path.
func writeArchive(t *testing.T, dir string, extra []byte, recs ...cpio.Record) string {
	t.Helper()
	var raw bytes.Buffer
	w := cpio.Newc.Writer(&raw)
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	raw.Write(extra)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	p := filepath.Join(dir, "in.img")
	if err := os.WriteFile(p, gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAddTo adds a module with its dependencies and a key to a gzip
// archive: the result is gzip, keeps every record, lists the module, gives
// the same bytes twice, and a key already trusted (under another name) is
// not added again.
func TestAddTo(t *testing.T) {
	mods := testkernel.ModulesDir(t, "modules.dep")
	dir := t.TempDir()
	pub := filepath.Join(dir, "node.pub")
	os.WriteFile(pub, []byte("untrusted comment: minisign public key 1\nRWQkeykeykey\n"), 0o644)
	in := writeArchive(t, dir, nil,
		cpio.Directory("bin", 0o755), cpio.StaticFile(BinaryPath, "ELF nodeinit", 0o755), cpio.Symlink("init", "/"+BinaryPath),
		cpio.Directory("etc", 0o755), cpio.Directory("etc/nodeinit", 0o755), cpio.Directory("etc/nodeinit/keys", 0o755),
		cpio.StaticFile("etc/nodeinit/keys/old.pub", "untrusted comment: minisign public key 2\nRWQoldoldold\n", 0o644),
		cpio.StaticFile(ModuleListArchivePath, "# list\nloop\n", 0o644))
	var sums []string
	for i := range 2 {
		out := filepath.Join(dir, "out"+string(rune('0'+i))+".img")
		res, err := AddTo(context.Background(), AddOptions{Input: in, Output: out, ModulesDir: mods, Modules: []string{"garp"}, Keys: []string{pub}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Compression != Gzip || strings.Join(res.Listed, " ") != "garp" || len(res.KeysAdded) != 1 {
			t.Errorf("result %+v", res)
		}
		sums = append(sums, res.SHA256)
		data, _ := os.ReadFile(out)
		raw, comp, err := decompress(data)
		if err != nil || comp != Gzip {
			t.Fatalf("output: %v, %s", err, comp)
		}
		recs, err := readArchive(raw)
		if err != nil {
			t.Fatal(err)
		}
		a := newArchive(recs)
		for _, n := range []string{"init", BinaryPath, "etc/nodeinit/keys/old.pub", "etc/nodeinit/keys/node.pub",
			"lib/modules/" + filepath.Base(mods) + "/kernel/net/llc/llc.ko"} {
			if _, ok := a.byName[n]; !ok {
				t.Errorf("output lacks %s", n)
			}
		}
		if list, _ := a.content(ModuleListArchivePath); string(list) != "# list\nloop\ngarp\n" {
			t.Errorf("module list %q", list)
		}
		if i == 1 {
			// The key is trusted now: adding it under another name changes nothing.
			again := filepath.Join(dir, "again.pub")
			os.WriteFile(again, []byte("untrusted comment: same key\nRWQkeykeykey\n"), 0o644)
			res, err := AddTo(context.Background(), AddOptions{Input: out, Output: filepath.Join(dir, "out2.img"), Keys: []string{again}})
			if err != nil || len(res.Changed) != 0 {
				t.Errorf("adding a trusted key again: %+v, %v", res, err)
			}
		}
	}
	if sums[0] != sums[1] {
		t.Errorf("two runs differ: %v", sums)
	}
}

// TestAddToRefuses: an archive without the nodeinit binary, one with
// another archive appended, and modules for another kernel are refused and
// write nothing.
func TestAddToRefuses(t *testing.T) {
	mods := testkernel.ModulesDir(t, "modules.dep")
	for _, c := range []struct {
		name  string
		extra []byte
		recs  []cpio.Record
		want  string
	}{
		{"not nodeinit's", nil, []cpio.Record{cpio.StaticFile("init", "#!/bin/sh\n", 0o755)}, "not a nodeinit initramfs"},
		{"concatenated", []byte("070701" + strings.Repeat("0", 200)), []cpio.Record{cpio.StaticFile(BinaryPath, "x", 0o755)}, "more than one archive"},
		{"other kernel", nil, []cpio.Record{cpio.StaticFile(BinaryPath, "x", 0o755), cpio.StaticFile("lib/modules/5.10.0-1-amd64/modules.dep", "", 0o644)}, "carries modules for kernel 5.10.0-1-amd64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			in := writeArchive(t, dir, c.extra, c.recs...)
			out := filepath.Join(dir, "out.img")
			_, err := AddTo(context.Background(), AddOptions{Input: in, Output: out, ModulesDir: mods, Modules: []string{"garp"}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("AddTo: %v, want %q", err, c.want)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("files left: %v", ents)
			}
		})
	}
}
