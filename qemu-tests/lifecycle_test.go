package qemutests

import (
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/internal/testloop"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// powerOnUntilOff boots from disk and lets the guest reboot by itself (a kernel panic
// reboots after panic=N) until it powers off.
func (n *node) powerOnUntilOff() *vm.VM {
	n.t.Helper()
	return vm.Start(n.t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, MemoryMiB: 1536, Timeout: 6 * time.Minute,
		Events: n.eventsFile()})
}

// espFile reads a file from the ESP of an installed disk image with mtools (the build
// machine's kernel has no vfat).
func espFile(t *testing.T, img, name string) string {
	t.Helper()
	cmd := exec.Command("mtype", "-i", img+"@@1M", "::"+name)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mtype %s: %v\n%s", name, err, out)
	}
	return string(out)
}

// TestUpgradeThenAutomaticRollback installs 1.0, upgrades to 2.0 by kernel argument from
// the 2.0 medium (slot b, persisted config kept, the image's migration applied), then
// upgrades to a 3.0 whose init crashes: after its tries run out the machine is back on
// 2.0 without help, the ledger names the rollback, and config is as 2.0 left it.
func TestUpgradeThenAutomaticRollback(t *testing.T) {
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "LIFE0001"})
	acts := "testos.action=show:/etc/testos/written,write:/etc/testos/written:kept,show:/etc/testos/migrated,bless," +
		"run:/usr/sbin/nodeinit:status,poweroff"
	v := n.installer("1.0", "install storage_init=serial:LIFE0001 BOOTIF=01-52-54-00-12-34-56 hostname=life1 "+acts)
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=life1`, 3*time.Minute)
	v.Expect(`TESTOS-WROTE /etc/testos/written`, 30*time.Second)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)

	v = n.installer("2.0", "upgrade nodeinit.onfail=poweroff")
	if p := v.ExpectPlan(3 * time.Minute); p.Action != "upgrade" || p.Slot != "b" {
		t.Errorf("the 2.0 medium plans %s into slot %q, want an upgrade into slot b", p.Action, p.Slot)
	}
	v.ExpectEvent("the migration", vm.InfoHas("migrate-config", `config snapshot "1.0" taken; applying 1 migrations`), 2*time.Minute)
	v.ExpectEvent("upgrade finished", vm.Finished, 2*time.Minute)
	waitExit(t, v)
	if entries := espFile(t, n.disks[0].Path, "/ledger.json"); !strings.Contains(entries, `"2.0"`) {
		t.Errorf("ledger does not record 2.0:\n%s", entries)
	}
	v = n.powerOn()
	v.Expect(`TESTOS version=2\.0 build=2\.0 slot=b hostname=life1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/testos/written "kept\\n"`, 30*time.Second)
	v.Expect(`TESTOS-SHOW /etc/testos/migrated "from-1\.0\\n"`, 30*time.Second)
	v.Expect(`TESTOS-BLESSED slot=b`, 30*time.Second)
	waitExit(t, v)

	v = n.installer("3.0", "upgrade nodeinit.tries=2 nodeinit.onfail=poweroff")
	v.ExpectEvent("upgrade finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	v = n.powerOnUntilOff()
	v.Expect(`TESTOS version=3\.0 build=3\.0 slot=a`, 3*time.Minute)
	v.Expect(`TESTOS-CRASH`, 30*time.Second)
	v.ExpectEvent("the rollback", vm.InfoHas("", "ROLLBACK from slot a to slot b"), 5*time.Minute)
	v.Expect(`TESTOS version=2\.0 build=2\.0 slot=b hostname=life1`, 2*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/testos/written "kept\\n"`, 30*time.Second)
	v.Expect(`TESTOS-SHOW /etc/testos/migrated "from-1\.0\\n"`, 30*time.Second)
	v.Expect(`(?m)^rollback [^\n]*: a -> b: entry node-a\S* \(version 3\.0\) ran out of tries`, time.Minute)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
	crashes := strings.Count(v.Output(), "TESTOS-CRASH")
	t.Logf("3.0 crashed %d times before the rollback", crashes)
	if crashes != 2 {
		t.Errorf("3.0 booted %d times; the upgrade's nodeinit.tries=2 allows 2", crashes)
	}
	ledger := espFile(t, n.disks[0].Path, "/ledger.json")
	if !strings.Contains(ledger, `"rollbacks"`) || !strings.Contains(ledger, `"from": "a"`) {
		t.Errorf("ledger does not name the rollback:\n%s", ledger)
	}
}

