package initramfs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/u-root/mkuimage/cpio"

	"github.com/nodeinit/nodeinit/internal/testkernel"
)

var (
	buildOnce sync.Once
	built     string
	buildErr  error
)

// nodeinitBinary builds the multi-call nodeinit binary once for the package's tests, the
// way an operator would (CGO_ENABLED=0 go build ./cmd/nodeinit).
func nodeinitBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nodeinit-initramfs-test-")
		if err != nil {
			buildErr = err
			return
		}
		built = filepath.Join(dir, "nodeinit")
		cmd := exec.Command("go", append(append([]string{"build"}, GoBuildFlags...), "-o", built, "../cmd/nodeinit")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/nodeinit: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built != "" {
		os.RemoveAll(filepath.Dir(built))
	}
	os.Exit(code)
}

func readCPIO(t *testing.T, file string) map[string]cpio.Record {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(dec)
	if err != nil {
		t.Fatalf("%s is not zstd: %v", file, err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatalf("%s is not a newc cpio: %v", file, err)
	}
	m := map[string]cpio.Record{}
	for _, r := range recs {
		m[r.Name] = r
	}
	return m
}

func content(t *testing.T, r cpio.Record) string {
	t.Helper()
	b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBuildReproducibleWithModules builds twice from the same inputs and wants identical
// bytes, then checks the contents: /init, the shell, keys, a host file with its libraries,
// the modules with their dependencies, and fixed metadata.
func TestBuildReproducibleWithModules(t *testing.T) {
	bin := nodeinitBinary(t)
	mods := testkernel.ModulesDir(t, "modules.dep")
	dir := t.TempDir()
	key := filepath.Join(dir, "release.pub")
	os.WriteFile(key, []byte("untrusted comment: test key\nRWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3\n"), 0o644)
	bundle := filepath.Join(dir, "bundle")
	os.MkdirAll(bundle, 0o755)
	os.WriteFile(filepath.Join(bundle, "manifest.json"), []byte(`{"version":"1"}`), 0o644)
	opts := Options{
		ModulesDir: mods,
		Keys:       []string{key},
		Files:      []string{"/usr/sbin/sgdisk:sbin/sgdisk"},
		Dirs:       []string{bundle + ":image"},
		Commands:   []string{"gosh", "ls", "cat"},
		Binary:     bin,
	}
	var sums []string
	for i, name := range []string{"a.img", "b.img"} {
		opts.Output = filepath.Join(dir, name)
		res, err := Build(context.Background(), opts)
		if err != nil {
			t.Fatalf("build %d: %v", i, err)
		}
		t.Logf("build %d: %s", i, res)
		sums = append(sums, res.SHA256)
		if res.Size <= 0 || res.CPIOSize <= res.Size {
			t.Errorf("sizes: compressed %d, cpio %d", res.Size, res.CPIOSize)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.img"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.img"))
	if !bytes.Equal(a, b) || sums[0] != sums[1] {
		t.Fatalf("two builds from the same inputs differ (%d vs %d bytes)", len(a), len(b))
	}

	recs := readCPIO(t, filepath.Join(dir, "a.img"))
	ver := filepath.Base(mods)
	for _, want := range []string{
		"init", "bin/nodeinit", "bbin/gosh", "bbin/ls", "bbin/cat", "bin/sh",
		"etc/nodeinit/keys/release.pub", "etc/nodeinit/modules", "sbin/sgdisk", "image/manifest.json",
		"lib/modules/" + ver + "/modules.dep",
		"lib/modules/" + ver + "/kernel/drivers/block/virtio_blk.ko",
		"lib/modules/" + ver + "/kernel/fs/squashfs/squashfs.ko",
	} {
		if _, ok := recs[want]; !ok {
			t.Errorf("initramfs lacks %s", want)
		}
	}
	var haveLibc bool
	for name, r := range recs {
		if r.MTime != 0 || r.UID != 0 || r.GID != 0 {
			t.Errorf("%s: mtime %d uid %d gid %d, want all 0", name, r.MTime, r.UID, r.GID)
		}
		if strings.Contains(name, "libc.so") {
			haveLibc = true
		}
	}
	if !haveLibc {
		t.Errorf("sgdisk's shared libraries (libc) were not pulled in")
	}
	dep := content(t, recs["lib/modules/"+ver+"/modules.dep"])
	// virtio_blk needs virtio and virtio_ring; each dependency must be in the archive too.
	for _, line := range strings.Split(strings.TrimSpace(dep), "\n") {
		mod, deps, _ := strings.Cut(line, ":")
		for _, m := range append(strings.Fields(deps), mod) {
			if _, ok := recs["lib/modules/"+ver+"/"+m]; !ok {
				t.Errorf("modules.dep names %s, which is not in the archive", m)
			}
		}
	}
	if !strings.Contains(dep, "virtio_blk.ko: ") || !strings.Contains(dep, "virtio_ring.ko") {
		t.Errorf("modules.dep lacks virtio_blk with its dependencies:\n%s", dep)
	}
	if init := recs["init"]; init.Mode&cpio.S_IFMT != cpio.S_IFLNK || content(t, init) != "bin/nodeinit" {
		t.Errorf("/init is %v %q, want a symlink to bin/nodeinit", init.Info, content(t, init))
	}
	for _, link := range []string{"bbin/gosh", "bbin/ls", "bbin/cat"} {
		if r := recs[link]; r.Mode&cpio.S_IFMT != cpio.S_IFLNK || content(t, r) != "../bin/nodeinit" {
			t.Errorf("/%s is %v %q, want a symlink to the nodeinit binary", link, r.Info, content(t, r))
		}
	}
	if _, ok := recs["bbin/mount"]; ok {
		t.Error("bbin/mount is linked although Commands did not ask for it")
	}
	want, _ := os.ReadFile(bin)
	if got := content(t, recs[BinaryPath]); got != string(want) {
		t.Errorf("%s holds %d bytes, not the %d of the binary given", BinaryPath, len(got), len(want))
	}
}

func TestResolveModules(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(
		"kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\n"+
			"kernel/fs/fat/fat.ko:\n"+
			"kernel/drivers/usb/storage/usb-storage.ko: kernel/drivers/usb/common/usb-common.ko\n"+
			"kernel/drivers/usb/common/usb-common.ko:\n"+
			"kernel/unused.ko:\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/drivers/nvme/host/nvme.ko\n"), 0o644)
	m, err := ResolveModules(dir, []string{"vfat", "usb_storage", "nvme", "e1000"})
	if err != nil {
		t.Fatal(err)
	}
	wantFiles := "kernel/drivers/usb/common/usb-common.ko kernel/drivers/usb/storage/usb-storage.ko kernel/fs/fat/fat.ko kernel/fs/fat/vfat.ko"
	if got := strings.Join(m.Files, " "); got != wantFiles {
		t.Errorf("files = %s\nwant %s", got, wantFiles)
	}
	if strings.Join(m.Builtin, " ") != "nvme" || strings.Join(m.Missing, " ") != "e1000" {
		t.Errorf("builtin %v missing %v, want [nvme] [e1000]", m.Builtin, m.Missing)
	}
	if strings.Join(m.Names, " ") != "vfat usb_storage nvme" {
		t.Errorf("names %v", m.Names)
	}
	if len(m.DepLines) != 4 || m.DepLines[0] != "kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko" ||
		m.DepLines[2] != "kernel/drivers/usb/storage/usb_storage.ko: kernel/drivers/usb/common/usb_common.ko" {
		t.Errorf("dep lines %q", m.DepLines)
	}
	if _, err := ResolveModules(t.TempDir(), []string{"vfat"}); err == nil || !strings.Contains(err.Error(), "depmod") {
		t.Errorf("missing modules.dep: err %v, want a hint to run depmod", err)
	}
}

func TestBadOptionsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.img")
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no output", Options{}, "-o"},
		{"bad compression", Options{Output: out, Compression: "lz4"}, "zstd, zstd-fast, gzip or none"},
		{"no modules.dep", Options{Output: out, ModulesDir: dir}, "modules.dep"},
		{"key not .pub", Options{Output: out, Keys: []string{"/etc/hostname"}}, ".pub"},
		{"file is a dir", Options{Output: out, Files: []string{"/etc"}}, "not a file"},
		{"dir without dest", Options{Output: out, Dirs: []string{dir}}, "HOST:DEST"},
		{"output dir missing", Options{Output: filepath.Join(dir, "nope", "x.img")}, "does not exist"},
		{"unknown rescue command", Options{Output: out, Commands: []string{"vim"}}, `rescue command "vim"`},
		{"binary not ELF", Options{Output: out, Binary: "/etc/hostname"}, "not an ELF executable"},
		{"binary not nodeinit", Options{Output: out, Binary: "/bin/true"}, "is not the nodeinit CLI"},
		// The test binary is a Go program, but not cmd/nodeinit: it cannot be /init.
		{"binary is another Go program", Options{Output: out}, "built from github.com/nodeinit/nodeinit/initramfs"},
	} {
		_, err := Build(context.Background(), tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("bad options left files behind: %v", entries)
	}
}

