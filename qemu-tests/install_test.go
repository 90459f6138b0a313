package qemutests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/internal/testloop"
	"github.com/nodeinit/nodeinit/qemu-tests/fixture"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// adminHash is a SHA-512 crypt hash (openssl passwd -6 -salt demo nodeinit).
const adminHash = "$6$demo$VkuVXfxR29AghwdAr6JFDpWSLMAVxBt.X0WLj/CSLdvjjL6cCqsq/lD1WmxjIY8w98mCIZcQ7nl0tonW/bTKp1"

// node is one test machine: its disks and its firmware variables survive power cycles.
type node struct {
	t     *testing.T
	f     *fixture.Artifacts
	disks []vm.Disk
	vars  string
	dir   string // event streams
	boots int
}

func newNode(t *testing.T, disks ...vm.Disk) *node {
	f := fixtures(t)
	return &node{t: t, f: f, disks: disks, vars: vm.NewVars(t, f.Debian.OVMFVars), dir: t.TempDir()}
}

// installer boots the installer initrd of version with the given kernel arguments.
func (n *node) installer(version, args string) *vm.VM {
	n.t.Helper()
	initrd, err := n.f.Installer(version)
	if err != nil {
		n.t.Fatal(err)
	}
	return n.installerFrom(initrd, args)
}

// installerFrom boots the installer initrd at path with the given kernel arguments.
func (n *node) installerFrom(initrd, args string) *vm.VM {
	n.t.Helper()
	return vm.Start(n.t, vm.Config{Kernel: n.f.Debian.Vmlinuz, Initramfs: initrd, Append: "console=ttyS0 panic=5 nodeinit.events=ttyS1 " + args,
		OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1536, Events: n.eventsFile()})
}

// eventsFile is a new file for one boot's event stream (the second serial port).
func (n *node) eventsFile() string {
	n.boots++
	return filepath.Join(n.dir, fmt.Sprintf("events-%d.jsonl", n.boots))
}

// expectStages waits for the done event of each stage, in order.
func expectStages(v *vm.VM, timeout time.Duration, names ...string) {
	for _, s := range names {
		v.ExpectEvent(s+" done", vm.StageDone(s), timeout)
	}
}

// powerOn boots the machine from its disks through the firmware, as after a power cycle.
func (n *node) powerOn() *vm.VM {
	n.t.Helper()
	return vm.Start(n.t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1536,
		Events: n.eventsFile()})
}

// espInstallLog reads the event log the report stage of an install saved under the
// ESP's node/log (mtools, as espFile).
func espInstallLog(t *testing.T, img string) string {
	t.Helper()
	cmd := exec.Command("mdir", "-b", "-i", img+"@@1M", "::/node/log")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mdir /node/log: %v\n%s", err, out)
	}
	for _, name := range strings.Fields(string(out)) {
		if strings.HasSuffix(name, "-install.jsonl") {
			return espFile(t, img, "/node/log/"+path.Base(strings.TrimPrefix(name, "::")))
		}
	}
	t.Fatalf("no install log under the ESP's /node/log: %s", out)
	return ""
}

