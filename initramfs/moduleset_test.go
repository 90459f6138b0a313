package initramfs

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/internal/testkernel"
	"github.com/nodeinit/nodeinit/modalias"
)

// TestModuleSetMostCoversStorageAndNetworkByRule takes the cached Debian kernel's
// modules.order: every storage, network and filesystem driver it ships is in, the
// rest (sound, netfilter, comedi) is not, and DefaultModules are all there.
func TestModuleSetMostCoversStorageAndNetworkByRule(t *testing.T) {
	dir := testkernel.ModulesDir(t, "modules.order")
	names, err := ModulesFor(SetMost, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"virtio_blk", "virtio_net", "virtio_scsi", "nvme_fabrics", "dm_crypt", "raid1", "ext4", "xfs", "btrfs", "squashfs", "overlay", "ena", "mlx5_core", "hv_storvsc", "8021q", "nls_utf8"} {
		if !slices.Contains(names, want) {
			t.Errorf("most lacks %s", want)
		}
	}
	for _, not := range []string{"nf_tables", "comedi", "nls_koi8_r", "drbd"} {
		if slices.Contains(names, not) {
			t.Errorf("most has %s", not)
		}
	}
	for _, n := range DefaultModules {
		if !slices.Contains(names, normName(n)) && !slices.Contains(names, n) {
			t.Errorf("most lacks default module %s", n)
		}
	}
	mods, err := ResolveModules(dir, names)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("most: %d names, %d files with dependencies, %d built in, %d missing (%v)", len(names), len(mods.Files), len(mods.Builtin), len(mods.Missing), mods.Missing)
	if len(mods.Files) < 3*len(DefaultModules) {
		t.Errorf("most resolves to %d files, fewer than 3× the default list", len(mods.Files))
	}
}

// TestModuleSetHostMatchesThisMachinesDevices uses a sysfs tree with a virtio
// disk behind virtio-pci: host takes their drivers and the device-free default
// modules, and no driver for hardware that is not there.
func TestModuleSetHostMatchesThisMachinesDevices(t *testing.T) {
	dir := testkernel.ModulesDir(t, "modules.alias")
	sys := t.TempDir()
	for dev, alias := range map[string]string{
		"pci/devices/0000:00:02.0": "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00",
		"virtio/devices/virtio0":   "virtio:d00000002v00001AF4",
	} {
		// a bus's devices/ entries are links to the device; a directory reads the same
		if err := os.MkdirAll(filepath.Join(sys, "bus", dev), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(sys, "bus", dev, "modalias"), []byte(alias+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	names, err := ModulesFor(SetHost, dir, sys)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"virtio_pci", "virtio_blk", "squashfs", "ext4", "vfat", "dm_mod"} {
		if !slices.Contains(names, want) {
			t.Errorf("host lacks %s: %v", want, names)
		}
	}
	for _, not := range []string{"virtio_net", "mlx5_core", "ena", "hv_netvsc"} {
		if slices.Contains(names, not) {
			t.Errorf("host has %s, whose device is not there: %v", not, names)
		}
	}
	if _, err := ModulesFor("all", dir, sys); err == nil {
		t.Error(`module set "all": no error`)
	}
}

// TestBootModulesLeavesTheTailToTheKernel: drivers of a probed bus and of a late
// bus (sd_mod) are considered at boot; modules that drive no device (ext4, xfs,
// an extra crypto), even those of the default list, wait until they are needed;
// without modules.alias everything is considered at boot.
func TestBootModulesLeavesTheTailToTheKernel(t *testing.T) {
	table, err := modalias.Parse(strings.NewReader("alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\nalias scsi:t-0x00* sd_mod\nalias fs-xfs xfs\nalias fs-ext4 ext4\nalias crypto-sha512 sha512_generic\n"))
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"virtio_pci", "sd_mod", "ext4", "xfs", "sha512_generic", "dm_mod"}
	boot, onDemand := bootModules(table, names)
	if !slices.Equal(boot, []string{"virtio_pci", "sd_mod"}) || !slices.Equal(onDemand, []string{"ext4", "xfs", "sha512_generic", "dm_mod"}) {
		t.Errorf("boot %v, on demand %v; want virtio_pci sd_mod at boot, ext4 xfs sha512_generic dm_mod on demand", boot, onDemand)
	}
	if boot, onDemand := bootModules(nil, names); !slices.Equal(boot, names) || len(onDemand) != 0 {
		t.Errorf("without modules.alias: boot %v, on demand %v; want all at boot", boot, onDemand)
	}
}

// TestBootModulesWithTheFetchedKernel splits the module set most by the cached
// Debian kernel's own modules.alias: PCI and virtio drivers and the SCSI and
// USB class drivers are considered at boot, the filesystems, loop, device-mapper,
// md, VLAN and codepage modules wait until something uses them.
func TestBootModulesWithTheFetchedKernel(t *testing.T) {
	dir := testkernel.ModulesDir(t, "modules.alias")
	table, err := modalias.ReadFile(filepath.Join(dir, "modules.alias"))
	if err != nil {
		t.Fatal(err)
	}
	names, err := ModulesFor(SetMost, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	boot, onDemand := bootModules(table, names)
	for _, want := range []string{"virtio_pci", "virtio_blk", "virtio_scsi", "megaraid_sas", "mpt3sas", "vmxnet3", "sd_mod", "sr_mod"} {
		if slices.Contains(names, want) && !slices.Contains(boot, want) {
			t.Errorf("%s is not considered at boot", want)
		}
	}
	for _, want := range []string{"squashfs", "overlay", "vfat", "isofs", "xfs", "loop", "dm_mod", "dm_crypt", "md_mod", "raid1", "8021q", "nls_cp437", "efivarfs"} {
		if slices.Contains(names, want) && !slices.Contains(onDemand, want) {
			t.Errorf("%s is loaded at boot; it drives no device and should wait until used", want)
		}
	}
	t.Logf("most: %d modules, %d considered at boot, %d on demand", len(names), len(boot), len(onDemand))
}
