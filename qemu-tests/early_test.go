package qemutests

import (
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/early"
	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// TestEarlyBoot boots the real kernel with our initramfs and two blank disks, an NVMe one and
// a virtio one with 4096-byte sectors, and checks the early setup: output on a console that is
// not the kernel's last one, the early mounts (listed with nodeinit.debug), the modules, both disks, the engine being
// called, and nodeinit.onfail=poweroff ending the VM after the failure screen (blank disks
// and no action cannot boot).
func TestEarlyBoot(t *testing.T) {
	a := artifacts(t)
	initrd := testInitramfs(t, a)
	start := time.Now()
	v := vm.Start(t, vm.Config{
		Kernel:    a.Vmlinuz,
		Initramfs: initrd,
		// ttyS0 first: the kernel's /dev/console is the last one (tty0), so seeing our lines on
		// ttyS0 proves /init writes to every console= itself.
		Append: "console=ttyS0,115200n8 console=tty0 nodeinit.onfail=poweroff nodeinit.debug",
		Disks: []vm.Disk{
			{Path: vm.NewDisk(t, "nvme.img", 256<<20), Interface: vm.NVMe, Serial: "NVME0001"},
			{Path: vm.NewDisk(t, "virtio4k.img", 256<<20), Interface: vm.Virtio, Serial: "VIRTIO4K", SectorSize: 4096},
		},
		NoReboot: true,
	})
	v.Expect(`nodeinit: /init started ([0-9.]+)s after kernel start, writing to 2 console\(s\): ttyS0 tty0`, 90*time.Second)
	m := v.Expect(`nodeinit: modules: (\d+) loaded, \d+ skipped without a matching device \(([^)]*)\)`, 60*time.Second)
	// Drivers load for the devices present (modules.alias): this VM has virtio and
	// NVMe disks and no NIC, so the NIC drivers, virtio_net among them, are skipped.
	skipped := strings.Fields(m[2])
	for _, mod := range []string{"mlx5_core", "ena", "virtio_net"} {
		if !slices.Contains(skipped, mod) {
			t.Errorf("module %s loaded on a VM without its device (skipped: %v)", mod, skipped)
		}
	}
	if slices.Contains(skipped, "virtio_blk") {
		t.Errorf("virtio_blk skipped, but the VM has a virtio disk")
	}
	for _, fs := range []string{"devtmpfs", "proc", "sysfs", "tmpfs"} {
		if !strings.Contains(v.Output(), `nodeinit: early ok   mount -t "`+fs+`"`) {
			t.Errorf("no successful early mount of %s", fs)
		}
	}
	// Only the drivers of the devices here load at boot (virtio_blk, nvme and
	// what they need); filesystems, loop and device-mapper wait until something
	// uses them, so the kernel never announces them during this boot.
	if n, _ := strconv.Atoi(m[1]); n < 2 {
		t.Errorf("only %d modules loaded; want at least virtio_blk and nvme", n)
	}
	for _, banner := range []string{"squashfs: version", "loop: module loaded", "device-mapper: ioctl", "8021q: 802.1Q VLAN"} {
		if strings.Contains(v.Output(), banner) {
			t.Errorf("kernel printed %q: a module that drives no device here was loaded at boot", banner)
		}
	}
	for _, mod := range []string{"virtio_blk", "virtio_pci", "nvme", "virtio_net"} {
		if strings.Contains(v.Output(), "nodeinit: module "+mod+":") {
			t.Errorf("module %s failed to load", mod)
		}
	}
	disks := v.Expect(`nodeinit: block devices: (.*)\n`, 30*time.Second)[1]
	for _, d := range []string{"nvme0n1", "vda"} {
		if !regexp.MustCompile(`\b` + d + `\b`).MatchString(disks) {
			t.Errorf("disk %s not in /sys/block (%q)", d, disks)
		}
	}
	m = v.Expect(`nodeinit: engine start at ([0-9.]+)s after kernel start`, 30*time.Second)
	t.Logf("kernel start to engine start: %ss (guest clock, TCG)", m[1])
	v.Expect(early.FailureScreenMarker, 120*time.Second)
	v.Expect(`Next: powering off`, 10*time.Second)
	if err := v.WaitExit(60 * time.Second); err != nil {
		t.Errorf("qemu exit: %v", err)
	}
	t.Logf("boot to power-off: %s wall clock", time.Since(start).Round(time.Millisecond))
}

// TestEarlyBootCarriesMostLoadsWhatIsThere boots an initramfs with the module set
// most (every storage, network, filesystem and crypto module of the kernel): /init
// loads the drivers of the devices present and the default list, skips the
// drivers of hardware that is not there, and leaves the long tail to the kernel.
// In the rescue shell an XFS disk (made on the host by mkfs.xfs) mounts: the
// kernel asks /bbin/modprobe for fs-xfs, which loads xfs on demand.
func TestEarlyBootCarriesMostLoadsWhatIsThere(t *testing.T) {
	f := fixtures(t)
	names, err := initramfs.ModulesFor(initramfs.SetMost, f.Debian.ModulesDir, "")
	if err != nil {
		t.Fatal(err)
	}
	initrd, err := f.InitramfsBuiltWith(context.Background(), "most", initramfs.Options{Modules: names})
	if err != nil {
		t.Fatal(err)
	}
	xfs := vm.NewDisk(t, "xfs.img", 512<<20)
	if out, err := exec.Command("mkfs.xfs", "-q", "-L", "TAIL", xfs).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.xfs: %v\n%s", err, out)
	}
	v := vm.Start(t, vm.Config{
		Kernel: f.Debian.Vmlinuz, Initramfs: initrd,
		Append: "console=ttyS0,115200n8 nodeinit.onfail=shell nodeinit.debug",
		Disks: []vm.Disk{
			{Path: vm.NewDisk(t, "nvme.img", 256<<20), Interface: vm.NVMe, Serial: "NVME0001"},
			{Path: xfs, Interface: vm.Virtio, Serial: "XFSDISK1"},
		},
		NoReboot: true,
	})
	m := v.Expect(`nodeinit: modules: (\d+) loaded, (\d+) skipped without a matching device \(([^)]*)\).* in (\S+)\r?\n`, 90*time.Second)
	loaded, _ := strconv.Atoi(m[1])
	skipped := strings.Fields(m[3])
	t.Logf("most: %d modules named, %d considered at boot and loaded, %d skipped, in %s", len(names), loaded, len(skipped), m[4])
	if loaded > len(names)/3 {
		t.Errorf("%d of %d modules loaded at boot: /init should leave the long tail to the kernel", loaded, len(names))
	}
	for _, mod := range []string{"mlx5_core", "ena", "hv_netvsc", "virtio_net", "vmxnet3"} {
		if !slices.Contains(skipped, mod) {
			t.Errorf("%s loaded without its device (skipped: %v)", mod, skipped)
		}
	}
	if strings.Contains(v.Output(), "nodeinit: module virtio_blk:") || strings.Contains(v.Output(), "nodeinit: module squashfs:") {
		t.Error("virtio_blk or squashfs failed to load")
	}
	v.Expect(early.RescueShellBanner, 180*time.Second)
	time.Sleep(2 * time.Second) // let the shell draw its prompt
	v.Send("grep -c xfs /proc/modules\r")
	v.Expect(`\n0\r?\n`, 30*time.Second) // not loaded at boot
	v.Send("mkdir /mnt; mount -t xfs /dev/vda /mnt && echo MOUNTED-$(grep -c '^xfs ' /proc/modules)\r")
	v.Expect(`MOUNTED-1`, 60*time.Second)
	v.Send("umount /mnt; poweroff\r")
	if err := v.WaitExit(60 * time.Second); err != nil {
		t.Errorf("qemu exit: %v", err)
	}
}

