package modalias

import (
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// aliases is a modules.alias excerpt of Debian's 6.1 cloud kernel.
const aliases = `# Aliases extracted from modules themselves.
alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci
alias virtio:d00000002v* virtio_blk
alias virtio:d00000001v* virtio_net
alias scsi:t-0x00* sd_mod
alias block-major-8-* sd_mod
alias pci:v000015B3d0000101Dsv*sd*bc*sc*i* mlx5_core
alias auxiliary:mlx5_core.eth mlx5_core
alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e
alias acpi*:MSFT0101:* tpm_crb
alias usb:v*p*d*dc*dsc*dp*ic08isc06ip50in* usb-storage
alias fs-ext4 ext4
alias net-pf-17 af_packet
alias devname:mapper/control dm_mod
alias cpu:type:x86,ven*fam*mod*:feature:*0099* aesni_intel
`

func table(t *testing.T) *Table {
	t.Helper()
	tb, err := Parse(strings.NewReader(aliases))
	if err != nil {
		t.Fatal(err)
	}
	if tb.Len() != 14 {
		t.Fatalf("parsed %d aliases, want 14", tb.Len())
	}
	return tb
}

// TestMatchFindsTheDriverOfEachDevice uses modalias strings as QEMU's q35
// devices show them.
func TestMatchFindsTheDriverOfEachDevice(t *testing.T) {
	tb := table(t)
	for _, c := range []struct {
		modalias string
		want     []string
	}{
		{"pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", []string{"virtio_pci"}},
		{"virtio:d00000002v00001AF4", []string{"virtio_blk"}},
		{"virtio:d00000001v00001AF4", []string{"virtio_net"}},
		{"pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", []string{"e1000e"}},
		{"acpi:MSFT0101:", []string{"tpm_crb"}},
		{"scsi:t-0x00", []string{"sd_mod"}},
		{"usb:v0781p5583d0100dc00dsc00dp00ic08isc06ip50in00", []string{"usb_storage"}},
		{"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", nil}, // AHCI: built in, no alias
		{"virtio:d00000010v00001AF4", nil},                             // virtio-gpu: no driver here
	} {
		if got := tb.Match(c.modalias); !slices.Equal(got, c.want) {
			t.Errorf("Match(%s) = %v, want %v", c.modalias, got, c.want)
		}
	}
}

// TestDeviceBoundByBus: drivers on probed buses load only for a device; class
// drivers for SCSI and USB children, filesystems and protocols always load, and
// the CPU's accelerators are no device's driver.
func TestDeviceBoundByBus(t *testing.T) {
	tb := table(t)
	for mod, want := range map[string]bool{
		"virtio_pci": true, "virtio_blk": true, "mlx5_core": true, "e1000e": true, "tpm_crb": true,
		"sd_mod": false, "usb-storage": false, "ext4": false, "af_packet": false, "dm_mod": false, "aesni_intel": false,
		"not_in_the_table": false,
	} {
		if got := tb.DeviceBound(mod); got != want {
			t.Errorf("DeviceBound(%s) = %v, want %v", mod, got, want)
		}
	}
}

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", true},
		{"pci:v00001AF4d*sv*sd*bc*sc*i*", "pci:v00001AF5d00001001sv00001AF4sd00000002bc01sc00i00", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"[ab]x", "bx", true},
		{"[!ab]x", "bx", false},
		{"[^ab]x", "cx", true},
		{"[a-c]x", "bx", true},
		{"[]]x", "]x", true},
		{"[a-]x", "-x", true},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{"[ab", "[ab", true}, // unclosed class: literal
		{"*", "", true},
		{"", "", true},
		{"", "a", false},
		{"**a", "a", true},
	} {
		if got := Glob(c.pattern, c.name); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

// FuzzGlob compares Glob with path.Match where both define the pattern the same
// way: ASCII (modalias strings are; path.Match counts runes, fnmatch bytes), no
// '/', no '\', and classes without '!' or a leading ']' or '-'.
func FuzzGlob(f *testing.F) {
	f.Add("a*b?[c-e]", "axxbzd")
	f.Add("*[^x]*", "axb")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		for _, c := range []byte(pattern + name) {
			if c >= 0x80 {
				return
			}
		}
		if strings.ContainsAny(pattern+name, `/\!`) || strings.Contains(pattern, "[]") || strings.Contains(pattern, "[-") ||
			strings.Contains(pattern, "[^]") || strings.Contains(pattern, "[^-") || strings.Contains(pattern, "-]") {
			return
		}
		want, err := path.Match(pattern, name)
		if err != nil {
			return
		}
		if got := Glob(pattern, name); got != want {
			t.Errorf("Glob(%q, %q) = %v, path.Match says %v", pattern, name, got, want)
		}
	})
}

// TestScanReadsEveryModalias lays out sysfs as the kernel does: devices under
// devices/, linked from each bus's devices/ directory, the CPU and DMI modalias
// outside any bus, one device on two buses' lists, a device without modalias,
// and an empty one.
// TestLateBusesOf: the drivers of SCSI targets and USB devices wait for their
// bus, not for a device; nothing else has a late bus.
func TestLateBusesOf(t *testing.T) {
	tb := table(t)
	for mod, want := range map[string][]string{
		"sd_mod": {"scsi"}, "usb-storage": {"usb"}, "usb_storage": {"usb"},
		"virtio_blk": nil, "ext4": nil, "dm_mod": nil, "aesni_intel": nil, "not_in_the_table": nil,
	} {
		if got := tb.LateBusesOf(mod); !slices.Equal(got, want) {
			t.Errorf("LateBusesOf(%s) = %v, want %v", mod, got, want)
		}
	}
}

