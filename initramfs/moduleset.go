package initramfs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nodeinit/nodeinit/modalias"
)

// ModuleSet names a rule that chooses the modules an initramfs carries.
type ModuleSet string

// The module sets mkinitramfs --modules takes.
const (
	// SetDefault is DefaultModules: the drivers of common virtual and server
	// hardware, by name.
	SetDefault ModuleSet = "default"
	// SetMost is every module of the kernel under the directories in MostDirs, the
	// coverage of initramfs-tools' MODULES=most: whatever disk, controller or NIC the
	// machine has, its driver is in. /init loads only the ones whose device is
	// present (modules.alias), so carrying them costs size, not boot time.
	SetMost ModuleSet = "most"
	// SetHost is what the machine running mkinitramfs uses: the drivers in the
	// target kernel whose aliases match a device under /sys here, plus the modules
	// of DefaultModules that drive no device (filesystems, device-mapper, packet
	// sockets), which every boot may need.
	SetHost ModuleSet = "host"
)

// MostDirs are the kernel module directories SetMost takes whole, relative to
// lib/modules/<version>: storage (block, ATA, SCSI, NVMe, MMC, USB storage and
// host controllers, md/dm, the hypervisors' buses), network (every Ethernet and
// virtual NIC, VLAN and packet sockets), filesystems, crypto, the TPM, and the
// keyboard drivers the installer screen reads.
var MostDirs = []string{
	"kernel/drivers/block/", "kernel/drivers/ata/", "kernel/drivers/scsi/", "kernel/drivers/nvme/",
	"kernel/drivers/mmc/", "kernel/drivers/usb/storage/", "kernel/drivers/usb/host/", "kernel/drivers/md/",
	"kernel/drivers/virtio/", "kernel/drivers/hv/", "kernel/drivers/xen/", "kernel/drivers/vdpa/",
	"kernel/drivers/net/ethernet/", "kernel/drivers/net/virtio_net", "kernel/drivers/net/hyperv/",
	"kernel/drivers/net/xen-netfront", "kernel/drivers/net/vmxnet3/", "kernel/drivers/net/mdio/",
	"kernel/drivers/net/phy/", "kernel/drivers/net/pcs/", "kernel/drivers/net/bonding/", "kernel/drivers/net/team/",
	"kernel/net/8021q/", "kernel/net/packet/",
	"kernel/fs/", "kernel/crypto/", "kernel/arch/x86/crypto/",
	"kernel/drivers/char/tpm/", "kernel/drivers/hid/", "kernel/drivers/input/keyboard/",
}

// MostExcluded are directories under MostDirs that SetMost leaves out: the
// codepages a FAT or ISO mount does not ask for (DefaultModules has the ones it
// does), and the exotic block drivers nothing boots from.
var MostExcluded = []string{"kernel/fs/nls/", "kernel/drivers/block/drbd/", "kernel/drivers/block/rnbd/"}

// ModulesFor returns the module names set chooses from the kernel modules
// directory dir; sys is the sysfs to match for SetHost (normally /sys).
func ModulesFor(set ModuleSet, dir, sys string) ([]string, error) {
	switch set {
	case SetDefault, "":
		return slices.Clone(DefaultModules), nil
	case SetMost:
		return mostModules(dir)
	case SetHost:
		return hostModules(dir, sys)
	}
	return nil, fmt.Errorf("module set %q: want %s, %s or %s", set, SetDefault, SetMost, SetHost)
}

// mostModules is every module in dir/modules.order under MostDirs and not under
// MostExcluded, in that order, then the rest of DefaultModules.
func mostModules(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, "modules.order"))
	if err != nil {
		return nil, fmt.Errorf("module set most: %w (a kernel's modules directory has modules.order)", err)
	}
	defer f.Close()
	var names []string
	seen := map[string]bool{}
	under := func(rel string, dirs []string) bool {
		return slices.ContainsFunc(dirs, func(d string) bool { return strings.HasPrefix(rel, d) })
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rel := strings.TrimSpace(sc.Text())
		if under(rel, MostDirs) && !under(rel, MostExcluded) && !seen[moduleName(rel)] {
			seen[moduleName(rel)] = true
			names = append(names, moduleName(rel))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("module set most: modules.order: %w", err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("module set most: %s/modules.order lists no module under the storage, network and filesystem directories", dir)
	}
	for _, n := range DefaultModules {
		if !seen[normName(n)] {
			seen[normName(n)] = true
			names = append(names, n)
		}
	}
	return names, nil
}

// hostModules matches the devices under sys against dir/modules.alias.
func hostModules(dir, sys string) ([]string, error) {
	table, err := modalias.ReadFile(filepath.Join(dir, "modules.alias"))
	if err != nil {
		return nil, fmt.Errorf("module set host: %w", err)
	}
	devices, err := modalias.Scan(sys)
	if err != nil {
		return nil, fmt.Errorf("module set host: %w", err)
	}
	var names []string
	seen := map[string]bool{}
	add := func(n string) {
		if n = normName(n); !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, d := range devices {
		for _, m := range table.Match(d) {
			add(m)
		}
	}
	for _, n := range DefaultModules {
		if !table.DeviceBound(n) {
			add(n)
		}
	}
	return names, nil
}
