package early

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/modalias"
)

const testAliases = `alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias virtio:d00000001v* virtio_net
alias pci:v000015B3d0000101Dsv*sd*bc*sc*i* mlx5_core
alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
alias pci:v00008086d00002922sv*sd*bc*sc*i* ahci
alias scsi:t-0x00* sd_mod
alias scsi:t-0x05* sr_mod
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb_storage
alias fs-ext4 ext4
`

// fakeBus is a machine whose virtio devices appear once virtio_pci has loaded,
// as they do when the PCI driver probes, and whose SCSI bus is registered once
// the AHCI driver (through libata and scsi_mod) has loaded. It has no USB
// host controller, so no usb bus.
type fakeBus struct {
	loaded []string
	rounds [][]string
}

func (b *fakeBus) scan() ([]string, map[string]bool, error) {
	devs := []string{"pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", "pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00",
		"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01"}
	buses := map[string]bool{"pci": true, "platform": true}
	if slices.Contains(b.loaded, "virtio_pci") {
		devs = append(devs, "virtio:d00000002v00001AF4")
		buses["virtio"] = true
	}
	if slices.Contains(b.loaded, "ahci") {
		buses["scsi"] = true
	}
	return devs, buses, nil
}

func (b *fakeBus) load(names []string) {
	b.rounds = append(b.rounds, slices.Sorted(slices.Values(names)))
	b.loaded = append(b.loaded, names...)
}

func TestLoadForDevicesFollowsTheBus(t *testing.T) {
	table, err := modalias.Parse(strings.NewReader(testAliases))
	if err != nil {
		t.Fatal(err)
	}
	bus := &fakeBus{}
	names := []string{"virtio_pci", "virtio_blk", "virtio_net", "mlx5_core", "e1000e", "ahci", "sd_mod", "sr_mod", "usb_storage", "ext4", "squashfs"}
	skipped, rounds, err := loadForDevices(names, []string{"virtio_net"}, table, bus.scan, bus.load)
	if err != nil {
		t.Fatal(err)
	}
	// ext4 and squashfs are in the list (an initramfs built before they were left
	// to be loaded on demand) and drive no device: they load at once. virtio_blk
	// loads beside virtio_pci, for the virtio block device the virtio-pci device
	// becomes (modalias.VirtioChild); sd_mod and sr_mod wait for the SCSI bus.
	want := [][]string{{"ahci", "e1000e", "ext4", "squashfs", "virtio_blk", "virtio_net", "virtio_pci"}, {"sd_mod", "sr_mod"}}
	if !slices.EqualFunc(bus.rounds, want, slices.Equal) {
		t.Errorf("rounds %v, want %v", bus.rounds, want)
	}
	if !slices.Equal(skipped, []string{"mlx5_core", "usb_storage"}) {
		t.Errorf("skipped %v, want mlx5_core (no such device; virtio_net is forced) and usb_storage (no usb bus)", skipped)
	}
	if rounds != 3 {
		t.Errorf("%d scans, want 3 (the third finds nothing new)", rounds)
	}
}

func TestLoadForDevicesLoadsAllWithoutAliasesOrSysfs(t *testing.T) {
	names := []string{"virtio_pci", "mlx5_core", "ext4"}
	var got []string
	skipped, _, err := loadForDevices(names, nil, nil, nil, func(n []string) { got = append(got, n...) })
	if err != nil || len(skipped) != 0 || !slices.Equal(got, names) {
		t.Errorf("without modules.alias: loaded %v, skipped %v, err %v; want all loaded", got, skipped, err)
	}

	table, _ := modalias.Parse(strings.NewReader(testAliases))
	got = nil
	broken := func() ([]string, map[string]bool, error) { return nil, nil, errors.New("no sysfs") }
	skipped, _, err = loadForDevices(names, nil, table, broken, func(n []string) { got = append(got, n...) })
	slices.Sort(got)
	if err == nil || len(skipped) != 0 || !slices.Equal(got, []string{"ext4", "mlx5_core", "virtio_pci"}) {
		t.Errorf("sysfs unreadable: loaded %v, skipped %v, err %v; want all loaded and the error", got, skipped, err)
	}
}

func TestForcedModulesFromTheCommandLine(t *testing.T) {
	got := ForcedModules("quiet modules-load=e1000e,mlx5-core rd.driver.pre=megaraid_sas rd.modules-load=e1000e install modules-load")
	if want := []string{"e1000e", "mlx5_core", "megaraid_sas"}; !slices.Equal(got, want) {
		t.Errorf("ForcedModules = %v, want %v", got, want)
	}
}
