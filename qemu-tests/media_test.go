package qemutests

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/media"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// mediaArgs go on every entry of the test media: the serial console, and an action for the
// test OS so the installed node powers itself off once it has booted.
var mediaArgs = []string{"console=ttyS0,115200n8", "panic=5", "nodeinit.events=ttyS1", "testos.action=poweroff"}

// mediaISO builds the hybrid ISO of version 1.0 whose default entry installs unattended
// onto storageInit after a one-second menu.
func mediaISO(t *testing.T, name, storageInit string, embed bool) string {
	t.Helper()
	f := fixtures(t)
	start := time.Now()
	iso, err := f.ISO("1.0", name, media.ISOOptions{EmbedBundle: embed,
		Menu: media.MenuOptions{Timeout: time.Second, Unattended: storageInit, ExtraArgs: mediaArgs}})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(iso)
	t.Logf("mkmedia iso: %d MiB in %s", st.Size()>>20, time.Since(start).Round(time.Millisecond))
	return iso
}

// cdrom attaches img as a CD on virtio-scsi, first in the boot order. (q35's own CD drive
// sits on AHCI, for which Debian's cloud kernel has no driver.)
func cdrom(img string) []string {
	return []string{"-device", "virtio-scsi-pci,id=scsi0",
		"-drive", "file=" + img + ",if=none,id=cd0,media=cdrom,readonly=on,format=raw",
		"-device", "scsi-cd,drive=cd0,bus=scsi0.0,bootindex=0"}
}

// copyFile copies the medium so a test that attaches it writable cannot change the fixture.
func copyFile(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// expectMediumInstall follows an unattended install booted from the medium: the bundle
// comes from the medium found by its label (unless embedded), the target is the disk
// expected, and the install completes.
func expectMediumInstall(t *testing.T, v *vm.VM, source, target string) {
	t.Helper()
	p := v.ExpectPlan(4 * time.Minute)
	if p.Image == nil || p.Image.Name != "demo-node" || p.Image.Version != "1.0" || p.Image.Source != source || !p.Image.Signed {
		t.Errorf("the image is not demo-node 1.0 from %s, signature verified: %+v", source, p.Image)
	}
	if p.TargetPath() != target {
		t.Errorf("the target is %q, not %s", p.TargetPath(), target)
	}
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
}

// bootInstalled powers the node on through OVMF and systemd-boot from its installed disk.
func bootInstalled(t *testing.T, n *node) {
	t.Helper()
	v := n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a`, 3*time.Minute)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
}

// TestMediaISOCDSeaBIOS boots the ISO as a CD under SeaBIOS (QEMU's default BIOS):
// isolinux's menu boots the default entry, which installs unattended onto the NVMe disk
// from the bundle on the CD. A disk installed under BIOS cannot boot itself (the node boots
// through systemd-boot, a UEFI loader), so the machine is then powered on with OVMF.
func TestMediaISOCDSeaBIOS(t *testing.T) {
	iso := mediaISO(t, "cd-nvme", "serial:CDNVME01", false)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "CDNVME01"})
	v := vm.Start(t, vm.Config{Disks: n.disks, NoReboot: true, MemoryMiB: 1536, ExtraArgs: cdrom(iso), Events: n.eventsFile()})
	v.Expect(`ISOLINUX`, time.Minute)
	v.Expect(media.MenuTitle, time.Minute)
	expectMediumInstall(t, v, "label:NODEINIT", "/dev/nvme0n1")
	checkInstalledDisk(t, n.disks[0].Path)
	bootInstalled(t, n)
}

// TestMediaISOCDOVMF boots the same ISO as a CD under OVMF: El Torito's UEFI image starts
// systemd-boot, whose default entry installs; the installed node then boots.
func TestMediaISOCDOVMF(t *testing.T) {
	iso := mediaISO(t, "cd-nvme", "serial:CDNVME01", false)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "CDNVME01"})
	v := vm.Start(t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true,
		MemoryMiB: 1536, ExtraArgs: cdrom(iso), Events: n.eventsFile()})
	expectMediumInstall(t, v, "label:NODEINIT", "/dev/nvme0n1")
	checkInstalledDisk(t, n.disks[0].Path)
	bootInstalled(t, n)
}

// TestMediaHybridDiskNotATarget writes the ISO as is to a disk (what `dd` to a USB stick
// does) and boots it under SeaBIOS through the isohybrid MBR. The default entry says
// storage_init=/dev/vd*, which matches both virtio disks: the medium and a blank one. The
// medium is excluded, so the blank disk is the one eligible match and gets the install; the
// medium's bytes are unchanged.
func TestMediaHybridDiskNotATarget(t *testing.T) {
	stick := copyFile(t, mediaISO(t, "virtio", "/dev/vd*", false))
	before := hashFile(t, stick)
	n := newNode(t,
		vm.Disk{Path: stick, Interface: vm.Virtio, Serial: "MEDIUM01"},
		vm.Disk{Path: vm.NewDisk(t, "target.img", 16<<30), Interface: vm.Virtio, Serial: "TARGET01"})
	v := vm.Start(t, vm.Config{Disks: n.disks, NoReboot: true, MemoryMiB: 1536, Events: n.eventsFile()})
	v.Expect(media.MenuTitle, 2*time.Minute)
	expectMediumInstall(t, v, "label:NODEINIT", "/dev/vdb")
	if hashFile(t, stick) != before {
		t.Errorf("the install medium changed")
	}
	checkInstalledDisk(t, n.disks[1].Path)
}

// TestMediaUSBStorage attaches the hybrid image as a USB stick (qemu-xhci + usb-storage)
// and boots it under OVMF, through the MBR's EFI system partition. Debian's cloud kernel
// has no USB drivers (CONFIG_USB is off), so the booted installer cannot see the stick:
// this image carries the bundle inside its initrd as well (mkmedia iso --embed-bundle),
// and the test checks that the kernel indeed sees no medium disk.
func TestMediaUSBStorage(t *testing.T) {
	stick := copyFile(t, mediaISO(t, "usb", "serial:USBNVME1", true))
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "USBNVME1"})
	v := vm.Start(t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 2048,
		Events: n.eventsFile(),
		ExtraArgs: []string{"-device", "qemu-xhci,id=xhci", "-drive", "file=" + stick + ",if=none,id=stick,format=raw",
			"-device", "usb-storage,bus=xhci.0,drive=stick,bootindex=0"}})
	blocks := v.Expect(`nodeinit: block devices: (.*)\n`, 3*time.Minute)[1]
	if strings.Contains(blocks, "sd") {
		t.Logf("the kernel sees a USB disk: %s", blocks)
	} else {
		t.Logf("as expected with the cloud kernel, no USB disk is visible to Linux (block devices: %s); the bundle comes from the initrd", blocks)
	}
	expectMediumInstall(t, v, "initramfs:/bundle", "/dev/nvme0n1")
	bootInstalled(t, n)
}

// TestMediaLocalEntryUEFI boots the CD under OVMF with "Boot from local drive" as the
// default: systemd-boot starts media.ExitEFI, which fails, so systemd-boot exits with
// EFI_NOT_FOUND and the firmware goes on to its next boot option instead of any kernel.
func TestMediaLocalEntryUEFI(t *testing.T) {
	f := fixtures(t)
	iso, err := f.ISO("1.0", "local", media.ISOOptions{Menu: media.MenuOptions{Default: media.EntryLocal, Timeout: time.Second, ExtraArgs: mediaArgs}})
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 1<<30), Interface: vm.NVMe, Serial: "LOCAL001"})
	v := vm.Start(t, vm.Config{OVMFCode: f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true,
		MemoryMiB: 1024, ExtraArgs: cdrom(iso), Timeout: 3 * time.Minute})
	v.Expect(`BdsDxe: failed to start Boot\d+ "UEFI QEMU QEMU CD-ROM[^"]*" from [^\n]*: Not Found`, 2*time.Minute)
	if strings.Contains(v.Output(), "Linux version") {
		t.Fatal("a kernel booted although the default entry is the local drive")
	}
	v.Kill()
}