// TestUninstallLeavesOtherDisks installs onto one disk beside a second disk with an ext4
// filesystem, then uninstalls: wipefs and blkid find nothing on the install's disk, and
// the second disk is byte-identical.
func TestUninstallLeavesOtherDisks(t *testing.T) {
	other := vm.NewDisk(t, "other.img", 1<<30)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", "vmstore", other).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	otherHash := hashFile(t, other)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "UNINST01"},
		vm.Disk{Path: other, Interface: vm.Virtio, Serial: "OTHER001"})
	v := n.installer("1.0", "install storage_init=serial:UNINST01 hostname=gone1")
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)

	v = n.installer("1.0", "install uninstall nodeinit.onfail=poweroff")
	p := v.ExpectPlan(3 * time.Minute)
	if p.Action != "uninstall" || len(p.Destroys) != 1 || !strings.HasPrefix(p.Destroys[0], "/dev/nvme0n1") {
		t.Errorf("the uninstall plan does not destroy exactly the install's disk: %s, destroys %q", p.Action, p.Destroys)
	}
	e := v.ExpectEvent("the boot entries removed", vm.InfoHas("boot-order", "removed "), 2*time.Minute)
	if strings.HasPrefix(e.Message, "removed 0 ") {
		t.Errorf("uninstall removed no boot entry: %s", e.Message)
	}
	v.ExpectEvent("uninstall finished", vm.Finished, 2*time.Minute)
	waitExit(t, v)
	if out, _ := exec.Command("wipefs", "-n", n.disks[0].Path).CombinedOutput(); len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("wipefs still finds signatures after uninstall:\n%s", out)
	}
	if out, err := exec.Command("blkid", "-p", n.disks[0].Path).CombinedOutput(); err == nil {
		t.Errorf("blkid -p still finds something after uninstall:\n%s", out)
	}
	if hashFile(t, other) != otherHash {
		t.Errorf("uninstall changed the disk that was never part of the install")
	}
}

// TestStatelessWritesNothing runs the node from RAM: the OS comes up with the command
// line's hostname and every disk is byte-identical afterwards.
func TestStatelessWritesNothing(t *testing.T) {
	d1 := seededDisk(t, "a.img", 2<<30)
	d2 := vm.NewDisk(t, "b.img", 2<<30)
	before := []string{hashFile(t, d1), hashFile(t, d2)}
	n := newNode(t, vm.Disk{Path: d1, Interface: vm.NVMe, Serial: "STATE001"}, vm.Disk{Path: d2, Interface: vm.Virtio, Serial: "STATE002"})
	v := n.installer("1.0", "stateless hostname=ram1 testos.action=show:/etc/hostname,poweroff")
	if p := v.ExpectPlan(3 * time.Minute); p.Action != "stateless" || p.TargetPath() != "" {
		t.Errorf("plan: %s onto %q, want stateless onto no disk", p.Action, p.TargetPath())
	}
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=\S* hostname=ram1`, 2*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/hostname "ram1\\n"`, 30*time.Second)
	waitExit(t, v)
	if after := []string{hashFile(t, d1), hashFile(t, d2)}; after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("a stateless boot changed a disk")
	}
}

