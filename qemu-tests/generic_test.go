package qemutests

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/media"
	"github.com/nodeinit/nodeinit/qemu-tests/fixture"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// The tests in this file boot Debian's generic kernel (linux-image-amd64) with an
// initramfs of its modules chosen by the rule of the module set most: the kernel that has
// USB, AHCI and the SCSI HBAs of real hosts as modules, where the cloud kernel has none.

var (
	genericOnce sync.Once
	genericErr  error
)

// genericFixtures are the fixtures with the generic kernel's initramfs and the bundle of
// version 1.0 that boots it (fixture.GenericKey("1.0")).
func genericFixtures(t *testing.T) *fixture.Artifacts {
	t.Helper()
	f := fixtures(t)
	genericOnce.Do(func() {
		start := time.Now()
		_, genericErr = f.AddGeneric(context.Background(), "1.0")
		t.Logf("generic kernel %s: initramfs and bundle in %s", f.Debian.Generic.Version, time.Since(start).Round(time.Millisecond))
	})
	if genericErr != nil {
		t.Fatal(genericErr)
	}
	return f
}

// genericStick writes the hybrid image of the generic bundle with `mkmedia usb`'s
// media.WriteUSB to a file, the stick's disk: its default entry installs unattended onto
// storageInit. The bundle is on the stick only, not in the initrd.
func genericStick(t *testing.T, storageInit string) string {
	t.Helper()
	f := genericFixtures(t)
	stick := vm.NewDisk(t, "stick.img", 0)
	opts := media.ISOOptions{Bundle: f.Bundles[fixture.GenericKey("1.0")],
		Syslinux: media.DebianSyslinux(f.Debian.CacheDir + "/root"),
		Menu:     media.MenuOptions{Timeout: time.Second, Unattended: storageInit, ExtraArgs: mediaArgs}}
	if _, err := media.WriteUSB(context.Background(), stick, opts, media.USBOptions{}); err != nil {
		t.Fatal(err)
	}
	return stick
}

// usbStick attaches img as a USB stick (usb-storage on qemu-xhci), first in the boot order.
func usbStick(img string) []string {
	return []string{"-device", "qemu-xhci,id=stickhc", "-drive", "file=" + img + ",if=none,id=stick,format=raw",
		"-device", "usb-storage,bus=stickhc.0,drive=stick,serial=STICK001,bootindex=0"}
}

// TestGenericUSBStickOVMF boots a stick made by mkmedia usb under OVMF with the generic
// kernel: Linux sees the stick through xhci and usb-storage, the installer reads the
// bundle from it (not from a copy in the initrd), never offers it as a target, and
// installs onto the NVMe disk beside it; the stick is byte-identical afterwards and the
// installed node boots.
func TestGenericUSBStickOVMF(t *testing.T) {
	stick := genericStick(t, "serial:GENNVME1")
	before := hashFile(t, stick)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "GENNVME1"})
	v := vm.Start(t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true,
		MemoryMiB: 2048, Events: n.eventsFile(), ExtraArgs: usbStick(stick)})
	expectMediumInstall(t, v, "label:NODEINIT", "/dev/nvme0n1")
	if hashFile(t, stick) != before {
		t.Error("the USB stick changed")
	}
	checkInstalledDisk(t, n.disks[0].Path)
	bootInstalled(t, n)
}

// TestGenericUSBStickSeaBIOS boots the same kind of stick under SeaBIOS (its xhci and USB
// mass-storage support, the isohybrid MBR, isolinux) and installs onto a SATA disk on
// q35's AHCI, which only the generic kernel drives.
func TestGenericUSBStickSeaBIOS(t *testing.T) {
	stick := genericStick(t, "serial:GENSATA1")
	before := hashFile(t, stick)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "sata.img", 16<<30), Interface: vm.SATA, Serial: "GENSATA1"})
	start := time.Now()
	v := vm.Start(t, vm.Config{Disks: n.disks, NoReboot: true, MemoryMiB: 2048, Events: n.eventsFile(), ExtraArgs: usbStick(stick)})
	v.Expect(`ISOLINUX`, time.Minute)
	t.Logf("isolinux after %s", time.Since(start).Round(100*time.Millisecond))
	v.Expect(`Linux version`, 5*time.Minute)
	t.Logf("the kernel starts after %s: SeaBIOS read the kernel and initrd from the stick", time.Since(start).Round(100*time.Millisecond))
	expectMediumInstall(t, v, "label:NODEINIT", "/dev/sda")
	if hashFile(t, stick) != before {
		t.Error("the USB stick changed")
	}
	checkInstalledDisk(t, n.disks[0].Path)
}

