package diskio

import (
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fake sysfs trees under testdata/sysfs/ are written by this file:
//
//	go test ./disk -run TestFakeSysfs -update
//
// Each tree is a Root: sys/block/* links into sys/devices/…, as on a real
// machine, plus proc/self/mountinfo and proc/swaps.

var update = flag.Bool("update", false, "rewrite the fake sysfs trees under testdata/sysfs")

type tree struct {
	t   *testing.T
	dir string
}

func (tr tree) file(rel, content string) {
	tr.t.Helper()
	p := filepath.Join(tr.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr tree) link(rel, target string) {
	tr.t.Helper()
	p := filepath.Join(tr.dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tr.t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		tr.t.Fatal(err)
	}
}

// blockDev describes one disk in a fake tree.
type blockDev struct {
	name     string
	devPath  string            // directory under sys/devices of the disk
	devDir   string            // directory under sys/devices of its "device" link, if any
	sectors  int64             // 512-byte units
	lbs, pbs int               // logical/physical sector size
	attrs    map[string]string // extra attributes, relative to the disk dir
	parts    []fakePart
	majMin   string
}

type fakePart struct {
	num         int
	start, size int64 // 512-byte units
	majMin      string
	holders     []string
}

func (tr tree) disk(b blockDev) {
	dir := filepath.Join("sys", "devices", b.devPath)
	lbs, pbs := b.lbs, b.pbs
	if lbs == 0 {
		lbs = 512
	}
	if pbs == 0 {
		pbs = lbs
	}
	tr.file(filepath.Join(dir, "size"), itoa64(b.sectors)+"\n")
	tr.file(filepath.Join(dir, "queue", "logical_block_size"), itoa(lbs)+"\n")
	tr.file(filepath.Join(dir, "queue", "physical_block_size"), itoa(pbs)+"\n")
	for _, k := range []string{"ro", "removable", "queue/rotational"} {
		if _, ok := b.attrs[k]; !ok {
			tr.file(filepath.Join(dir, k), "0\n")
		}
	}
	tr.file(filepath.Join(dir, "dev"), b.majMin+"\n")
	if b.devDir != "" {
		rel, _ := filepath.Rel(dir, filepath.Join("sys", "devices", b.devDir))
		tr.link(filepath.Join(dir, "device"), rel)
	}
	for k, v := range b.attrs {
		tr.file(filepath.Join(dir, k), v)
	}
	rel, _ := filepath.Rel(filepath.Join("sys", "block"), dir)
	tr.link(filepath.Join("sys", "block", b.name), rel)
	for _, p := range b.parts {
		pname := partName(b.name, p.num)
		pd := filepath.Join(dir, pname)
		tr.file(filepath.Join(pd, "partition"), itoa(p.num)+"\n")
		tr.file(filepath.Join(pd, "start"), itoa64(p.start)+"\n")
		tr.file(filepath.Join(pd, "size"), itoa64(p.size)+"\n")
		tr.file(filepath.Join(pd, "dev"), p.majMin+"\n")
		for _, h := range p.holders {
			tr.link(filepath.Join(pd, "holders", h), "../../../../../virtual/block/"+h)
		}
	}
}

func partName(disk string, n int) string {
	if c := disk[len(disk)-1]; c >= '0' && c <= '9' {
		return disk + "p" + itoa(n)
	}
	return disk + itoa(n)
}

// vpd80 is a unit serial number VPD page.
func vpd80(serial string) string {
	return string([]byte{0, 0x80, 0, byte(len(serial))}) + serial
}

// vpd83 is a device identification VPD page with one NAA designator.
func vpd83(naaHex string) string {
	naa, _ := hex.DecodeString(naaHex)
	desc := append([]byte{0x01, 0x03, 0, byte(len(naa))}, naa...)
	return string(append([]byte{0, 0x83, 0, byte(len(desc))}, desc...))
}

// vpd89 is an ATA information VPD page carrying IDENTIFY data with the full
// model and serial (byte-swapped words, space padded), as libata builds it.
func vpd89(model, serial string) string {
	b := make([]byte, 60+512)
	b[1], b[2], b[3] = 0x89, 0x02, 0x38
	id := b[60:]
	put := func(dst []byte, s string) {
		p := []byte(s + strings.Repeat(" ", len(dst)))[:len(dst)]
		for i := 0; i < len(p); i += 2 {
			dst[i], dst[i+1] = p[i+1], p[i]
		}
	}
	put(id[20:40], serial)
	put(id[54:94], model)
	return string(b)
}

const scsiDisk = "scsi_disk"

// sataDisk adds a SATA disk behind AHCI port `port` of PCI device pci.
func sataDisk(name, pci string, port, host int, model, serial, naa, majMin string, parts ...fakePart) blockDev {
	h := itoa(host)
	scsi := h + ":0:0:0"
	base := "pci0000:00/" + pci + "/ata" + itoa(port) + "/host" + h + "/target" + h + ":0:0/" + scsi
	attrs := map[string]string{
		"device/vendor":   "ATA     \n",
		"device/model":    (model + strings.Repeat(" ", 16))[:16] + "\n", // INQUIRY truncates to 16
		"device/vpd_pg80": vpd80(serial),
		"device/vpd_pg89": vpd89(model, serial),
	}
	if naa != "" {
		attrs["device/wwid"] = "naa." + naa + "\n"
		attrs["device/vpd_pg83"] = vpd83(naa)
	}
	return blockDev{name: name, devPath: base + "/block/" + name, devDir: base, sectors: 1953525168,
		attrs: attrs, majMin: majMin, parts: parts}
}

func nvmeDisk(name, pci, ctrl, model, serial, eui, majMin string, parts ...fakePart) blockDev {
	base := "pci0000:00/" + pci + "/nvme/" + ctrl
	return blockDev{name: name, devPath: base + "/" + name, devDir: base, sectors: 1953525168,
		attrs: map[string]string{
			"device/model":  model + "                    \n",
			"device/serial": serial + "        \n",
			"wwid":          "eui." + eui + "\n",
			"nsid":          "1\n",
		}, majMin: majMin, parts: parts}
}

func usbStick(name, pci, port string, host int, vendor, model, serial, majMin string, parts ...fakePart) blockDev {
	h := itoa(host)
	usbDev := "pci0000:00/" + pci + "/usb1/" + port
	base := usbDev + "/" + port + ":1.0/host" + h + "/target" + h + ":0:0/" + h + ":0:0:0"
	return blockDev{name: name, devPath: base + "/block/" + name, devDir: base, sectors: 30031872,
		attrs: map[string]string{
			"removable":                  "1\n",
			"device/vendor":              (vendor + "        ")[:8] + "\n",
			"device/model":               (model + "                ")[:16] + "\n",
			"../../../../../../serial":   serial + "\n", // the USB device's iSerial
			"../../../../../../idVendor": "0781\n",
		}, majMin: majMin, parts: parts}
}

func virtual(name, majMin string, sectors int64) blockDev {
	return blockDev{name: name, devPath: "virtual/block/" + name, sectors: sectors, majMin: majMin}
}

// fakeSysfsCases are the trees, by directory name.
var fakeSysfsCases = map[string]func(tr tree){
	// Two disks of the same model that differ only by serial (and WWN),
	// beside a zram and a loop device.
	"two-identical": func(tr tree) {
		tr.disk(sataDisk("sda", "0000:00:1f.2", 1, 0, "Samsung SSD 870 EVO 1TB", "S6PUNX0R100001A", "5002538f4210a001", "8:0"))
		tr.disk(sataDisk("sdb", "0000:00:1f.2", 2, 1, "Samsung SSD 870 EVO 1TB", "S6PUNX0R100002B", "5002538f4210a002", "8:16"))
		tr.disk(virtual("zram0", "252:0", 8388608))
		tr.disk(virtual("loop0", "7:0", 0))
		tr.file("proc/self/mountinfo", "22 1 0:21 / /proc rw - proc proc rw\n")
		tr.file("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/zram0 partition 4194300 0 100\n")
	},
	// A USB stick beside an NVMe disk; neither mounted.
	"usb-nvme": func(tr tree) {
		tr.disk(nvmeDisk("nvme0n1", "0000:00:04.0", "nvme0", "Samsung SSD 980 PRO 1TB", "S5GXNF0R123456", "002538b1c1a2b3c4", "259:0",
			fakePart{num: 1, start: 2048, size: 1048576, majMin: "259:1"},
			fakePart{num: 2, start: 1050624, size: 1000000, majMin: "259:2"}))
		tr.disk(usbStick("sdb", "0000:00:14.0", "1-1", 6, "SanDisk", "Cruzer Blade", "4C530001220528", "8:16",
			fakePart{num: 1, start: 2048, size: 30000000, majMin: "8:17"}))
		tr.file("proc/self/mountinfo", "22 1 0:21 / /proc rw - proc proc rw\n")
		tr.file("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
	},
	// A SAS disk that reports only a WWN (no unit serial page), on the
	// second SCSI host of its HBA.
	"wwn-only": func(tr tree) {
		base := "pci0000:00/0000:00:10.0/host3/target3:0:0/3:0:0:0"
		tr.file("sys/devices/pci0000:00/0000:00:10.0/host2/scsi_host_marker", "")
		tr.disk(blockDev{name: "sdc", devPath: base + "/block/sdc", devDir: base, sectors: 7814037168, lbs: 4096, pbs: 4096,
			attrs: map[string]string{
				"device/vendor":    "SEAGATE \n",
				"device/model":     "ST4000NM0023    \n",
				"device/vpd_pg83":  vpd83("5000c500a1b2c3d4"),
				"queue/rotational": "1\n",
			}, majMin: "8:32"})
		tr.file("proc/self/mountinfo", "")
		tr.file("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
	},
	// Disks that can never be targets: a mounted one, one with holders, one
	// with active swap, a read-only virtio disk, and the USB boot medium; plus
	// one free virtio disk.
	"in-use": func(tr tree) {
		tr.disk(sataDisk("sda", "0000:00:1f.2", 1, 0, "WDC WD10EZEX-00BN5A0", "WD-WCC3F0000001", "50014ee2b0000001", "8:0",
			fakePart{num: 1, start: 2048, size: 1000000, majMin: "8:1"}))
		tr.disk(sataDisk("sdb", "0000:00:1f.2", 2, 1, "WDC WD10EZEX-00BN5A0", "WD-WCC3F0000002", "50014ee2b0000002", "8:16",
			fakePart{num: 1, start: 2048, size: 1000000, majMin: "8:17", holders: []string{"md127"}}))
		tr.disk(sataDisk("sdc", "0000:00:1f.2", 3, 2, "WDC WD10EZEX-00BN5A0", "WD-WCC3F0000003", "", "8:32",
			fakePart{num: 2, start: 2048, size: 1000000, majMin: "8:34"}))
		tr.disk(usbStick("sdd", "0000:00:14.0", "2-1.4", 6, "Kingston", "DataTraveler 3.0", "E0D55EA574EEF3C0", "8:48",
			fakePart{num: 1, start: 64, size: 2000000, majMin: "8:49"}))
		tr.disk(blockDev{name: "vda", devPath: "pci0000:00/0000:00:05.0/virtio2/block/vda", devDir: "pci0000:00/0000:00:05.0/virtio2",
			sectors: 41943040, attrs: map[string]string{"ro": "1\n", "serial": "cfgdisk\n", "device/vendor": "0x1af4\n"}, majMin: "254:0"})
		tr.disk(blockDev{name: "vdb", devPath: "pci0000:00/0000:00:06.0/virtio3/block/vdb", devDir: "pci0000:00/0000:00:06.0/virtio3",
			sectors: 209715200, attrs: map[string]string{"serial": "node disk 1\n", "device/vendor": "0x1af4\n"}, majMin: "254:16"})
		tr.disk(virtual("md127", "9:127", 1000000))
		tr.file("proc/self/mountinfo", "22 1 0:21 / /proc rw - proc proc rw\n"+
			"40 1 8:1 / /srv/my\\040data rw,relatime shared:1 - ext4 /dev/sda1 rw\n")
		tr.file("proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sdc2                               partition\t499996\t\t0\t\t-2\n")
	},
}

// TestFakeSysfs rewrites the trees with -update, and otherwise checks that
// every tree exists.
func TestFakeSysfs(t *testing.T) {
	for name, build := range fakeSysfsCases {
		dir := filepath.Join("testdata", "sysfs", name)
		if *update {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			build(tree{t: t, dir: dir})
		}
		if _, err := os.Stat(filepath.Join(dir, "sys", "block")); err != nil {
			t.Errorf("fake tree %s missing; run go test ./disk -run TestFakeSysfs -update: %v", name, err)
		}
	}
}