// TestInstallTwiceBootsInstead is the PXE loop guard: booting the same install line again
// on a machine that already holds that image boots the node instead of reinstalling.
func TestInstallTwiceBootsInstead(t *testing.T) {
	trigger := newTriggerServer(t)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "TWICE001"})
	line := fmt.Sprintf("install storage_init=serial:TWICE001 hostname=twice1 BOOTIF=01-%s "+
		"local_boot_trigger=http://10.0.2.2:%d/nopxe/@HOSTNAME@ testos.action=poweroff", strings.ReplaceAll(triggerMAC, ":", "-"), trigger.port)
	v := installerOnNet(n, "1.0", line, triggerMAC)
	v.ExpectEvent("the local_boot_trigger call", vm.InfoHas("report", fmt.Sprintf("local_boot_trigger http://10.0.2.2:%d/nopxe/twice1 called", trigger.port)), 3*time.Minute)
	v.ExpectEvent("install finished", vm.Finished, time.Minute)
	waitExit(t, v)
	if got := trigger.calls(); len(got) != 1 || got[0] != "/nopxe/twice1" {
		t.Errorf("local_boot_trigger calls after the install: %q, want one of /nopxe/twice1", got)
	}
	before := installState(t, n.disks[0].Path)
	v = installerOnNet(n, "1.0", line, triggerMAC)
	if p := v.ExpectPlan(3 * time.Minute); !slices.Contains(p.Warnings, "nvme0n1 already holds version 1.0: booting it instead of installing again") {
		t.Errorf("the second install's plan does not say it boots instead: %s, warnings %q", p.Action, p.Warnings)
	}
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=\S* hostname=twice1 `, 2*time.Minute)
	waitExit(t, v)
	// The node's own boot mounts config, logging and data read-write (their superblocks
	// change); what an install writes — the GPT, both slots and the ESP's files — must not.
	if after := installState(t, n.disks[0].Path); after != before {
		t.Errorf("the second install changed what an install writes:\nbefore: %s\nafter:  %s", before, after)
	}
	if got := trigger.calls(); len(got) != 1 {
		t.Errorf("the second boot called local_boot_trigger again: %q", got)
	}
	for _, e := range v.Events() {
		if e.Kind == stages.EventStart && slices.Contains([]string{"wipe", "partition", "filesystems", "write-slot", "copy-boot-files", "add-boot-entry"}, e.Stage) {
			t.Errorf("the second install ran stage %s", e.Stage)
		}
	}
}

// partExtent returns the byte offset and size of the partition named name in a disk
// image with 512-byte sectors, from sgdisk.
func partExtent(t *testing.T, img, name string) (offset, size int64) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-p", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk -p: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) >= 7 && f[len(f)-1] == name {
			var first, last int64
			fmt.Sscan(f[1], &first)
			fmt.Sscan(f[2], &last)
			return first * 512, (last - first + 1) * 512
		}
	}
	t.Fatalf("%s has no partition named %s:\n%s", img, name, out)
	return 0, 0
}

// partLoop attaches the partition named name of img to a loop device (detached at
// cleanup) and returns the device.
func partLoop(t *testing.T, img, name string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("loop devices need root")
	}
	off, size := partExtent(t, img, name)
	return testloop.Attach(t, img, "-o", fmt.Sprint(off), "--sizelimit", fmt.Sprint(size)).Dev
}

// dataFile reads a file from the node-data partition of img with debugfs; ok is false
// when the file does not exist.
func dataFile(t *testing.T, img, path string) (content string, ok bool) {
	t.Helper()
	loop := partLoop(t, img, "node-data")
	// The node powered off with node-data mounted: replay its journal first, as the
	// next mount would, or debugfs sees the filesystem as it was before the write.
	if out, err := exec.Command("e2fsck", "-E", "journal_only", "-y", loop).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -E journal_only on node-data: %v\n%s", err, out)
	}
	var stdout, stderr strings.Builder
	cmd := exec.Command("debugfs", "-R", "cat "+path, loop)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || strings.Contains(stderr.String(), "File not found") {
		return "", false
	}
	return stdout.String(), true
}

// TestReinstallKeepsDataOnlyWhenAsked installs, lets the node write a file on /data,
// reinstalls with nodeinit.keep=data (the file survives, everything else is new), then
// reinstalls without it (the file is gone).
func TestReinstallKeepsDataOnlyWhenAsked(t *testing.T) {
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("debugfs (e2fsprogs) not installed")
	}
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "REIN0001"})
	v := n.installer("1.0", "install storage_init=serial:REIN0001 hostname=rein1 testos.action=put:/data/keep.txt:precious,poweroff")
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=rein1 .*mounts=\S*/data:ext4`, 3*time.Minute)
	v.Expect(`TESTOS-PUT /data/keep.txt`, 30*time.Second)
	waitExit(t, v)
	if got, ok := dataFile(t, n.disks[0].Path, "/keep.txt"); !ok || got != "precious\n" {
		t.Fatalf("the node's file on /data is not on node-data: %q %v", got, ok)
	}

	v = n.installer("1.0", "reinstall nodeinit.keep=data hostname=rein2 nodeinit.onfail=poweroff")
	if p := v.ExpectPlan(3 * time.Minute); !slices.Contains(p.Keeps, "/dev/nvme0n1: node-data partition and its files") {
		t.Errorf("the reinstall's plan does not keep node-data: keeps %q", p.Keeps)
	}
	v.ExpectEvent("reinstall finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	checkInstalledDisk(t, n.disks[0].Path)
	if got, ok := dataFile(t, n.disks[0].Path, "/keep.txt"); !ok || got != "precious\n" {
		t.Errorf("reinstall with nodeinit.keep=data lost /data/keep.txt: %q %v", got, ok)
	}
	if ledger := espFile(t, n.disks[0].Path, "/ledger.json"); !strings.Contains(ledger, `"action": "reinstall"`) {
		t.Errorf("the ledger does not record the reinstall:\n%s", ledger)
	}

	v = n.installer("1.0", "reinstall hostname=rein3 nodeinit.onfail=poweroff")
	v.ExpectEvent("reinstall finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	if got, ok := dataFile(t, n.disks[0].Path, "/keep.txt"); ok {
		t.Errorf("reinstall without nodeinit.keep=data kept /data/keep.txt (%q)", got)
	}
}

