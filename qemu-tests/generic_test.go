package qemutests

import (
	"context"
	"fmt"
	"os/exec"
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
// media.WriteUSB to a file, the stick's disk, with menu's default entry and
// mediaArgs. The bundle is on the stick only, not in the initrd.
func genericStick(t *testing.T, menu media.MenuOptions) string {
	t.Helper()
	f := genericFixtures(t)
	stick := vm.NewDisk(t, "stick.img", 0)
	menu.Timeout, menu.ExtraArgs = time.Second, mediaArgs
	opts := media.ISOOptions{Bundle: f.Bundles[fixture.GenericKey("1.0")],
		Syslinux: media.DebianSyslinux(f.Debian.CacheDir + "/root"), Menu: menu}
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
	longTest(t)
	stick := genericStick(t, media.MenuOptions{Unattended: "serial:GENNVME1"})
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
// q35's AHCI, which only the generic kernel drives. Under BIOS that is a BIOS install
// (the initramfs carries GRUB's i386-pc images): the disk gets a BIOS boot partition,
// and SeaBIOS then boots the node from it through GRUB.
func TestGenericUSBStickSeaBIOS(t *testing.T) {
	longTest(t)
	stick := genericStick(t, media.MenuOptions{Unattended: "serial:GENSATA1"})
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
	expectBIOSBootPartition(t, n.disks[0].Path, true)
	v = n.biosBoot("", "", false)
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a`, 3*time.Minute)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
}

// busCell is one disk of TestGenericDiskBuses: a bus and a sector size.
type busCell struct {
	iface  vm.Interface
	sector int64
	serial string
	module string // the driver /init must have loaded for it
	bios   bool   // installed with nodeinit.firmware=bios (GRUB), not for UEFI
	boot   bool   // powered on by itself afterwards, under OVMF or (bios) SeaBIOS
}

// busCells are the disk buses, 512-byte sectors and 4K-native where QEMU's device
// allows it (ide-hd has 512-byte sectors only), HBAs whose drivers only the module set
// most carries, and each bus again for a BIOS install (512-byte sectors: a BIOS boots
// no 4K-native disk, and the plan refuses nodeinit.firmware=bios on one).
var busCells = []busCell{
	{vm.NVMe, 512, "BUSNVME5", "nvme", false, false}, {vm.NVMe, 4096, "BUSNVME4", "nvme", false, false},
	{vm.Virtio, 512, "BUSVIRT5", "virtio_blk", false, false}, {vm.Virtio, 4096, "BUSVIRT4", "virtio_blk", false, false},
	{vm.SATA, 512, "BUSSATA5", "ahci", false, true},
	{vm.SCSI, 512, "BUSSCSI5", "virtio_scsi", false, false}, {vm.SCSI, 4096, "BUSSCSI4", "virtio_scsi", false, true},
	{vm.USB, 512, "BUSUSB05", "usb_storage", false, true}, {vm.USB, 4096, "BUSUSB04", "usb_storage", false, false},
	{vm.MegaSAS, 512, "BUSMEGA5", "megaraid_sas", false, false}, {vm.LSI, 512, "BUSLSI05", "sym53c8xx", false, false},
	{vm.PVSCSI, 512, "BUSPVSC5", "vmw_pvscsi", false, false},
	{vm.NVMe, 512, "BIOSNVM5", "nvme", true, true}, {vm.Virtio, 512, "BIOSVIR5", "virtio_blk", true, false},
	{vm.SATA, 512, "BIOSSAT5", "ahci", true, false}, {vm.SCSI, 512, "BIOSSCS5", "virtio_scsi", true, true},
	{vm.USB, 512, "BIOSUSB5", "usb_storage", true, false},
}

// TestGenericDiskBuses boots a stick written by mkmedia usb under OVMF, its rescue entry,
// on a machine with a disk on every bus of busCells and a NIC (rtl8139) whose driver is
// not in the default module list. /init loads the drivers by modalias, and the rescue
// shell runs `nodeinit apply --disks` to install onto each disk in turn, by serial, from
// the bundle on the stick, for UEFI or, with nodeinit.firmware=bios, for BIOS. Each disk
// is then checked on the host: sgdisk on a loop device of the disk's sector size, e2fsck
// and fsck.vfat on its partitions, the BIOS boot partition where it belongs. A disk of
// each bus that the other tests do not boot from is then powered on alone, under OVMF or
// SeaBIOS, and boots the node.
func TestGenericDiskBuses(t *testing.T) {
	longTest(t)
	f := genericFixtures(t)
	stick := genericStick(t, media.MenuOptions{Default: media.EntryRescue})
	n := sweepNode(t, busCells)
	sweepRun{cells: busCells, medium: stick, image: "label:NODEINIT", modules: []string{"8139too"},
		args: append(usbStick(stick), "-netdev", "user,id=nic0,restrict=on", "-device", "rtl8139,netdev=nic0")}.run(t, n)
	// Some disks boot by themselves, alone on the machine: the firmware finds the
	// loader on that bus, and the initramfs the root behind the same driver.
	for i, c := range busCells {
		if !c.boot || t.Failed() {
			continue
		}
		start := time.Now()
		cfg := vm.Config{Disks: []vm.Disk{n.disks[i]}, NoReboot: true, MemoryMiB: 2048}
		if !c.bios {
			// Fresh variables, as a disk moved into another machine: the sweep's hold
			// boot entries for the other disks, and OVMF goes from a failed entry to
			// its shell, not to the present disk's removable path.
			cfg.OVMFCode, cfg.OVMFVars = f.Debian.OVMFCode, vm.NewVars(t, f.Debian.OVMFVars)
		}
		v := vm.Start(t, cfg)
		v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=`+strings.ToLower(c.serial), 3*time.Minute)
		v.Expect(`TESTOS-READY`, 30*time.Second)
		waitExit(t, v)
		t.Logf("%s: booted by itself in %s", c, time.Since(start).Round(100*time.Millisecond))
	}
}

