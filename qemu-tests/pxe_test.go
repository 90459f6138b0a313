package qemutests

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/media"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// pxeMAC is the test NIC's MAC; the HTTP server serves the bundle only under a path holding it.
const pxeMAC = "52:54:00:aa:bb:01"

// bundleServer serves one directory over HTTP on 127.0.0.1 (the guest reaches it as 10.0.2.2
// through QEMU's user network) under /nodes/<mac>/bundle/, and records every path asked for.
type bundleServer struct {
	port  int
	mu    sync.Mutex
	paths []string
}

func serveBundle(t *testing.T, dir, mac string) *bundleServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &bundleServer{port: ln.Addr().(*net.TCPAddr).Port}
	prefix := "/nodes/" + mac + "/bundle/"
	files := http.StripPrefix(prefix, http.FileServer(http.Dir(dir)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths = append(s.paths, r.URL.Path)
		s.mu.Unlock()
		if !strings.HasPrefix(r.URL.Path, prefix) {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

func (s *bundleServer) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.paths...)
}

// checkFetched fails t unless the rootfs was fetched and every request went to the path of
// mac: ${mac} in nodeinit.image resolved to that VM's MAC.
func (s *bundleServer) checkFetched(t *testing.T, mac string) {
	t.Helper()
	paths := s.seen()
	fetched := false
	for _, p := range paths {
		if !strings.HasPrefix(p, "/nodes/"+mac+"/bundle/") {
			t.Errorf("request outside this MAC's path: %s", p)
		}
		fetched = fetched || strings.HasSuffix(p, "/rootfs.squashfs")
	}
	if !fetched {
		t.Errorf("rootfs.squashfs never fetched over HTTP; requests: %v", paths)
	}
}

// pxeTree writes the network boot tree of the 1.0 bundle with `nodeinit mkmedia pxe`'s code
// (pxelinux, and Debian's signed GRUB network image as `-grubnet` takes it),
// with the image URL templated on the MAC, and returns its directory and the HTTP server.
func pxeTree(t *testing.T, menu media.MenuOptions) (string, *bundleServer) {
	t.Helper()
	return pxeTreeOf(t, "1.0", menu)
}

// pxeTreeOf is pxeTree for the fixture bundle of key (a version, or fixture.GenericKey).
func pxeTreeOf(t *testing.T, key string, menu media.MenuOptions) (string, *bundleServer) {
	t.Helper()
	f := fixtures(t)
	dir := filepath.Join(t.TempDir(), "tftp")
	srv := serveBundle(t, filepath.Join(dir, media.PXEBundleDir), pxeMAC)
	menu.Timeout = time.Second
	res, err := media.WritePXE(media.PXEOptions{Dir: dir, Bundle: f.Bundles[key],
		ImageURL: fmt.Sprintf("http://10.0.2.2:%d/nodes/${mac}/bundle/", srv.port), Menu: menu,
		PXELinux:        filepath.Join(f.Debian.CacheDir, "root", media.DebianPXELinux),
		SyslinuxModules: filepath.Join(f.Debian.CacheDir, "root", media.DebianSyslinuxModules),
		GrubNet:         f.Debian.GrubNetEFI})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pxe tree: %s", strings.Join(res.Files, " "))
	return dir, srv
}

// pxeBoot starts the node with no kernel given: OVMF boots the NIC first, whose iPXE ROM
// (Debian's ipxe-qemu) gets boot.ipxe from QEMU's built-in DHCP and TFTP server. The user
// network is unrestricted only so that the guest reaches the test's HTTP server on the
// host's loopback through the gateway address 10.0.2.2.
func pxeBoot(n *node, tftp string) *vm.VM {
	n.t.Helper()
	rom := filepath.Join(n.f.Debian.CacheDir, "root/usr/lib/ipxe/qemu/efi-virtio.rom")
	return vm.Start(n.t, vm.Config{OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, Disks: n.disks, NoReboot: true, MemoryMiB: 1536,
		Events: n.eventsFile(),
		ExtraArgs: []string{
			"-netdev", "user,id=n0,restrict=off,tftp=" + tftp + ",bootfile=" + media.PXEIPXE,
			"-device", "virtio-net-pci,netdev=n0,mac=" + pxeMAC + ",romfile=" + rom + ",bootindex=1",
		}})
}

// TestPXEInstallOverHTTP boots through iPXE from the generated boot.ipxe, whose default entry
// installs unattended: the initramfs brings up the NIC BOOTIF names with DHCP, expands
// ${mac} in nodeinit.image, fetches the signed bundle from the test's HTTP server, and
// installs onto the NVMe disk. The installed node then boots from its disk.
func TestPXEInstallOverHTTP(t *testing.T) {
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "PXE0001"})
	tftp, srv := pxeTree(t, media.MenuOptions{Unattended: "serial:PXE0001",
		ExtraArgs: []string{"console=ttyS0", "panic=5", "nodeinit.events=ttyS1", "hostname=pxe1", "testos.action=poweroff"}})
	v := pxeBoot(n, tftp)
	v.Expect(`iPXE`, time.Minute)
	net := expectDHCP(t, v, 3*time.Minute)
	t.Logf("network: %s in %s (guest clock, TCG)", net.Message, net.Duration)
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	var timing []string
	for _, e := range v.Events() {
		if e.Kind == stages.EventDone {
			timing = append(timing, fmt.Sprintf("%s %s", e.Stage, e.Duration.Round(time.Millisecond)))
		}
	}
	t.Logf("PXE install timing (guest clock, TCG): %s", strings.Join(timing, ", "))
	waitExit(t, v)

	srv.checkFetched(t, pxeMAC)
	checkInstalledDisk(t, n.disks[0].Path)

	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=pxe1`, 3*time.Minute)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
}

// expectDHCP waits for the network stage's done event and checks it brought up
// the boot NIC (pxeMAC) with a DHCP lease from QEMU's user network.
func expectDHCP(t *testing.T, v *vm.VM, timeout time.Duration) stages.Event {
	t.Helper()
	e := v.ExpectEvent("network done", vm.StageDone("network"), timeout)
	if !regexp.MustCompile(`\(` + pxeMAC + `\) dhcp 10\.0\.2\.\d+/24 via 10\.0\.2\.2`).MatchString(e.Message) {
		t.Errorf("the network stage did not bring up %s with DHCP: %q", pxeMAC, e.Message)
	}
	return e
}

// pxeBootBIOS starts the node under SeaBIOS, whose NIC's legacy PXE ROM gets pxelinux.0
// from QEMU's TFTP server. Debian's pxe-virtio.rom is built for the modern virtio-net ID
// (1af4:1041); a transitional device (1af4:1000) would not run it, so the NIC is modern only.
func pxeBootBIOS(n *node, tftp string) *vm.VM {
	n.t.Helper()
	rom := filepath.Join(n.f.Debian.CacheDir, "root/usr/lib/ipxe/qemu/pxe-virtio.rom")
	return vm.Start(n.t, vm.Config{Disks: n.disks, NoReboot: true, MemoryMiB: 1536, Events: n.eventsFile(),
		ExtraArgs: []string{
			"-netdev", "user,id=n0,restrict=off,tftp=" + tftp + ",bootfile=pxelinux.0",
			"-device", "virtio-net-pci,netdev=n0,disable-legacy=on,mac=" + pxeMAC + ",romfile=" + rom + ",bootindex=0",
		}})
}

// checkStatelessPXE network-boots the stateless entry with boot (after loaded has checked
// the boot loader's part): the NIC comes up, the image comes over HTTP into RAM, the test
// OS runs with the command line's hostname, and the disk is not written.
func checkStatelessPXE(t *testing.T, serial, hostname string, boot func(*node, string) *vm.VM, loaded func(*vm.VM)) {
	disk := seededDisk(t, "nvme.img", 1<<30)
	before := hashFile(t, disk)
	n := newNode(t, vm.Disk{Path: disk, Interface: vm.NVMe, Serial: serial})
	tftp, srv := pxeTree(t, media.MenuOptions{Default: media.EntryStateless,
		ExtraArgs: []string{"console=ttyS0", "panic=5", "nodeinit.events=ttyS1", "hostname=" + hostname, "testos.action=poweroff"}})
	v := boot(n, tftp)
	loaded(v)
	expectDHCP(t, v, 3*time.Minute)
	v.Expect(`TESTOS version=1\.0 build=1\.0 .*hostname=`+hostname, 3*time.Minute)
	v.Expect(`TESTOS-READY`, 30*time.Second)
	waitExit(t, v)
	if after := hashFile(t, disk); after != before {
		t.Errorf("stateless boot wrote the disk: sha256 %s, was %s", after, before)
	}
	srv.checkFetched(t, pxeMAC)
}

// TestPXEStateless boots the stateless entry through iPXE and boot.ipxe under OVMF.
func TestPXEStateless(t *testing.T) {
	checkStatelessPXE(t, "PXE0002", "pxe-ram", pxeBoot, func(v *vm.VM) { v.Expect(`iPXE`, time.Minute) })
}

// TestPXELinuxBIOSStateless boots the same tree under SeaBIOS through pxelinux.0 (Debian's
// pxelinux): it reads pxelinux.cfg/default, loads kernel and initramfs over TFTP and, through
// IPAPPEND 2, adds BOOTIF with the MAC of the boot NIC, which the initramfs brings up.
func TestPXELinuxBIOSStateless(t *testing.T) {
	checkStatelessPXE(t, "PXE0003", "pxe-bios", pxeBootBIOS, func(v *vm.VM) {
		// pxelinux's banner; the serial console can carry cursor moves inside it.
		v.Expect(`PXE(\x1b\[[0-9;]*[A-Za-z])*LINUX`, 2*time.Minute)
		v.Expect(`Command line: [^\n]*BOOTIF=01-`+strings.ReplaceAll(pxeMAC, ":", "-"), 3*time.Minute)
	})
}