func TestScanReadsEveryModalias(t *testing.T) {
	sys := t.TempDir()
	files := map[string]string{
		"devices/pci0000:00/0000:00:02.0/modalias":             "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00\n",
		"devices/pci0000:00/0000:00:02.0/virtio0/modalias":     "virtio:d00000002v00001AF4\n",
		"devices/pci0000:00/0000:00:03.0/modalias":             "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00\n",
		"devices/LNXSYSTM:00/LNXSYBUS:00/MSFT0101:00/modalias": "acpi:MSFT0101:\n",
		"devices/system/cpu/modalias":                          "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001\n",
		"devices/virtual/dmi/id/modalias":                      "",
		"devices/system/memory/memory0/uevent":                 "",
	}
	for p, s := range files {
		full := filepath.Join(sys, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	for link, dev := range map[string]string{
		"bus/pci/devices/0000:00:02.0": "devices/pci0000:00/0000:00:02.0",
		"bus/pci/devices/0000:00:03.0": "devices/pci0000:00/0000:00:03.0",
		"bus/virtio/devices/virtio0":   "devices/pci0000:00/0000:00:02.0/virtio0",
		"bus/acpi/devices/MSFT0101:00": "devices/LNXSYSTM:00/LNXSYBUS:00/MSFT0101:00",
		"bus/memory/devices/memory0":   "devices/system/memory/memory0",
		"bus/platform/devices/gone.0":  "devices/platform/gone.0",
	} {
		if err := os.MkdirAll(filepath.Join(sys, filepath.Dir(link)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(sys, dev), filepath.Join(sys, link)); err != nil {
			t.Fatal(err)
		}
	}
	scanner := NewScanner(sys)
	got, err := scanner.Scan()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	want := []string{"acpi:MSFT0101:", "cpu:type:x86,ven0000fam0006mod003F:feature:,0000,0001",
		"pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", "virtio:d00000002v00001AF4"}
	if !slices.Equal(got, want) {
		t.Errorf("Scan = %q, want %q", got, want)
	}
	if _, err := Scan(filepath.Join(sys, "absent")); err == nil {
		t.Error("Scan of a tree without bus/: no error")
	}
	if got := slices.Sorted(maps.Keys(scanner.Buses())); !slices.Equal(got, []string{"acpi", "memory", "pci", "platform", "virtio"}) {
		t.Errorf("Buses = %v, want acpi memory pci platform virtio", got)
	}
}

// TestScannerReadsOnlyNewDevices: a second scan finds a device added since
// (as a loaded bus driver adds them) and takes the ones it has read from
// memory, not from their files again.
func TestScannerReadsOnlyNewDevices(t *testing.T) {
	sys := t.TempDir()
	add := func(bus, name, modalias string) string {
		dir := filepath.Join(sys, "bus", bus, "devices", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, "modalias")
		if err := os.WriteFile(f, []byte(modalias+"\n"), 0o444); err != nil {
			t.Fatal(err)
		}
		return f
	}
	pci := add("pci", "0000:00:02.0", "pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00")
	s := NewScanner(sys)
	if got, err := s.Scan(); err != nil || !slices.Equal(got, []string{"pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00"}) {
		t.Fatalf("first scan = %q, %v", got, err)
	}
	add("virtio", "virtio0", "virtio:d00000002v00001AF4")
	os.Chmod(pci, 0o644)
	os.WriteFile(pci, []byte("pci:changed\n"), 0o644) // a read of it would show this
	got, err := s.Scan()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", "virtio:d00000002v00001AF4"}; !slices.Equal(got, want) {
		t.Errorf("second scan = %q, want %q (the PCI device from the first scan, the virtio one new)", got, want)
	}
}

// TestVirtioChild: the virtio device that virtio_pci adds for QEMU's
// virtio-pci devices, modern and transitional, is predicted from the PCI
// modalias, and matches the driver the later scan would find.
func TestVirtioChild(t *testing.T) {
	tb := table(t)
	for _, c := range []struct{ pci, want, driver string }{
		{"pci:v00001AF4d00001042sv00001AF4sd00001100bc01sc00i00", "virtio:d00000002v00001AF4", "virtio_blk"}, // modern block
		{"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", "virtio:d00000002v00001AF4", "virtio_blk"}, // transitional block
		{"pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00", "virtio:d00000001v00001AF4", "virtio_net"}, // modern net
		{"pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", "virtio:d00000001v00001AF4", "virtio_net"}, // transitional net
		{"pci:v00001AF4d00001050sv00001AF4sd00001100bc03sc80i00", "virtio:d00000010v00001AF4", ""},           // virtio-gpu
	} {
		got, ok := VirtioChild(c.pci)
		if !ok || got != c.want {
			t.Errorf("VirtioChild(%s) = %q, %v; want %q", c.pci, got, ok, c.want)
			continue
		}
		if m := tb.Match(got); c.driver != "" && !slices.Equal(m, []string{c.driver}) {
			t.Errorf("Match(%s) = %v, want [%s]", got, m, c.driver)
		}
	}
	for _, not := range []string{
		"pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00", // e1000e: not virtio
		"pci:v00001AF4d00001110sv00001AF4sd00001100bc05sc00i00", // ivshmem: Red Hat, not virtio
		"virtio:d00000002v00001AF4",
		"pci:v00001AF4d0000104",
		"acpi:MSFT0101:",
	} {
		if got, ok := VirtioChild(not); ok {
			t.Errorf("VirtioChild(%s) = %q: not a virtio PCI device", not, got)
		}
	}
}
