//go:build !initramfs

package image

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/mkuimage/cpio"

	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/internal/testkernel"
)

// testNodeinit builds the nodeinit binary, as `make build` does, in its
// initramfs build, for a real initramfs.
func testNodeinit(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the go tool to build the nodeinit binary for /init")
	}
	bin := filepath.Join(t.TempDir(), "nodeinit")
	cmd := exec.Command("go", append(append([]string{"build"}, initramfs.GoBuildFlags...), "-o", bin, "../cmd/nodeinit")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/nodeinit: %v\n%s", err, out)
	}
	return bin
}

// readInitrd returns the records of a zstd initramfs by name, with their bytes.
func readInitrd(t *testing.T, file string) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	raw, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("%s is not zstd: %v", file, err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("%s is not a newc cpio: %v", file, err)
	}
	out := map[string][]byte{}
	for _, r := range recs {
		b, _ := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		out[r.Name] = b
	}
	return out
}

// TestEditInitramfs edits a bundle whose initrd.img is a real nodeinit
// initramfs (the nodeinit binary, the old key, loop from the cloud kernel)
// with --install-kmod garp.ko (which needs stp and llc, in the image root)
// and --initramfs, signed with a new key: the new initrd keeps the binary,
// the old key and loop, and adds garp with its dependencies, their
// modules.dep lines, garp in the module list /init loads, and the new
// public key; the manifest records the rebuild; image diff lists the
// initrd change; the same edit gives the same bytes; without --initramfs
// the edit warns and keeps the initrd as it was.
func TestEditInitramfs(t *testing.T) {
	mods := testkernel.ModulesDir(t, "kernel/net/802/garp.ko")
	kver := filepath.Base(mods)
	bin := testNodeinit(t)
	f := newEditFixtureWith(t, fixtureOptions{
		kver: kver,
		root: func(root string) {
			for _, rel := range []string{"kernel/net/802/stp.ko", "kernel/net/llc/llc.ko"} {
				dst := filepath.Join(root, "lib/modules", kver, rel)
				os.MkdirAll(filepath.Dir(dst), 0o755)
				if err := copyFileTo(filepath.Join(mods, rel), dst); err != nil {
					t.Fatal(err)
				}
			}
		},
		initrd: func(dir, oldPub string) string {
			out := filepath.Join(dir, "initrd-1.0.img")
			if _, err := initramfs.Build(context.Background(), initramfs.Options{Output: out, Binary: bin, ModulesDir: mods,
				Modules: []string{"loop"}, Keys: []string{oldPub}}); err != nil {
				t.Fatalf("build the initramfs: %v", err)
			}
			return out
		},
	})
	garp := filepath.Join(mods, "kernel/net/802/garp.ko")
	o := EditOptions{Bundle: f.bundle, Key: f.key, PublicKey: f.pub, Kmods: []string{garp}, Initramfs: true, Out: filepath.Join(f.dir, "out1")}
	before := bundleDigests(t, f.bundle)
	m, err := EditBundle(context.Background(), o)
	if err != nil {
		t.Fatalf("edit: %v", err)
	}
	if !sameDigests(before, bundleDigests(t, f.bundle)) {
		t.Fatal("the input bundle changed")
	}

	old := readInitrd(t, filepath.Join(f.bundle, InitrdName))
	recs := readInitrd(t, filepath.Join(o.Out, InitrdName))
	binBytes, _ := os.ReadFile(bin)
	garpBytes, _ := os.ReadFile(garp)
	pubBytes, _ := os.ReadFile(f.pub)
	dir := "lib/modules/" + kver + "/"
	for name, want := range map[string][]byte{
		initramfs.BinaryPath:                 binBytes,
		"etc/nodeinit/keys/old.pub":          old["etc/nodeinit/keys/old.pub"],
		"etc/nodeinit/keys/new.pub":          pubBytes,
		dir + "extra/garp.ko":                garpBytes,
		dir + "kernel/drivers/block/loop.ko": old[dir+"kernel/drivers/block/loop.ko"],
	} {
		if got, ok := recs[name]; !ok || len(want) == 0 || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes (present %v), want %d bytes as given", name, len(got), ok, len(want))
		}
	}
	for _, name := range []string{dir + "kernel/net/802/stp.ko", dir + "kernel/net/llc/llc.ko", "init", "bbin/gosh"} {
		if _, ok := recs[name]; !ok {
			t.Errorf("the new initramfs lacks %s", name)
		}
	}
	dep := string(recs[dir+"modules.dep"])
	for _, l := range []string{"kernel/drivers/block/loop.ko:", "extra/garp.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko"} {
		if !strings.Contains(dep, l+"\n") {
			t.Errorf("modules.dep lacks %q:\n%s", l, dep)
		}
	}
	// loop drives no device, so the input's list leaves it to be loaded when a
	// loop device is made; garp, asked for by the edit, is added to the list.
	if list := string(recs[initramfs.ModuleListArchivePath]); !strings.HasSuffix(list, "\ngarp\n") || strings.Contains(list, "\nloop\n") {
		t.Errorf("module list %q: want garp at the end and no loop", list)
	}
	for name := range old {
		if _, ok := recs[name]; !ok {
			t.Errorf("the new initramfs lost %s", name)
		}
	}

	e := m.Edits[len(m.Edits)-1]
	t.Logf("edit: %+v", e)
	if e.Op != EditInitramfs || e.Version != kver || e.Name != InitrdName || e.SHA256 != before[InitrdName] ||
		!strings.Contains(e.Reason, "loads garp") || !strings.Contains(strings.Join(e.Paths, " "), "/"+dir+"extra/garp.ko") ||
		!strings.Contains(strings.Join(e.Paths, " "), "/etc/nodeinit/keys/new.pub") {
		t.Errorf("last edit %+v, want the initramfs rebuild for %s", e, kver)
	}
	if nf, _ := m.File(InitrdName); nf.SHA256 == before[InitrdName] {
		t.Error("the manifest lists the old initrd")
	}
	src, err := newDirSource(o.Out, o.Out)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(context.Background(), src, Keyring{}, VerifyOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.VerifyFiles(context.Background()); err != nil {
		t.Errorf("the new bundle's files do not verify: %v", err)
	}

	changes, err := Diff(context.Background(), f.bundle, o.Out)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range changes {
		got = append(got, c.Kind+" "+c.Op+c.Name)
	}
	for _, w := range []string{"bundle-file ~" + InitrdName, "file +/" + dir + "extra/garp.ko"} {
		if !strings.Contains(strings.Join(got, "\n")+"\n", w+"\n") {
			t.Errorf("diff lacks %q:\n%s", w, strings.Join(got, "\n"))
		}
	}

	o.Out = filepath.Join(f.dir, "out2")
	if _, err := EditBundle(context.Background(), o); err != nil {
		t.Fatalf("second edit: %v", err)
	}
	if one, two := bundleDigests(t, filepath.Join(f.dir, "out1")), bundleDigests(t, o.Out); !sameDigests(one, two) {
		t.Errorf("two runs of the same edit differ:\n%v\n%v", one, two)
	}

	// A package that ships a module: depmod runs for it, and --initramfs adds it.
	kmodDeb := f.deb(t, filepath.Join(f.dir, "kdeb"), "garp-module", "1.0", "amd64", "",
		map[string]string{"lib/modules/" + kver + "/updates/garp.ko": string(garpBytes)})
	od := EditOptions{Bundle: f.bundle, Key: f.key, PublicKey: f.pub, Debs: []string{kmodDeb}, Initramfs: true, Out: filepath.Join(f.dir, "out-deb")}
	md, err := EditBundle(context.Background(), od)
	if err != nil {
		t.Fatalf("edit with a module package: %v", err)
	}
	if e := md.Edits[len(md.Edits)-1]; e.Op != EditInitramfs || !strings.Contains(e.Reason, "loads garp") {
		t.Errorf("last edit %+v, want the initramfs rebuilt to load garp", e)
	}
	if rd := readInitrd(t, filepath.Join(od.Out, InitrdName)); !bytes.Equal(rd[dir+"updates/garp.ko"], garpBytes) {
		t.Errorf("the initramfs lacks the package's updates/garp.ko")
	}

	var warn bytes.Buffer
	o.Out, o.Initramfs, o.Warn = filepath.Join(f.dir, "out3"), false, &warn
	m3, err := EditBundle(context.Background(), o)
	if err != nil {
		t.Fatalf("edit without --initramfs: %v", err)
	}
	t.Logf("warning: %s", warn.String())
	if !strings.Contains(warn.String(), "does not carry them") || !strings.Contains(warn.String(), "--initramfs") {
		t.Errorf("warning %q, want one naming --initramfs", warn.String())
	}
	if nf, _ := m3.File(InitrdName); nf.SHA256 != before[InitrdName] {
		t.Error("without --initramfs the initrd changed")
	}
}

// TestEditInitramfsRefusesForeignInitrd: --initramfs on a bundle whose
// initrd.img is not a nodeinit initramfs is refused with a fix, and leaves
// no --out.
func TestEditInitramfsRefusesForeignInitrd(t *testing.T) {
	f := newEditFixture(t)
	o := EditOptions{Bundle: f.bundle, Key: f.key, Initramfs: true, Out: filepath.Join(f.dir, "refused")}
	_, err := EditBundle(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "--initramfs") || !strings.Contains(HintOf(err), "mkinitramfs") {
		t.Fatalf("edit: %v (fix %q), want a refusal of the initrd", err, HintOf(err))
	}
	t.Logf("refused: %v (fix: %s)", err, HintOf(err))
	if _, err := os.Stat(o.Out); err == nil {
		t.Error("--out exists")
	}
}