// TestArchiveCarriesSharedLibrariesAndRelativeLinks: a dynamically linked
// file given in Files brings the libraries ldd lists, at their host paths, and
// /init and the rescue commands are links relative to their directories, as
// mkuimage's uimage made them before packArchive replaced it.
func TestArchiveCarriesSharedLibrariesAndRelativeLinks(t *testing.T) {
	libs, err := sharedLibraries("/bin/true")
	if err != nil || len(libs) == 0 {
		t.Fatalf("shared libraries of /bin/true: %q, %v", libs, err)
	}
	out := filepath.Join(t.TempDir(), "i.cpio")
	if _, err := Build(context.Background(), Options{Output: out, Binary: nodeinitBinary(t), Compression: None,
		Files: []string{"/bin/true:usr/bin/true"}, Commands: []string{"ls"}}); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := readArchive(raw)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]cpio.Record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	for _, lib := range libs {
		// A library the host has as a link (/lib64/ld-linux-x86-64.so.2) stays one;
		// ldd lists its target too.
		if r, ok := byName[strings.TrimPrefix(lib, "/")]; !ok || (r.Mode&cpio.S_IFMT != cpio.S_IFREG && r.Mode&cpio.S_IFMT != cpio.S_IFLNK) {
			t.Errorf("library %s of /bin/true is not in the archive", lib)
		}
	}
	for name, want := range map[string]string{"init": "bin/nodeinit", "bbin/ls": "../bin/nodeinit", "bin/sh": "nodeinit"} {
		r, ok := byName[name]
		if !ok || r.Mode&cpio.S_IFMT != cpio.S_IFLNK {
			t.Errorf("%s is not a symlink in the archive", name)
			continue
		}
		target, _ := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		if string(target) != want {
			t.Errorf("%s links to %q, want %q", name, target, want)
		}
	}
	for _, dir := range []string{"usr", "usr/bin", "bbin", "bin"} {
		if r, ok := byName[dir]; !ok || r.Mode&cpio.S_IFMT != cpio.S_IFDIR {
			t.Errorf("directory %s is missing", dir)
		}
	}
}

// TestDynamicBinaryIsWarnedAbout: a static nodeinit builds without a warning;
// dynamic() tells a dynamically linked program (the host's /bin/true) from it.
func TestDynamicBinaryIsWarnedAbout(t *testing.T) {
	bin := nodeinitBinary(t)
	if dynamic(bin) {
		t.Errorf("%s (CGO_ENABLED=0) is taken for dynamically linked", bin)
	}
	if !dynamic("/bin/true") {
		t.Error("/bin/true is not taken for dynamically linked")
	}
	res, err := Build(context.Background(), Options{Output: filepath.Join(t.TempDir(), "i.img"), Binary: bin, Commands: []string{"gosh"}, Compression: ZstdFast})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 0 || strings.Contains(res.String(), "warning") {
		t.Errorf("a static binary gives warnings: %q", res.Warnings)
	}
}