// TestMediaCDNotATarget boots a CD whose default entry names the CD drive itself as the
// install disk: the installer refuses because /dev/sr0 holds the boot medium (found by its
// label), and writes nothing to the NVMe disk.
func TestMediaCDNotATarget(t *testing.T) {
	iso := mediaISO(t, "cd-self", "/dev/sr0", false)
	d := vm.NewDisk(t, "nvme.img", 4<<30)
	before := hashFile(t, d)
	n := newNode(t, vm.Disk{Path: d, Interface: vm.NVMe, Serial: "CDSELF01"})
	v := vm.Start(t, vm.Config{Disks: n.disks, NoReboot: true, MemoryMiB: 1536, ExtraArgs: cdrom(iso), Timeout: 4 * time.Minute,
		Events: n.eventsFile()})
	refused := v.ExpectEvent("the refusal", vm.StageIs("probe", stages.EventFailed), 3*time.Minute)
	if !strings.Contains(refused.Error, "/dev/sr0 holds the boot medium") || !strings.Contains(refused.Error, "nothing was written") {
		t.Errorf("the refusal event does not say the CD holds the boot medium: %+v", refused)
	}
	v.Expect(early.FailureScreenMarker, 3*time.Minute)
	screen := v.Expect(`(?s)What went wrong:(.*?)Next:`, 30*time.Second)[1]
	if !strings.Contains(screen, "/dev/sr0 holds the boot medium") {
		t.Errorf("the refusal does not say the CD holds the boot medium:\n%s", screen)
	}
	v.Kill()
	if hashFile(t, d) != before {
		t.Fatal("a refused install changed the NVMe disk")
	}
}