// TestReinstallOverOVirtNode3 prepares an oVirt Node 3 style disk on the host (Root and
// RootBackup ext2 partitions and an LVM physical volume of the HostVG volume group;
// the host cannot create the LVs) and reinstalls over it: the plan calls it an old oVirt
// Node install, and afterwards no old signature is left.
func TestReinstallOverOVirtNode3(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("building the oVirt disk needs loop devices (root)")
	}
	for _, tool := range []string{"partx", "pvcreate", "vgcreate", "mkfs.ext2"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	img := vm.NewDisk(t, "ovirt.img", 12<<30)
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("sgdisk", "-n1:0:+1G", "-c1:Root", "-n2:0:+1G", "-c2:RootBackup", "-n3:0:+2G", "-c3:Config", "-n4:0:0", "-c4:HostVG", img)
	l := testloop.Attach(t, img)
	loop := l.Dev
	run("partx", "-a", loop)
	run("mkfs.ext2", "-q", "-L", "Root", loop+"p1")
	run("mkfs.ext2", "-q", "-L", "RootBackup", loop+"p2")
	run("mkfs.ext2", "-q", "-L", "CONFIG", loop+"p3")
	// No metadata backups in the host's /etc/lvm: the volume group is a test fixture.
	lvm := "backup { backup=0 archive=0 }"
	run("pvcreate", "--config", lvm, "-ff", "-y", loop+"p4")
	run("vgcreate", "--config", lvm, "HostVG", loop+"p4")
	if err := l.Detach(); err != nil {
		t.Fatal(err)
	}
	oldBackup, _ := partExtent(t, img, "RootBackup")
	oldPV, _ := partExtent(t, img, "HostVG")
	if !hasBytes(t, img, oldPV+512, "LABELONE") || !hasBytes(t, img, oldBackup+1024+56, "\x53\xef") {
		t.Fatalf("the oVirt fixture lacks its LVM label or ext2 superblock")
	}

	n := newNode(t, vm.Disk{Path: img, Interface: vm.NVMe, Serial: "OVIRT001"})
	v := n.installer("1.0", "reinstall storage_init=serial:OVIRT001 hostname=exovirt nodeinit.onfail=poweroff")
	if p := v.ExpectPlan(3 * time.Minute); !slices.ContainsFunc(p.Destroys, func(d string) bool { return strings.HasPrefix(d, "/dev/nvme0n1: old oVirt Node install") }) {
		t.Errorf("the plan does not call the disk an old oVirt Node install: destroys %q", p.Destroys)
	}
	v.ExpectEvent("reinstall finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	checkInstalledDisk(t, img)
	out, _ := exec.Command("wipefs", "-n", img).CombinedOutput()
	if strings.Contains(string(out), "LVM2") {
		t.Errorf("the whole disk still carries LVM:\n%s", out)
	}
	// The old LVM label and the RootBackup superblock now lie inside new partitions,
	// where blkid does not look: read their bytes.
	if hasBytes(t, img, oldPV+512, "LABELONE") {
		t.Errorf("the HostVG physical volume label survived the reinstall")
	}
	if hasBytes(t, img, oldBackup+1024+56, "\x53\xef") {
		t.Errorf("the RootBackup ext2 superblock survived the reinstall")
	}
	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=exovirt`, 3*time.Minute)
	v.Kill()
}

// hasBytes reports whether img holds want at offset.
func hasBytes(t *testing.T, img string, offset int64, want string) bool {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, len(want))
	if _, err := f.ReadAt(buf, offset); err != nil {
		t.Fatalf("read %s at %d: %v", img, offset, err)
	}
	return string(buf) == want
}

// installState fingerprints what an install writes: the GPT (first 1 MiB), both root
// slots, and the ESP's ledger and loader entries.
func installState(t *testing.T, img string) string {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, io.NewSectionReader(f, 0, 1<<20))
	for _, slot := range []string{"node-root-a", "node-root-b"} {
		off, size := partExtent(t, img, slot)
		io.Copy(h, io.NewSectionReader(f, off, size))
	}
	return fmt.Sprintf("gpt+slots=%x ledger=%x entries=%q", h.Sum(nil)[:8],
		sha256.Sum256([]byte(espFile(t, img, "/ledger.json"))), strings.Fields(mdir(t, img, "/loader/entries")))
}

// triggerMAC is the NIC of installerOnNet.
const triggerMAC = "52:54:00:12:34:77"

// installerOnNet boots the installer like node.installer, with a NIC of the given MAC
// on QEMU's user network. It is unrestricted only so that the guest reaches the
// test's HTTP server on the host's loopback through the gateway address 10.0.2.2.
func installerOnNet(n *node, version, args, mac string) *vm.VM {
	n.t.Helper()
	initrd, err := n.f.Installer(version)
	if err != nil {
		n.t.Fatal(err)
	}
	return vm.Start(n.t, vm.Config{Kernel: n.f.Debian.Vmlinuz, Initramfs: initrd, Append: "console=ttyS0 panic=5 nodeinit.events=ttyS1 " + args,
		OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1536, Events: n.eventsFile(),
		ExtraArgs: []string{"-netdev", "user,id=n0,restrict=off", "-device", "virtio-net-pci,netdev=n0,mac=" + mac}})
}

// triggerServer records the paths a provisioning server's local_boot_trigger receives.
type triggerServer struct {
	port int
	mu   sync.Mutex
	got  []string
}

func newTriggerServer(t *testing.T) *triggerServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &triggerServer{port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, r.URL.Path)
		s.mu.Unlock()
		io.WriteString(w, "ok\n")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *triggerServer) calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}