func waitExit(t *testing.T, v *vm.VM) {
	t.Helper()
	if err := v.WaitExit(2 * time.Minute); err != nil {
		t.Fatalf("qemu did not end: %v\n%s", err, tail(v.Output(), 30))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testosActions tells the test OS what to do on every boot: show whether the file written
// on an earlier boot is there, write (and persist) it, show the seeded hostname and
// network config, then power off.
const testosActions = "testos.action=show:/etc/testos/written,write:/etc/testos/written:first-boot," +
	"show:/etc/hostname,show:/etc/systemd/network,poweroff"

// TestInstallNVMeThenBoot installs onto a blank NVMe disk, then power-cycles twice: the node
// boots through OVMF, systemd-boot and our initramfs into the test OS from slot a with the
// hostname and network config from the command line, and on the second boot a file the
// test OS persisted on the first is still there. Independent tools check the disk.
func TestInstallNVMeThenBoot(t *testing.T) {
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "NODE0001"})
	v := n.installer("1.0", "install storage_init=serial:NODE0001 BOOTIF=01-52-54-00-12-34-56 adminpw="+adminHash+
		" hostname=node1.example.com dns=192.0.2.53 "+testosActions)
	expectStages(v, 3*time.Minute, "network", "probe", "partition", "filesystems")
	v.ExpectEvent("write-slot progress", vm.StageIs("write-slot", stages.EventProgress), 3*time.Minute)
	expectStages(v, 3*time.Minute, "write-slot", "copy-boot-files", "seed-config", "add-boot-entry", "boot-order", "report")
	v.ExpectEvent("reboot start", vm.StageIs("reboot", stages.EventStart), time.Minute)
	var timing []string
	for _, e := range v.Events() {
		if e.Kind == stages.EventDone {
			timing = append(timing, fmt.Sprintf("%s %.2fs", e.Stage, e.Duration.Seconds()))
		}
		// Nothing nodeinit reports may hold the hash.
		if b, _ := json.Marshal(e); strings.Contains(string(b), "$6$demo$") {
			t.Errorf("a secret reached an event: %s", b)
		}
	}
	t.Logf("install stage timing (guest clock, TCG): %s", strings.Join(timing, ", "))
	for _, line := range strings.Split(v.Output(), "\n") {
		// The kernel echoes its own command line; nothing nodeinit prints may hold the hash.
		line = strings.TrimSpace(line)
		if strings.Contains(line, "$6$demo$") && strings.HasPrefix(line, "nodeinit") {
			t.Errorf("a secret reached the console: %q", line)
		}
	}
	waitExit(t, v)
	checkInstalledDisk(t, n.disks[0].Path)
	// The report stage saved the run's event log on the ESP, up to its own start:
	// the JSON lines are written from a queue, which it flushes first.
	saved := espInstallLog(t, n.disks[0].Path)
	for _, want := range []string{`"stage":"boot-order","kind":"done"`, `"stage":"report","kind":"start"`} {
		if !strings.Contains(saved, want) {
			t.Errorf("the event log saved on the ESP lacks %s; it ends:\n%s", want, tail(saved, 5))
		}
	}
	if keep := os.Getenv("NODEINIT_KEEP_DISK"); keep != "" {
		exec.Command("cp", "--sparse=always", n.disks[0].Path, keep).Run()
	}

	v = n.powerOn()
	v.Expect(`Boot\d+ "nodeinit"`, 2*time.Minute)
	root := v.ExpectEvent("mount-root done", vm.StageDone("mount-root"), 2*time.Minute)
	v.ExpectEvent("switch-root start", vm.StageIs("switch-root", stages.EventStart), time.Minute)
	t.Logf("normal boot: mount-root took %s (guest clock, TCG)", root.Duration)
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=node1\.example\.com persisted=\S*/etc/hostname`, time.Minute)
	v.Expect(`TESTOS-SHOW /etc/testos/written missing`, 30*time.Second)
	v.Expect(`TESTOS-WROTE /etc/testos/written`, 30*time.Second)
	v.Expect(`TESTOS-SHOW /etc/hostname "node1\.example\.com\\n"`, 30*time.Second)
	v.Expect(`TESTOS-SHOW /etc/systemd/network dir=\S*\.network`, 30*time.Second)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)

	v = n.powerOn()
	v.Expect(`TESTOS-SHOW /etc/testos/written "first-boot\\n"`, 3*time.Minute)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
}

// TestInstall4KVirtio installs onto a virtio disk with 4096-byte sectors and boots it.
func TestInstall4KVirtio(t *testing.T) {
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "virtio4k.img", 16<<30), Interface: vm.Virtio, Serial: "VIRTIO4K01", SectorSize: 4096})
	v := n.installer("1.0", "install storage_init=virtio:VIRTIO4K01 BOOTIF=link hostname=node4k testos.action=poweroff")
	p := v.ExpectPlan(3 * time.Minute)
	if !slices.ContainsFunc(p.Steps, func(s vm.PlanStep) bool {
		return s.Name == "partition" && strings.Contains(s.Description, "(4096-byte sectors) on /dev/vda")
	}) {
		t.Errorf("the plan does not write a 4096-byte-sector GPT on /dev/vda: %+v", p.Steps)
	}
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	checkInstalledDiskSectors(t, n.disks[0].Path, 4096)
	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=node4k`, 3*time.Minute)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
}