// mediumCells are the cells the CD and PXE sweeps install onto: every bus and sector
// size, for UEFI and for BIOS. The HBAs are swept from the stick only; which medium the
// installer came from does not reach their drivers.
func mediumCells() []busCell {
	var out []busCell
	for _, c := range busCells {
		if !slices.Contains([]vm.Interface{vm.MegaSAS, vm.LSI, vm.PVSCSI}, c.iface) {
			out = append(out, c)
		}
	}
	return out
}

// TestGenericDiskBusesFromCD boots the generic image as a CD on q35's AHCI under OVMF,
// its rescue entry, and installs from the CD onto a disk of every bus and sector size,
// for UEFI and for BIOS, as TestGenericDiskBuses does from the stick. The CD is
// byte-identical afterwards.
func TestGenericDiskBusesFromCD(t *testing.T) {
	longTest(t)
	f := genericFixtures(t)
	cells := mediumCells()
	iso, err := f.ISO(fixture.GenericKey("1.0"), "generic-sweep-cd", media.ISOOptions{
		Menu: media.MenuOptions{Timeout: time.Second, Default: media.EntryRescue, ExtraArgs: mediaArgs}})
	if err != nil {
		t.Fatal(err)
	}
	// The sweep's SATA disks take the first AHCI ports; the CD is on the last.
	sweepRun{cells: cells, medium: iso, image: "label:NODEINIT", modules: []string{"sr_mod"}, args: []string{
		"-drive", "file=" + iso + ",if=none,id=cd0,media=cdrom,readonly=on,format=raw",
		"-device", "ide-cd,bus=ide.5,drive=cd0,bootindex=0"}}.run(t, sweepNode(t, cells))
}

