package blackbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/internal/testcmd"

	"github.com/nodeinit/nodeinit/crash"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/device/recorder"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/stages"
)

// diskSize is the test disk: big enough for the default layout's minimums with
// storage_vol shrinking the rest. The image is sparse.
const diskSize = 4 << 30

// vols keeps the partitions small (swap, root, config, logging, data in MiB, oVirt's
// field order after the boot and root sizes), so mkfs and the crash replay stay fast.
const vols = "storage_vol=:16:256:16:64:-1"

// env is one test machine: signing keys, bundles, and disks made of sparse files.
type env struct {
	t    *testing.T
	dir  string
	keys string // directory of trusted *.pub
	priv string
	// biosLoader, when set, is the directory of GRUB images the probe reports
	// (Facts.BIOSLoader), as an initramfs built with --bios-loader would.
	biosLoader string
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices, FUSE, mounts)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse")
	}
	for _, tool := range []string{"mke2fs", "mksquashfs", "losetup", "sgdisk", "blkid", "e2fsck", "fsck.vfat"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

func newEnv(t *testing.T) *env {
	t.Helper()
	needRoot(t)
	e := &env{t: t, dir: t.TempDir()}
	e.keys = filepath.Join(e.dir, "keys")
	if err := os.MkdirAll(e.keys, 0o755); err != nil {
		t.Fatal(err)
	}
	e.priv = filepath.Join(e.dir, "node.key")
	if err := image.GenerateKey(filepath.Join(e.keys, "node.pub"), e.priv, ""); err != nil {
		t.Fatal(err)
	}
	return e
}

// release describes one bundle to build.
type release struct {
	version    string
	migrations []image.Migration
	fillerMiB  int    // incompressible rootfs content, so the slot write has many chunks
	adminHash  string // the bundle's adminpw.hash (nodeinit.adminpw=bundle), when set
}

// bundle builds and signs a node image bundle of r and returns its directory.
func (e *env) bundle(r release) string {
	t := e.t
	t.Helper()
	src := filepath.Join(e.dir, "src-"+r.version)
	root := filepath.Join(src, "root")
	for _, d := range []string{"etc", "usr/bin"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("NAME=testnode\nVERSION="+r.version+"\n"), 0o644)
	if r.fillerMiB > 0 {
		os.WriteFile(filepath.Join(root, "usr/bin/filler"), random(t, r.fillerMiB<<20), 0o644)
	}
	files := map[string][]byte{
		"vmlinuz":    append([]byte("kernel "+r.version+"\n"), random(t, 256<<10)...),
		"initrd.img": append([]byte("initrd "+r.version+"\n"), random(t, 512<<10)...),
		"loader.efi": append([]byte("MZ loader "+r.version+"\n"), random(t, 64<<10)...),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(src, n), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	adminHashFile := ""
	if r.adminHash != "" {
		adminHashFile = filepath.Join(src, "admin.hash")
		if err := os.WriteFile(adminHashFile, []byte(r.adminHash+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(e.dir, "bundle-"+r.version)
	_, err := image.Build(image.BuildOptions{Root: root, Kernel: filepath.Join(src, "vmlinuz"), Initrd: filepath.Join(src, "initrd.img"),
		Loader: filepath.Join(src, "loader.efi"), Name: "testnode", Version: r.version, Migrations: r.migrations, Out: out,
		Created: time.Unix(1700000000, 0), Compression: "gzip", AdminHashFile: adminHashFile})
	if err != nil {
		t.Fatalf("build bundle %s: %v", r.version, err)
	}
	if err := image.Sign(out, e.priv, ""); err != nil {
		t.Fatalf("sign bundle %s: %v", r.version, err)
	}
	return out
}

func random(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// newDisk makes a sparse disk image of diskSize bytes.
func (e *env) newDisk(name string) string {
	p := filepath.Join(e.dir, name)
	f, err := os.Create(p)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(diskSize); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// machine is a recorder serving a disk image, closed when the test ends.
type machine struct {
	*recorder.Recorder
	name string // the loop device's kernel name, the disk the plans name
}

func (e *env) record(img string, sector int) *machine {
	e.t.Helper()
	r, err := recorder.New(recorder.Options{Image: img, SectorSize: sector, Dir: e.dir})
	if err != nil {
		e.t.Fatalf("recorder: %v", err)
	}
	e.t.Cleanup(func() {
		if err := r.Close(); err != nil {
			e.t.Errorf("close recorder: %v", err)
		}
	})
	m := &machine{Recorder: r, name: filepath.Base(r.Loop())}
	m.showPartitions(e.t)
	return m
}

// showPartitions does what the boot kernel's partition scan does and this
// host's kernel does not: it makes the kernel show the partitions of the GPT
// on the disk, if there is one (BLKPG; nothing is written to the disk). It
// returns the partitions' device paths by PARTLABEL.
func (m *machine) showPartitions(t *testing.T) map[string]string {
	t.Helper()
	b, err := m.OpenBlockReadOnly(m.Loop(), 512)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := diskio.ReadGPTOf(b)
	b.Close()
	if err != nil {
		return nil // a blank disk
	}
	var kp []device.Partition
	byLabel := map[string]string{}
	for _, p := range parts {
		kp = append(kp, device.Partition{Number: p.Number, StartByte: p.StartByte, SizeBytes: p.SizeBytes})
		byLabel[p.PartLabel] = p.Path
	}
	if err := m.SetPartitions(m.Loop(), kp); err != nil {
		t.Fatal(err)
	}
	if err := m.WaitPartitions(m.Loop(), kp); err != nil {
		t.Fatal(err)
	}
	return byLabel
}

// result is one run of the engine.
type result struct {
	plan   *plan.Blueprint
	err    error
	events *stages.Collector
	out    string
}

// apply runs the command line's action through the engine against dev, whose
// only visible disk is name. The line's storage_init and image are the test's.
func (e *env) apply(dev device.Machine, name, line string) result {
	e.t.Helper()
	var out bytes.Buffer
	c := &stages.Collector{}
	bp, err := stages.Apply(context.Background(), stages.ApplyOptions{
		Cmdline: line, Dev: dev, OnlyDisks: []string{name}, KeysDir: e.keys,
		RunDir: filepath.Join(e.dir, "run"), Sink: c, Out: &out,
		Fetch: func(context.Context, string) error { return nil },
		// The recorder serves EFI variables, so the EFI steps run and are recorded.
		AdjustFacts: func(f *plan.Facts) { f.EFI, f.BIOSLoader = true, e.biosLoader },
	})
	return result{plan: bp, err: err, events: c, out: out.String()}
}

// ran lists the stages that ran to the end, in order.
func (r result) ran() []string {
	var names []string
	for _, ev := range r.events.Events() {
		if ev.Kind == stages.EventDone {
			names = append(names, ev.Stage)
		}
	}
	return names
}

// run is testcmd.Run.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testcmd.Run(t, name, args...)
}

func mustRun(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func copyRange(t *testing.T, src, dst string, off, n int64) {
	t.Helper()
	if err := crash.CopyRange(dst, src, off, n); err != nil {
		t.Fatal(err)
	}
}
