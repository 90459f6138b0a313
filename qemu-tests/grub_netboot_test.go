package qemutests

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/media"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// grubNetBoot starts the node under OVMF with no kernel given and no option ROM on the NIC,
// so OVMF's own virtio-net driver and PXE client take QEMU's DHCP offer and fetch
// grubnetx64.efi from its built-in TFTP server. GRUB then reads grub/grub.cfg and loads
// the kernel and initramfs over TFTP. As in pxeBoot, the user network is unrestricted only
// so that the guest reaches the test's HTTP server on the host's loopback as 10.0.2.2.
func grubNetBoot(n *node, tftp string) *vm.VM {
	n.t.Helper()
	return vm.Start(n.t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1536,
		Events: n.eventsFile(),
		ExtraArgs: []string{
			"-netdev", "user,id=n0,restrict=off,tftp=" + tftp + ",bootfile=" + media.PXEGrubNet,
			"-device", "virtio-net-pci,netdev=n0,mac=" + pxeMAC + ",romfile=,bootindex=1",
		}})
}

// grubNetFile is the network config the install seeds for the NIC that BOOTIF names: its
// MAC without colons (nodeconfig/spec).
var grubNetFile = "/etc/systemd/network/10-nodeinit-" + strings.ReplaceAll(pxeMAC, ":", "") + ".network"

// TestGRUBNetbootInstallOverHTTP boots Debian's signed GRUB network image (grubnetx64.efi.signed
// from grub-efi-amd64-signed) from the tree mkmedia pxe writes: GRUB finds grub/grub.cfg
// through the prefix built into it, its default entry installs unattended, and BOOTIF comes
// from GRUB's ${net_default_mac}. The initramfs brings up that NIC, fetches the bundle from
// the test's HTTP server and installs onto the NVMe disk; independent tools check the disk.
// The installed node then boots from its disk with the hostname and, for the NIC GRUB
// booted from, the network config that BOOTIF named.
func TestGRUBNetbootInstallOverHTTP(t *testing.T) {
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "GRUB0001"})
	tftp, srv := pxeTree(t, media.MenuOptions{Unattended: "serial:GRUB0001",
		ExtraArgs: []string{"console=ttyS0", "panic=5", "nodeinit.events=ttyS1", "hostname=grub1",
			"testos.action=show:" + grubNetFile + ",poweroff"}})
	start := time.Now()
	v := grubNetBoot(n, tftp)
	// Without its grub.cfg, GRUB stops at its prompt and prints nothing else.
	if m := v.Expect(`Loading nodeinit\.\.\.|grub> `, 2*time.Minute); m[0] != "Loading nodeinit..." {
		t.Fatalf("GRUB did not find /%s on the TFTP server and stopped at its prompt", media.PXEGrubCfg)
	}
	t.Logf("GRUB read /%s and started the install entry after %s", media.PXEGrubCfg, time.Since(start).Round(time.Second))
	// GRUB expands ${net_default_mac} in the aa:bb:… form.
	v.Expect(`Command line: [^\n]*BOOTIF=01-`+regexp.QuoteMeta(pxeMAC)+`\b`, 2*time.Minute)
	t.Logf("kernel started after %s (kernel and initramfs over GRUB's TFTP)", time.Since(start).Round(time.Second))
	expectDHCP(t, v, 2*time.Minute)
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	t.Logf("installed after %s", time.Since(start).Round(time.Second))

	srv.checkFetched(t, pxeMAC)
	checkInstalledDisk(t, n.disks[0].Path)

	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=grub1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW `+regexp.QuoteMeta(grubNetFile)+` "[^"]*MACAddress=`+regexp.QuoteMeta(pxeMAC)+`\\n`, 30*time.Second)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
	t.Logf("installed node booted after %s", time.Since(start).Round(time.Second))
}