// TestGenericDiskBusesOverPXE network-boots the generic image under OVMF through iPXE,
// its rescue entry, brings the NIC up with the rescue shell's dhclient, and installs from
// the bundle over HTTP onto a disk of every bus and sector size, for UEFI and for BIOS.
// Every request the HTTP server saw is for this node's path.
func TestGenericDiskBusesOverPXE(t *testing.T) {
	longTest(t)
	f := genericFixtures(t)
	cells := mediumCells()
	tftp, srv := pxeTreeOf(t, fixture.GenericKey("1.0"), media.MenuOptions{Default: media.EntryRescue, ExtraArgs: mediaArgs})
	rom := f.Debian.CacheDir + "/root/usr/lib/ipxe/qemu/efi-virtio.rom"
	sweepRun{cells: cells, image: fmt.Sprintf("http://10.0.2.2:%d/nodes/%s/bundle/", srv.port, pxeMAC),
		modules: []string{"virtio_net"}, args: []string{
			"-netdev", "user,id=n0,restrict=off,tftp=" + tftp + ",bootfile=" + media.PXEIPXE,
			"-device", "virtio-net-pci,netdev=n0,mac=" + pxeMAC + ",romfile=" + rom + ",bootindex=0"},
		firmware: `iPXE`,
		shell: func(v *vm.VM) {
			v.Send("dhclient -t 20 eth0; echo DHCP-$?-$((6*7))\r")
			if m := v.Expect(`DHCP-(\d+)-42`, time.Minute); m[1] != "0" {
				t.Fatalf("dhclient in the rescue shell exited %s", m[1])
			}
		}}.run(t, sweepNode(t, cells))
	srv.checkFetched(t, pxeMAC)
}

// sweepRun is one bus sweep: the machine boots the rescue entry of a medium under OVMF,
// and the rescue shell installs onto the disk of each cell in turn.
type sweepRun struct {
	cells    []busCell
	args     []string     // QEMU arguments that attach the medium, first in the boot order
	medium   string       // the medium's file, byte-identical afterwards ("" for none)
	image    string       // nodeinit.image of each install
	modules  []string     // drivers beyond the cells' own that /init must have loaded
	firmware string       // what the console shows before the kernel ("" for nothing)
	shell    func(*vm.VM) // runs in the rescue shell before the installs
}

// run boots n's machine with the medium, checks the drivers, installs onto every cell,
// powers off, and checks the medium and each disk on the host.
func (r sweepRun) run(t *testing.T, n *node) {
	t.Helper()
	before := ""
	if r.medium != "" {
		before = hashFile(t, r.medium)
	}
	v := vm.Start(t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true,
		MemoryMiB: 2048, Timeout: 20 * time.Minute, ExtraArgs: r.args})
	if r.firmware != "" {
		v.Expect(r.firmware, time.Minute)
	}
	v.Expect(early.RescueShellBanner, 4*time.Minute)
	time.Sleep(2 * time.Second) // let the shell draw its prompt
	expectModulesLoaded(t, v, r.cells, r.modules...)
	if r.shell != nil {
		r.shell(v)
	}
	installEach(t, v, r.cells, r.image)
	powerOffShell(t, v)
	if r.medium != "" && hashFile(t, r.medium) != before {
		t.Errorf("the medium %s changed", r.medium)
	}
	checkSwept(t, n, r.cells)
}

// sweepNode is a node with a blank 16 GiB disk for each cell.
func sweepNode(t *testing.T, cells []busCell) *node {
	n := newNode(t)
	for _, c := range cells {
		n.disks = append(n.disks, vm.Disk{Path: vm.NewDisk(t, strings.ToLower(c.serial)+".img", 16<<30),
			Interface: c.iface, Serial: c.serial, SectorSize: int(c.sector)})
	}
	return n
}