// busCell is one disk of TestGenericDiskBuses: a bus and a sector size.
type busCell struct {
	iface  vm.Interface
	sector int64
	serial string
	module string // the driver /init must have loaded for it
}

// busCells are the disk buses, 512-byte sectors and 4K-native where QEMU's device
// allows it (ide-hd has 512-byte sectors only), and HBAs whose drivers only the module
// set most carries.
var busCells = []busCell{
	{vm.NVMe, 512, "BUSNVME5", "nvme"}, {vm.NVMe, 4096, "BUSNVME4", "nvme"},
	{vm.Virtio, 512, "BUSVIRT5", "virtio_blk"}, {vm.Virtio, 4096, "BUSVIRT4", "virtio_blk"},
	{vm.SATA, 512, "BUSSATA5", "ahci"},
	{vm.SCSI, 512, "BUSSCSI5", "virtio_scsi"}, {vm.SCSI, 4096, "BUSSCSI4", "virtio_scsi"},
	{vm.USB, 512, "BUSUSB05", "usb_storage"}, {vm.USB, 4096, "BUSUSB04", "usb_storage"},
	{vm.MegaSAS, 512, "BUSMEGA5", "megaraid_sas"}, {vm.LSI, 512, "BUSLSI05", "sym53c8xx"},
	{vm.PVSCSI, 512, "BUSPVSC5", "vmw_pvscsi"},
}

// TestGenericDiskBuses boots the generic kernel's installer under OVMF with a disk on every bus
// of busCells and a NIC (rtl8139) whose driver is not in the default module list. /init
// loads the drivers by modalias, and the rescue shell runs `nodeinit apply --disks` to
// install onto each disk in turn, by serial. Each disk is then checked on the host: sgdisk on a
// loop device of the disk's sector size, e2fsck and fsck.vfat on its partitions.
func TestGenericDiskBuses(t *testing.T) {
	f := genericFixtures(t)
	initrd, err := f.GenericInstaller("1.0")
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t)
	for _, c := range busCells {
		n.disks = append(n.disks, vm.Disk{Path: vm.NewDisk(t, strings.ToLower(c.serial)+".img", 16<<30),
			Interface: c.iface, Serial: c.serial, SectorSize: int(c.sector)})
	}
	v := vm.Start(t, vm.Config{Kernel: f.Debian.Generic.Vmlinuz, Initramfs: initrd,
		Append: "console=ttyS0,115200n8 nodeinit.onfail=shell", Disks: n.disks, NoReboot: true, MemoryMiB: 2048,
		OVMFCode: f.Debian.OVMFCode, OVMFVars: n.vars,
		Timeout:   20 * time.Minute,
		ExtraArgs: []string{"-netdev", "user,id=nic0,restrict=on", "-device", "rtl8139,netdev=nic0"}})
	v.Expect(early.RescueShellBanner, 4*time.Minute)
	time.Sleep(2 * time.Second) // let the shell draw its prompt
	// The markers are computed by the shell ($((…)), $?), so the echo of the typed line
	// cannot match them.
	mods := []string{"8139too"}
	for _, c := range busCells {
		if !slices.Contains(mods, c.module) {
			mods = append(mods, c.module)
		}
	}
	v.Send("for m in " + strings.Join(mods, " ") + "; do grep -q \"^$m \" /proc/modules && echo LOADED-$m; done; echo END-$((6*7))\r")
	out := v.Expect(`(?s)\n(LOADED-.*)END-42`, 30*time.Second)[1]
	for _, m := range mods {
		if !regexp.MustCompile(`(?m)^LOADED-` + m + `\r?$`).MatchString(out) {
			t.Errorf("module %s is not loaded:\n%s", m, out)
		}
	}
	for _, c := range busCells {
		start := time.Now()
		// --disks keeps the disks installed before out of this plan.
		v.Send(fmt.Sprintf("nodeinit apply --disks %s --cmdline 'install storage_init=serial:%s nodeinit.image=/bundle hostname=%s'; echo RESULT-$?-%s\r",
			c.serial, c.serial, strings.ToLower(c.serial), c.serial))
		if m := v.Expect(`RESULT-(\d+)-`+c.serial, 4*time.Minute); m[1] != "0" {
			t.Errorf("%s, %d-byte sectors (%s): nodeinit apply exited %s", c.iface, c.sector, c.serial, m[1])
			continue
		}
		t.Logf("%s, %d-byte sectors (%s): installed in %s", c.iface, c.sector, c.serial, time.Since(start).Round(100*time.Millisecond))
	}
	v.Send("poweroff\r")
	if err := v.WaitExit(time.Minute); err != nil {
		t.Errorf("qemu exit: %v", err)
	}
	for i, c := range busCells {
		checkInstalledDiskSectors(t, n.disks[i].Path, c.sector)
	}
}