// TestUpgradeAfterBootingTheCD is the operator who keeps the install CD first in the
// firmware's boot order: the install leaves nodeinit's Boot#### first, then the node is
// upgraded by booting the 2.0 CD's "upgrade" entry. Booting the CD lets OVMF rewrite
// BootOrder from QEMU's boot order (only the CD), which drops nodeinit's entry; the
// upgrade's boot-order step finds that and restores the entry, first. With the CD taken
// away, the node boots the new slot.
func TestUpgradeAfterBootingTheCD(t *testing.T) {
	f := fixtures(t)
	install, err := f.ISO("1.0", "cd-keep", media.ISOOptions{Menu: media.MenuOptions{Timeout: time.Second,
		Unattended: "serial:CDKEEP01", ExtraArgs: mediaArgs}})
	if err != nil {
		t.Fatal(err)
	}
	upgrade, err := f.ISO("2.0", "cd-upgrade", media.ISOOptions{Menu: media.MenuOptions{Default: media.EntryUpgrade,
		Timeout: time.Second, ExtraArgs: mediaArgs}})
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "CDKEEP01"})
	v := vm.Start(t, vm.Config{OVMFCode: f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true,
		MemoryMiB: 1536, ExtraArgs: cdrom(install), Events: n.eventsFile()})
	installed := v.ExpectEvent("the install's boot entry", vm.InfoHas("boot-order", "first in BootOrder"), 6*time.Minute)
	entry, _, _ := strings.Cut(installed.Message, " ")
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)

	v = vm.Start(t, vm.Config{OVMFCode: f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true,
		MemoryMiB: 1536, ExtraArgs: cdrom(upgrade), Events: n.eventsFile()})
	if p := v.ExpectPlan(4 * time.Minute); p.Action != "upgrade" || p.Slot != "b" || p.Image == nil || p.Image.Version != "2.0" {
		t.Fatalf("the CD's upgrade plans %s of %+v into slot %q", p.Action, p.Image, p.Slot)
	}
	restored := v.ExpectEvent("the upgrade's boot-order step", vm.InfoHas("boot-order", "first in BootOrder"), 4*time.Minute)
	t.Logf("install: %s; upgrade: %s", installed.Message, restored.Message)
	if !strings.HasPrefix(restored.Message, entry+" first") {
		t.Errorf("the upgrade put %q first, not the install's %s", restored.Message, entry)
	}
	_, was, _ := strings.Cut(restored.Message, "(it was: ")
	if strings.Contains(was, strings.TrimPrefix(entry, "Boot")) {
		t.Errorf("the firmware kept %s in BootOrder after the CD boot (%s): this test shows nothing", entry, restored.Message)
	}
	v.ExpectEvent("upgrade finished", vm.Finished, 2*time.Minute)
	waitExit(t, v)

	v = n.powerOn() // the CD is gone
	v.Expect(`TESTOS version=2\.0 build=2\.0 slot=b`, 4*time.Minute)
	v.Expect(`TESTOS-READY`, time.Minute)
	waitExit(t, v)
}

// TestMediaAHCICDWithoutItsDriver boots the ISO from q35's own AHCI CD drive under OVMF. The
// firmware reads it, but Debian's cloud kernel has no ahci driver, so Linux never sees the
// CD and no default source holds the image. The refusal says where it looked, which block
// devices there were, and names the AHCI controller without a driver and the module to add.
func TestMediaAHCICDWithoutItsDriver(t *testing.T) {
	iso := mediaISO(t, "cd-ahci", "serial:AHCICD01", false)
	d := vm.NewDisk(t, "nvme.img", 16<<30)
	before := hashFile(t, d)
	n := newNode(t, vm.Disk{Path: d, Interface: vm.NVMe, Serial: "AHCICD01"})
	v := vm.Start(t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1536,
		ExtraArgs: []string{"-drive", "file=" + iso + ",if=none,id=cd0,media=cdrom,readonly=on,format=raw",
			"-device", "ide-cd,drive=cd0,bus=ide.0,bootindex=0"},
		Timeout: 5 * time.Minute, Events: n.eventsFile()})
	refused := v.ExpectEvent("the refusal", vm.StageIs("probe", stages.EventFailed), 4*time.Minute)
	for _, want := range []string{"install needs an image and none was found", "label:NODEINIT (",
		"block devices: nvme0n1", "SATA (AHCI) controller", "(module ahci)"} {
		if !strings.Contains(refused.Error, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, refused.Error)
		}
	}
	if !strings.Contains(refused.Hint, "nodeinit mkinitramfs --module ahci") {
		t.Errorf("the fix does not name the module to add: %q", refused.Hint)
	}
	v.Kill()
	if hashFile(t, d) != before {
		t.Error("the disk changed although the install was refused")
	}
}