// expectModulesLoaded checks, in the rescue shell, that /init loaded the driver of
// every cell's bus and the extra modules. The markers are computed by the shell
// ($((…)), $?), so the echo of the typed line cannot match them.
func expectModulesLoaded(t *testing.T, v *vm.VM, cells []busCell, extra ...string) {
	t.Helper()
	mods := extra
	for _, c := range cells {
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
}

// installEach runs `nodeinit apply` in the rescue shell once per cell, onto that cell's
// disk by serial, with the image from image; --disks keeps the disks installed before
// out of each plan.
func installEach(t *testing.T, v *vm.VM, cells []busCell, image string) {
	t.Helper()
	for _, c := range cells {
		start := time.Now()
		extra := ""
		if c.bios {
			extra = " nodeinit.firmware=bios"
		}
		v.Send(fmt.Sprintf("nodeinit apply --disks %s --cmdline 'install storage_init=serial:%s nodeinit.image=%s hostname=%s testos.action=poweroff%s'; echo RESULT-$?-%s\r",
			c.serial, c.serial, image, strings.ToLower(c.serial), extra, c.serial))
		if m := v.Expect(`RESULT-(\d+)-`+c.serial, 4*time.Minute); m[1] != "0" {
			t.Errorf("%s: nodeinit apply exited %s", c, m[1])
			continue
		}
		t.Logf("%s: installed in %s", c, time.Since(start).Round(100*time.Millisecond))
	}
}

// powerOffShell powers the VM off from the rescue shell.
func powerOffShell(t *testing.T, v *vm.VM) {
	t.Helper()
	v.Send("poweroff\r")
	if err := v.WaitExit(time.Minute); err != nil {
		t.Errorf("qemu exit: %v", err)
	}
}

// checkSwept checks each cell's disk on the host: the GPT read at the disk's sector
// size, the filesystems, and the BIOS boot partition exactly where the install was for
// BIOS.
func checkSwept(t *testing.T, n *node, cells []busCell) {
	t.Helper()
	for i, c := range cells {
		checkInstalledDiskSectors(t, n.disks[i].Path, c.sector)
		if c.sector == 512 {
			expectBIOSBootPartition(t, n.disks[i].Path, c.bios)
		}
	}
}

// String names the cell: bus, sector size and firmware.
func (c busCell) String() string {
	fw := "UEFI"
	if c.bios {
		fw = "BIOS"
	}
	return fmt.Sprintf("%s %s, %d-byte sectors (%s)", fw, c.iface, c.sector, c.serial)
}

// TestGenericISOCDSeaBIOS boots the generic image as a CD on q35's AHCI under SeaBIOS
// (El Torito, isolinux): an install under BIOS, for BIOS, onto the NVMe disk, with
// GRUB's images in the MBR and the BIOS boot partition.
func TestGenericISOCDSeaBIOS(t *testing.T) {
	longTest(t)
	f := genericFixtures(t)
	iso, err := f.ISO(fixture.GenericKey("1.0"), "generic-cd-bios", media.ISOOptions{
		Menu: media.MenuOptions{Timeout: time.Second, Unattended: "serial:GENCDBI1", ExtraArgs: mediaArgs}})
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "GENCDBI1"})
	v := vm.Start(t, vm.Config{Disks: n.disks, NoReboot: true, MemoryMiB: 2048, Events: n.eventsFile(), ExtraArgs: []string{
		"-drive", "file=" + iso + ",if=none,id=cd0,media=cdrom,readonly=on,format=raw",
		"-device", "ide-cd,bus=ide.1,drive=cd0,bootindex=0"}})
	v.Expect(`ISOLINUX`, time.Minute)
	expectMediumInstall(t, v, "label:NODEINIT", "/dev/nvme0n1")
	checkInstalledDisk(t, n.disks[0].Path)
	expectBIOSBootPartition(t, n.disks[0].Path, true)
}

