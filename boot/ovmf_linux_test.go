package boot_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/internal/testloop"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// attachESP attaches the ESP partition of img (1 MiB offset) to a loop device
// it creates, and detaches it when the test ends.
func attachESP(t *testing.T, img string, size int64) *testloop.Loop {
	t.Helper()
	return testloop.Attach(t, img, "-o", "1048576", "--sizelimit", itoa(size))
}

// This host's kernel has no vfat, so the FAT side goes through mtools: the
// ESP tree is built in a directory with this package, then copied into the
// image with mcopy, and copied back out after the VM ran.
const mtoolsOffset = "@@1M"

func putESP(t *testing.T, img, dir string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range des {
		run(t, "mcopy", "-s", "-o", "-i", img+mtoolsOffset, filepath.Join(dir, d.Name()), "::/")
	}
}

func getESP(t *testing.T, img string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"::/loader", "::/" + boot.LedgerFile, "::/" + boot.LedgerBackupFile} {
		run(t, "mcopy", "-s", "-n", "-i", img+mtoolsOffset, p, dir+"/")
	}
	return dir
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestOVMFBootCountingRollback lays out a real FAT ESP with this package
// (systemd-boot from Debian, slot b blessed, slot a an upgrade with 2 tries
// whose test OS crashes), boots it under OVMF, and checks that systemd-boot
// tries a twice, falls back to b, and that DetectRollback then reports it.
func TestOVMFBootCountingRollback(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM three times (about a minute under TCG)")
	}
	t.Parallel()
	a := ovmfArtifacts(t)

	work := t.TempDir()
	initrd := buildInitrd(t, "github.com/nodeinit/nodeinit/testos", "-X main.version=9")
	manifest := filepath.Join(work, "manifest.json")
	os.WriteFile(manifest, []byte(`{"version":"test"}`), 0o644)

	// A GPT disk with one ESP from 1 MiB to the end.
	const diskSize = 128 << 20
	img := vm.NewDisk(t, "esp.img", diskSize)
	run(t, "sgdisk", "-n", "1:2048:0", "-t", "1:ef00", "-c", "1:NODE-ESP", img)
	espSize := int64(diskSize - 2<<20) // 1 MiB head, 1 MiB (less) tail for the backup GPT
	dev := attachESP(t, img, espSize)
	run(t, "mkfs.vfat", "-F", "32", "-n", "NODE-ESP", dev.Dev)
	esp := t.TempDir()

	if err := boot.InstallLoaderWith(boot.DirFS(esp), a.SystemdBoot, boot.LoaderConfig{Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	for _, slot := range []string{"a", "b"} {
		if err := boot.InstallSlot(boot.DirFS(esp), slot, a.Vmlinuz, initrd, manifest); err != nil {
			t.Fatal(err)
		}
	}
	// The running, blessed slot is b; the upgrade goes to a. By file name
	// node-b sorts before node-a, so only our version ordering puts a first.
	if err := boot.WriteEntry(boot.DirFS(esp), boot.Entry{Slot: "b", Version: "1.0",
		Options: []string{"console=ttyS0", "testos.action=poweroff"}}); err != nil {
		t.Fatal(err)
	}
	if err := boot.WriteEntry(boot.DirFS(esp), boot.Entry{Slot: "a", Version: "2.0", Tries: 2,
		Options: []string{"console=ttyS0", "panic=1", "testos.action=crash"}}); err != nil {
		t.Fatal(err)
	}
	l := boot.NewLedger("ovmf-test")
	now := time.Now()
	l.RecordSlot(now, "b", boot.SlotGood, "1.0", "")
	l.RecordSlot(now, "a", boot.SlotReady, "2.0", "")
	l.SetActive("b")
	if err := l.Write(boot.DirFS(esp)); err != nil {
		t.Fatal(err)
	}
	putESP(t, img, esp)
	run(t, "fsck.vfat", "-n", dev.Dev)
	if err := dev.Detach(); err != nil {
		t.Fatal(err)
	}

	v := vm.Start(t, vm.Config{
		OVMFCode: a.OVMFCode, OVMFVars: vm.NewVars(t, a.OVMFVars),
		Disks:   []vm.Disk{{Path: img, Interface: vm.Virtio, Serial: "esp0"}},
		Timeout: 6 * time.Minute,
	})
	for try := 1; try <= 2; try++ {
		v.Expect(`TESTOS version=9 build=9 slot=a `, 3*time.Minute)
		v.Expect(`TESTOS-CRASH`, time.Minute)
	}
	v.Expect(`TESTOS version=9 build=9 slot=b `, 3*time.Minute)
	v.Expect(`TESTOS-READY`, time.Minute)
	v.WaitExit(2 * time.Minute)

	dev = attachESP(t, img, espSize)
	run(t, "fsck.vfat", "-n", dev.Dev)
	esp = getESP(t, img)
	entries, err := boot.Entries(boot.DirFS(esp))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range entries {
		files = append(files, e.File)
	}
	if !slices.Equal(files, []string{"node-b.conf", "node-a+0-2.conf"}) {
		t.Fatalf("entries after the VM = %v, want [node-b.conf node-a+0-2.conf]", files)
	}
	ledger, err := boot.ReadLedger(boot.DirFS(esp))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := boot.DetectRollback("b", entries, ledger)
	if err != nil || rb == nil || rb.From != "a" || rb.To != "b" {
		t.Fatalf("DetectRollback = %+v, %v", rb, err)
	}
	t.Logf("rollback: %s", rb.Reason)
}

// ovmfArtifacts skips unless root, the tools and the cached Debian files are there.
func ovmfArtifacts(t *testing.T) vm.Artifacts {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	for _, tool := range []string{"sgdisk", "mkfs.vfat", "fsck.vfat", "losetup", "cpio", "mcopy"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	vm.SkipWithoutQEMU(t)
	a, err := vm.Cached(vm.DefaultCacheDir())
	if err != nil {
		t.Skipf("no cached Debian kernel/OVMF/systemd-boot (make fetch): %v", err)
	}
	return a
}

// buildInitrd builds pkg statically and packs it as /init of an initramfs,
// with extra files copied to its root.
func buildInitrd(t *testing.T, pkg, ldflags string, extra ...string) string {
	t.Helper()
	work := t.TempDir()
	initDir := filepath.Join(work, "root")
	os.MkdirAll(initDir, 0o755)
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	build := exec.Command(gobin, "build", "-ldflags", ldflags, "-o", filepath.Join(initDir, "init"), pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	names := []string{"init"}
	for _, e := range extra {
		data, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(initDir, filepath.Base(e)), data, 0o644)
		names = append(names, filepath.Base(e))
	}
	initrd := filepath.Join(work, "initrd.img")
	cp := exec.Command("sh", "-c", "printf '%s\\n' "+strings.Join(names, " ")+" | cpio -o -H newc --quiet > "+initrd)
	cp.Dir = initDir
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v\n%s", err, out)
	}
	return initrd
}

// TestOVMFFirmwareBootEntry creates our Boot#### entry from inside a UEFI
// guest through efivarfs (InstallBootEntry), reboots, and checks that the
// firmware booted through that entry (BootCurrent names it).
func TestOVMFFirmwareBootEntry(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM twice")
	}
	t.Parallel()
	a := ovmfArtifacts(t)
	efivarfsKO := filepath.Join(a.ModulesDir, "kernel/fs/efivarfs/efivarfs.ko")
	if _, err := os.Stat(efivarfsKO); err != nil {
		t.Skipf("efivarfs module: %v", err)
	}
	initrd := buildInitrd(t, "github.com/nodeinit/nodeinit/boot/internal/efiguest", "", efivarfsKO)
	const (
		diskSize = 128 << 20
		espStart = 2048
		espSize  = 126 * 2048 // sectors
		espGUID  = "6b1d3c8e-5a0f-4e61-9d2b-0c7f3e2a9b14"
	)
	img := vm.NewDisk(t, "esp.img", diskSize)
	run(t, "sgdisk", "-n", "1:2048:+126M", "-t", "1:ef00", "-u", "1:"+espGUID, "-c", "1:NODE-ESP", img)
	dev := attachESP(t, img, espSize*512)
	run(t, "mkfs.vfat", "-F", "32", "-n", "NODE-ESP", dev.Dev)
	esp := t.TempDir()
	if err := boot.InstallLoaderWith(boot.DirFS(esp), a.SystemdBoot, boot.LoaderConfig{Timeout: 0}); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(t.TempDir(), "manifest.json")
	os.WriteFile(manifest, []byte("{}"), 0o644)
	if err := boot.InstallSlot(boot.DirFS(esp), "a", a.Vmlinuz, initrd, manifest); err != nil {
		t.Fatal(err)
	}
	loc := "1:" + itoa(espStart) + ":" + itoa(espSize) + ":" + espGUID
	if err := boot.WriteEntry(boot.DirFS(esp), boot.Entry{Slot: "a", Version: "1", Options: []string{"console=ttyS0", "efiguest.esp=" + loc}}); err != nil {
		t.Fatal(err)
	}
	putESP(t, img, esp)
	run(t, "fsck.vfat", "-n", dev.Dev)

	v := vm.Start(t, vm.Config{
		OVMFCode: a.OVMFCode, OVMFVars: vm.NewVars(t, a.OVMFVars),
		Disks:   []vm.Disk{{Path: img, Interface: vm.Virtio, Serial: "esp0"}},
		Timeout: 5 * time.Minute,
	})
	v.Expect(`EFIGUEST-BOOTED-OTHER`, 3*time.Minute)
	m := v.Expect(`EFIGUEST-INSTALLED (Boot[0-9A-F]{4}) order=\[([0-9A-F]{4})`, time.Minute)
	if "Boot"+m[2] != m[1] {
		t.Errorf("our entry %s is not first in BootOrder (first is %s)", m[1], m[2])
	}
	got := v.Expect(`EFIGUEST-BOOTED-OURS (Boot[0-9A-F]{4})`, 3*time.Minute)
	if got[1] != m[1] {
		t.Errorf("firmware booted %s, want our %s", got[1], m[1])
	}
	t.Logf("%s; next boot: %s", m[0], got[0])
	v.WaitExit(time.Minute)
}