// TestAmbiguousDisksRefused gives storage_init a glob that matches two identical disks: the
// failure screen names both, and both disks are byte-identical to before. Such a line would
// call for the installer screen; nodeinit.interactive=0 is the unattended line that refuses.
func TestAmbiguousDisksRefused(t *testing.T) {
	d1 := seededDisk(t, "a.img", 1<<30)
	d2 := seededDisk(t, "b.img", 1<<30)
	before := []string{hashFile(t, d1), hashFile(t, d2)}
	n := newNode(t, vm.Disk{Path: d1, Interface: vm.NVMe, Serial: "TWIN0001"}, vm.Disk{Path: d2, Interface: vm.NVMe, Serial: "TWIN0002"})
	v := n.installer("1.0", "install storage_init=/dev/nvme* nodeinit.interactive=0 nodeinit.onfail=poweroff")
	v.Expect(early.FailureScreenMarker, 3*time.Minute)
	screen := v.Expect(`(?s)What went wrong:(.*?)Next:`, 30*time.Second)[1]
	for _, want := range []string{"/dev/nvme0n1", "/dev/nvme1n1", "TWIN0001", "TWIN0002", "storage_init"} {
		if !strings.Contains(screen, want) {
			t.Errorf("failure screen does not name %s:\n%s", want, screen)
		}
	}

	waitExit(t, v)
	after := []string{hashFile(t, d1), hashFile(t, d2)}
	if before[0] != after[0] || before[1] != after[1] {
		t.Fatalf("a refused install changed a disk: before %v after %v", before, after)
	}
}

// TestBreakBeforePartition stops in the rescue shell before the partition stage, the first
// write of an install on a blank disk: nothing has been written when the shell opens, nor
// after it powers the machine off.
func TestBreakBeforePartition(t *testing.T) {
	d := vm.NewDisk(t, "nvme.img", 12<<30)
	before := hashFile(t, d)
	n := newNode(t, vm.Disk{Path: d, Interface: vm.NVMe, Serial: "BREAK001"})
	v := n.installer("1.0", "install storage_init=serial:BREAK001 nodeinit.break=partition")
	v.ExpectEvent("break before partition", vm.StageIs("partition", stages.EventBreak), 3*time.Minute)
	v.Expect(early.RescueShellBanner, 30*time.Second)
	if after := hashFile(t, d); after != before {
		t.Fatalf("the disk changed before the break stage ran")
	}
	time.Sleep(2 * time.Second)
	v.Send("ls /run/nodeinit\r")
	v.Expect(`facts\.json`, 30*time.Second)
	v.Send("poweroff\r")
	waitExit(t, v)
	if after := hashFile(t, d); after != before {
		t.Fatalf("the disk changed although the install never ran past the break")
	}
}

// TestForeignDiskRefusedUnchanged: a disk holding bytes nodeinit did not write is not
// installed over without nodeinit.wipe naming it; the failure screen gives that exact
// argument, and the disk is byte-for-byte unchanged.
func TestForeignDiskRefusedUnchanged(t *testing.T) {
	d := seededDisk(t, "nvme.img", 12<<30)
	before := hashFile(t, d)
	n := newNode(t, vm.Disk{Path: d, Interface: vm.NVMe, Serial: "FOREIGN1"})
	v := n.installer("1.0", "install storage_init=serial:FOREIGN1 nodeinit.onfail=poweroff")
	v.Expect(early.FailureScreenMarker, 3*time.Minute)
	v.Expect(`Kernel argument to add:\s+nodeinit\.wipe=FOREIGN1`, 30*time.Second)
	waitExit(t, v)
	if after := hashFile(t, d); after != before {
		t.Fatalf("a refused install changed the foreign disk")
	}
}

// seededDisk makes a sparse disk image with recognisable bytes at its start and end.
func seededDisk(t *testing.T, name string, size int64) string {
	t.Helper()
	p := vm.NewDisk(t, name, size)
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := []byte(strings.Repeat(fmt.Sprintf("foreign data on %s ", name), 4096))
	f.WriteAt(block, 0)
	f.WriteAt(block, size-int64(len(block)))
	return p
}

