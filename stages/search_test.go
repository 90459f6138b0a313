package stages

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

// writeTree writes files (path → content) under root; a content starting
// with "->" makes a symlink to the rest.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := strings.CutPrefix(content, "->"); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(content+"\n"), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestImageNotFoundSaysWhereItLooked is a q35 machine booted from its AHCI
// CD with an initramfs that has no ahci module: the CD is not a block device,
// so no default source holds the image. The refusal names the sources it
// tried, the block devices there were, and the controllers without a driver
// with the module to add; driven controllers are not named.
func TestImageNotFoundSaysWhereItLooked(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"sys/class/block/nvme0n1/size":                 "25165824",
		"sys/class/block/loop0/size":                   "0",
		"sys/class/block/sr0/size":                     "0",
		"sys/bus/pci/devices/0000:00:1f.2/class":       "0x010601",
		"sys/bus/pci/devices/0000:00:1f.2/vendor":      "0x8086",
		"sys/bus/pci/devices/0000:00:1f.2/device":      "0x2922",
		"sys/bus/pci/devices/0000:00:04.0/class":       "0x010802",
		"sys/bus/pci/devices/0000:00:04.0/vendor":      "0x1b36",
		"sys/bus/pci/devices/0000:00:04.0/device":      "0x0010",
		"sys/bus/pci/devices/0000:00:04.0/driver":      "->../../../bus/pci/drivers/nvme",
		"sys/bus/pci/devices/0000:00:1d.7/class":       "0x0c0320",
		"sys/bus/pci/devices/0000:00:1d.7/vendor":      "0x8086",
		"sys/bus/pci/devices/0000:00:1d.7/device":      "0x293a",
		"sys/bus/pci/devices/0000:00:01.0/class":       "0x030000", // a VGA card is no storage
		"sys/devices/usb1/1-1/idVendor":                "0781",
		"sys/devices/usb1/1-1/idProduct":               "5567",
		"sys/devices/usb1/1-1/1-1:1.0/bInterfaceClass": "08",
		"sys/bus/usb/devices/1-1:1.0":                  "->../../../devices/usb1/1-1/1-1:1.0",
	})
	s := searched(root, []string{"initramfs:/bundle (no such directory)"})
	if got := strings.Join(s.BlockDevices, ", "); got != "nvme0n1, sr0 (no medium)" {
		t.Errorf("block devices %q, want nvme0n1 and the empty sr0, not the unused loop0", got)
	}
	want := []plan.Controller{
		{Address: "0000:00:1d.7", Kind: "USB 2 (EHCI) controller", ID: "8086:293a", Module: "ehci_pci"},
		{Address: "0000:00:1f.2", Kind: "SATA (AHCI) controller", ID: "8086:2922", Module: "ahci"},
		{Address: "1-1:1.0", Kind: "USB mass-storage device", ID: "0781:5567", Module: "usb_storage"},
	}
	if len(s.Undriven) != len(want) {
		t.Fatalf("undriven %+v\nwant %+v", s.Undriven, want)
	}
	for i := range want {
		if s.Undriven[i] != want[i] {
			t.Errorf("undriven[%d] = %+v, want %+v", i, s.Undriven[i], want[i])
		}
	}

	p, err := cmdline.Parse("install storage_init=/dev/nvme0n1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = plan.Plan(p, &plan.Facts{EFI: true, ImageSearch: s})
	e := operr.Of(err)
	if e == nil {
		t.Fatalf("plan without an image: %v, want an operator error", err)
	}
	for _, w := range []string{"initramfs:/bundle (no such directory)", "block devices: nvme0n1, sr0 (no medium)",
		"0000:00:1f.2 SATA (AHCI) controller [8086:2922] (module ahci)"} {
		if !strings.Contains(e.Error(), w) {
			t.Errorf("refusal %q does not say %q", e.Error(), w)
		}
	}
	if !strings.Contains(e.Fix, "mkinitramfs --module ehci_pci --module ahci --module usb_storage") {
		t.Errorf("fix %q does not name the modules to add", e.Fix)
	}
	if strings.Contains(e.Error(), "0000:00:04.0") || strings.Contains(e.Error(), "0000:00:01.0") {
		t.Errorf("refusal names a driven or non-storage device: %q", e.Error())
	}
}

// TestProbeRecordsTheImageSearch: with no nodeinit.image= and none of the
// default sources present, the probe records where it looked.
func TestProbeRecordsTheImageSearch(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"proc/meminfo": "MemTotal: 4000000 kB"})
	for _, d := range []string{"sys/block", "sys/class/block", "dev"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	p, err := cmdline.Parse("install storage_init=/dev/nvme0n1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Probe(context.Background(), p, GatherOptions{Root: root, KeysDir: t.TempDir(), RunDir: t.TempDir(),
		DefaultImages: []string{"initramfs:/bundle", "label:NODEINIT"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	s := m.Facts.ImageSearch
	if m.Facts.Image != nil || s == nil || len(s.Tried) != 2 {
		t.Fatalf("image %+v, search %+v: want no image and two sources tried", m.Facts.Image, s)
	}
	if !strings.HasPrefix(s.Tried[0], "initramfs:/bundle (") || !strings.HasPrefix(s.Tried[1], "label:NODEINIT (") {
		t.Errorf("tried %q", s.Tried)
	}
}