// TestGenericPXEOnE1000e network-boots the generic image under OVMF through iPXE on an
// Intel 82574 (e1000e, with Debian's efi-e1000e.rom): /init loads e1000e for the NIC
// BOOTIF names, fetches the bundle over HTTP, and installs onto a virtio-scsi disk with
// 4096-byte sectors.
func TestGenericPXEOnE1000e(t *testing.T) {
	longTest(t)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "scsi4k.img", 16<<30), Interface: vm.SCSI, Serial: "GENPXE41", SectorSize: 4096})
	genericFixtures(t)
	tftp, srv := pxeTreeOf(t, fixture.GenericKey("1.0"), media.MenuOptions{Unattended: "serial:GENPXE41",
		ExtraArgs: []string{"console=ttyS0", "panic=5", "nodeinit.events=ttyS1", "hostname=pxe4k", "testos.action=poweroff"}})
	rom := n.f.Debian.CacheDir + "/root/usr/lib/ipxe/qemu/efi-e1000e.rom"
	v := vm.Start(t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 2048,
		Events: n.eventsFile(), ExtraArgs: []string{
			"-netdev", "user,id=n0,restrict=off,tftp=" + tftp + ",bootfile=" + media.PXEIPXE,
			"-device", "e1000e,netdev=n0,mac=" + pxeMAC + ",romfile=" + rom + ",bootindex=1"}})
	v.Expect(`iPXE`, time.Minute)
	expectDHCP(t, v, 3*time.Minute)
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	srv.checkFetched(t, pxeMAC)
	checkInstalledDiskSectors(t, n.disks[0].Path, 4096)
}

// TestGenericPXELinuxOnRTL8139BIOS network-boots the generic image under SeaBIOS
// through pxelinux on a Realtek 8139 (8139too, a driver the default module list lacks,
// with Debian's pxe-rtl8139.rom), installs for BIOS onto a USB disk from the bundle
// over HTTP, and then boots the node from that USB disk: SeaBIOS → GRUB → slot a.
func TestGenericPXELinuxOnRTL8139BIOS(t *testing.T) {
	longTest(t)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "usb.img", 16<<30), Interface: vm.USB, Serial: "GENPXEU1"})
	genericFixtures(t)
	tftp, srv := pxeTreeOf(t, fixture.GenericKey("1.0"), media.MenuOptions{Unattended: "serial:GENPXEU1",
		ExtraArgs: []string{"console=ttyS0", "panic=5", "nodeinit.events=ttyS1", "hostname=pxeusb", "testos.action=poweroff"}})
	rom := n.f.Debian.CacheDir + "/root/usr/lib/ipxe/qemu/pxe-rtl8139.rom"
	v := vm.Start(t, vm.Config{Disks: n.disks, NoReboot: true, MemoryMiB: 2048, Events: n.eventsFile(), ExtraArgs: []string{
		"-netdev", "user,id=n0,restrict=off,tftp=" + tftp + ",bootfile=pxelinux.0",
		"-device", "rtl8139,netdev=n0,mac=" + pxeMAC + ",romfile=" + rom + ",bootindex=0"}})
	expectDHCP(t, v, 3*time.Minute)
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	srv.checkFetched(t, pxeMAC)
	checkInstalledDisk(t, n.disks[0].Path)
	expectBIOSBootPartition(t, n.disks[0].Path, true)
	v = n.biosBoot("", "", false)
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=pxeusb`, 3*time.Minute)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
}

// expectBIOSBootPartition checks whether the GPT of img (512-byte sectors) has the
// BIOS boot partition of a BIOS install.
func expectBIOSBootPartition(t *testing.T, img string, want bool) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-p", img).CombinedOutput()
	if err != nil {
		t.Fatalf("sgdisk -p %s: %v\n%s", img, err, out)
	}
	if got := strings.Contains(string(out), "BIOS-BOOT"); got != want {
		t.Errorf("%s: a BIOS boot partition: %v, want %v:\n%s", img, got, want, out)
	}
}