// hashFile is vm.Fingerprint of the disk image p: equal when the disk was left alone.
func hashFile(t *testing.T, p string) string {
	t.Helper()
	fp, err := vm.Fingerprint(p)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

// sha256File is the hex SHA-256 of the file p's bytes.
func sha256File(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// checkInstalledDisk asks independent tools about the installed image: sgdisk validates the
// GPT and finds our partition names; fsck.vfat and e2fsck check the ESP and config
// filesystems through loop devices at the partitions' offsets.
func checkInstalledDisk(t *testing.T, img string) {
	t.Helper()
	checkInstalledDiskSectors(t, img, 512)
}

// checkInstalledDiskSectors is checkInstalledDisk for a disk of the given logical sector
// size. A 4K-native image is read through a loop device of that block size, so sgdisk
// reads its GPT as the guest did.
func checkInstalledDiskSectors(t *testing.T, img string, sector int64) {
	t.Helper()
	table := img
	if sector != 512 {
		if os.Geteuid() != 0 {
			t.Logf("%s: a %d-byte-sector GPT is checked through a loop device, which needs root", img, sector)
			return
		}
		l := testloop.Attach(t, img, "-r", "--sector-size", fmt.Sprint(sector))
		defer l.Detach()
		table = l.Dev
	}
	out, err := exec.Command("sgdisk", "-v", table).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v %s: %v\n%s", img, err, out)
	}
	out, err = exec.Command("sgdisk", "-p", table).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk -p: %v\n%s", err, out)
	}
	if want := fmt.Sprintf("Sector size (logical/physical): %d/", sector); sector != 512 && !strings.Contains(string(out), want) {
		t.Errorf("%s: sgdisk does not read %d-byte sectors:\n%s", img, sector, out)
	}
	for _, name := range []string{"NODE-ESP", "node-root-a", "node-root-b", "node-config", "node-logging", "node-swap", "node-data"} {
		if !strings.Contains(string(out), name) {
			t.Errorf("GPT lacks %s:\n%s", name, out)
		}
	}
	if os.Geteuid() != 0 {
		return
	}
	checks := map[string][]string{"1": {"fsck.vfat", "-n"}, "4": {"e2fsck", "-fn"}}
	for part, tool := range checks {
		info, err := exec.Command("sgdisk", "-i", part, table).CombinedOutput()
		if err != nil {
			t.Fatalf("sgdisk -i %s: %v", part, err)
		}
		m := regexp.MustCompile(`First sector: (\d+).*\nLast sector: (\d+)`).FindStringSubmatch(string(info))
		if m == nil {
			t.Fatalf("no extent for partition %s:\n%s", part, info)
		}
		var first, last int64
		fmt.Sscan(m[1], &first)
		fmt.Sscan(m[2], &last)
		l := testloop.Attach(t, img, "-r", "-o", fmt.Sprint(first*sector), "--sizelimit", fmt.Sprint((last-first+1)*sector))
		out, err := exec.Command(tool[0], append(tool[1:], l.Dev)...).CombinedOutput()
		if err := l.Detach(); err != nil {
			t.Error(err)
		}
		if err != nil && tool[0] == "fsck.vfat" && onlyDirtyBit(string(out)) {
			// The node's own Linux mounted the ESP and powered off without
			// unmounting it (the test OS's poweroff); a reinstall in place keeps
			// that ESP. Everything else fsck checks is clean.
			t.Logf("fsck.vfat on partition %s: only the dirty bit of an unclean shutdown is set", part)
			continue
		}
		if err != nil {
			t.Errorf("%s on partition %s: %v\n%s", tool[0], part, err, out)
		}
	}
}

// onlyDirtyBit reports whether fsck.vfat -n found nothing but the dirty bit an
// unclean unmount leaves (byte 65 of the boot sector, which then differs from
// its backup) and the unset free-cluster hint, which the FAT spec allows.
func onlyDirtyBit(out string) bool {
	benign := []string{"fsck.fat ", "There are differences between boot sector and its backup.",
		"This is mostly harmless. Differences:", "65:01/00", "Not automatically fixing this.",
		"Dirty bit is set.", "Automatically removing dirty bit.", "Free cluster summary uninitialized",
		"Leaving filesystem unchanged.", "/dev/loop"}
	dirty := false
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		dirty = dirty || strings.HasPrefix(line, "Dirty bit is set.")
		if !slices.ContainsFunc(benign, func(b string) bool { return strings.HasPrefix(line, b) }) {
			return false
		}
	}
	return dirty
}