// TestRescueShellOnFail uses nodeinit.onfail=shell: after the failure screen the rescue shell
// opens on the console, runs commands typed on the serial line, and powers the VM off.
func TestRescueShellOnFail(t *testing.T) {
	a := artifacts(t)
	initrd := testInitramfs(t, a)
	v := vm.Start(t, vm.Config{
		Kernel:    a.Vmlinuz,
		Initramfs: initrd,
		Append:    "console=ttyS0,115200n8 nodeinit.onfail=shell",
		Disks:     []vm.Disk{{Path: vm.NewDisk(t, "nvme.img", 64<<20), Interface: vm.NVMe, Serial: "NVME0002"}},
		NoReboot:  true,
	})
	v.Expect(early.FailureScreenMarker, 180*time.Second)
	v.Expect(early.RescueShellBanner, 30*time.Second)
	// Quiet by default: the early mounts that went well are detail, kept for
	// nodeinit.debug (TestEarlyBoot) and the saved log.
	if strings.Contains(v.Output(), "nodeinit: early ok") {
		t.Error("the console lists the early mounts without nodeinit.debug")
	}
	time.Sleep(2 * time.Second) // let the shell draw its prompt
	v.Send("ls /sys/block\r")
	v.Expect(`nvme0n1`, 30*time.Second)
	v.Send("cat /etc/nodeinit/modules\r")
	v.Expect(`virtio_blk`, 30*time.Second)
	v.Send("poweroff\r")
	if err := v.WaitExit(60 * time.Second); err != nil {
		t.Errorf("qemu exit: %v", err)
	}
}
