package diskio

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
)

func discoverFake(t *testing.T, name string) map[string]disk.Disk {
	t.Helper()
	disks, err := Discover(Root{Dir: filepath.Join("testdata", "sysfs", name), SkipProbe: true})
	if err != nil {
		t.Fatalf("Discover(%s): %v", name, err)
	}
	m := map[string]disk.Disk{}
	for _, d := range disks {
		m[d.Name] = d
	}
	return m
}

func TestDiscoverIdentity(t *testing.T) {
	type want struct {
		transport, model, vendor, serial, wwn, byPath string
		byID                                          []string
		size                                          int64
		lbs                                           int
		removable, rotational                         bool
	}
	cases := []struct {
		tree, disk string
		want       want
	}{
		{"two-identical", "sda", want{transport: "ata", model: "Samsung SSD 870 EVO 1TB", vendor: "ATA", serial: "S6PUNX0R100001A",
			wwn: "0x5002538f4210a001", byPath: "pci-0000:00:1f.2-ata-1", size: 1953525168 * 512, lbs: 512,
			byID: []string{"ata-Samsung_SSD_870_EVO_1TB_S6PUNX0R100001A", "wwn-0x5002538f4210a001"}}},
		{"two-identical", "sdb", want{transport: "ata", model: "Samsung SSD 870 EVO 1TB", vendor: "ATA", serial: "S6PUNX0R100002B",
			wwn: "0x5002538f4210a002", byPath: "pci-0000:00:1f.2-ata-2", size: 1953525168 * 512, lbs: 512,
			byID: []string{"ata-Samsung_SSD_870_EVO_1TB_S6PUNX0R100002B", "wwn-0x5002538f4210a002"}}},
		{"two-identical", "zram0", want{transport: "zram", size: 4 << 30, lbs: 512}},
		{"usb-nvme", "nvme0n1", want{transport: "nvme", model: "Samsung SSD 980 PRO 1TB", serial: "S5GXNF0R123456",
			wwn: "eui.002538b1c1a2b3c4", byPath: "pci-0000:00:04.0-nvme-1", size: 1953525168 * 512, lbs: 512,
			byID: []string{"nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R123456", "nvme-eui.002538b1c1a2b3c4"}}},
		{"usb-nvme", "sdb", want{transport: "usb", model: "Cruzer Blade", vendor: "SanDisk", serial: "4C530001220528",
			byPath: "pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0", size: 30031872 * 512, lbs: 512, removable: true,
			byID: []string{"usb-SanDisk_Cruzer_Blade_4C530001220528-0:0"}}},
		{"wwn-only", "sdc", want{transport: "scsi", model: "ST4000NM0023", vendor: "SEAGATE", wwn: "0x5000c500a1b2c3d4",
			byPath: "pci-0000:00:10.0-scsi-1:0:0:0", size: 7814037168 * 512, lbs: 4096, rotational: true,
			byID: []string{"scsi-35000c500a1b2c3d4", "wwn-0x5000c500a1b2c3d4"}}},
		{"in-use", "sdd", want{transport: "usb", model: "DataTraveler 3.0", vendor: "Kingston", serial: "E0D55EA574EEF3C0",
			byPath: "pci-0000:00:14.0-usb-0:1.4:1.0-scsi-0:0:0:0", size: 30031872 * 512, lbs: 512, removable: true,
			byID: []string{"usb-Kingston_DataTraveler_3.0_E0D55EA574EEF3C0-0:0"}}},
		{"in-use", "vdb", want{transport: "virtio", vendor: "Red Hat", serial: "node disk 1", byPath: "pci-0000:00:06.0",
			size: 209715200 * 512, lbs: 512, byID: []string{"virtio-node_disk_1"}}},
	}
	for _, c := range cases {
		t.Run(c.tree+"/"+c.disk, func(t *testing.T) {
			d, ok := discoverFake(t, c.tree)[c.disk]
			if !ok {
				t.Fatalf("%s not discovered", c.disk)
			}
			got := want{transport: d.Transport, model: d.Model, vendor: d.Vendor, serial: d.Serial, wwn: d.WWN, byPath: d.ByPath,
				byID: d.ByID, size: d.SizeBytes, lbs: d.LogicalSectorSize, removable: d.Removable, rotational: d.Rotational}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got  %+v\nwant %+v", got, c.want)
			}
			if d.Path != "/dev/"+c.disk {
				t.Errorf("path %s", d.Path)
			}
		})
	}
}

func TestDiscoverState(t *testing.T) {
	disks := discoverFake(t, "in-use")
	if got := disks["sda"].Mounts; !reflect.DeepEqual(got, []string{"/srv/my data"}) {
		t.Errorf("sda mounts %q, want the mount of sda1 (octal escape undone)", got)
	}
	for _, p := range disks["sda"].Partitions {
		if want := map[string][]string{"sda1": {"/srv/my data"}}[p.Name]; !reflect.DeepEqual(p.Mounts, want) {
			t.Errorf("%s mounts %q, want %q", p.Name, p.Mounts, want)
		}
	}
	if len(disks["sda"].Partitions) == 0 {
		t.Error("sda: no partitions discovered")
	}
	if got := disks["sdb"].Holders; !reflect.DeepEqual(got, []string{"md127"}) {
		t.Errorf("sdb holders %q, want md127 from sdb1/holders", got)
	}
	if !disks["sdc"].Swap || disks["sda"].Swap {
		t.Errorf("swap: sdc %v sda %v; want only sdc (sdc2 in /proc/swaps)", disks["sdc"].Swap, disks["sda"].Swap)
	}
	if !disks["vda"].ReadOnly || disks["vdb"].ReadOnly {
		t.Errorf("read-only: vda %v vdb %v", disks["vda"].ReadOnly, disks["vdb"].ReadOnly)
	}
	if md := disks["md127"]; md.Transport != "md" {
		t.Errorf("md127 transport %q", md.Transport)
	}
	p := disks["sdd"].Partitions
	if len(p) != 1 || p[0].Name != "sdd1" || p[0].StartByte != 64*512 || p[0].SizeBytes != 2000000*512 {
		t.Errorf("sdd partitions %+v", p)
	}
	for _, d := range disks {
		if d.Content != disk.ContentForeign || d.ProbeError == "" {
			t.Errorf("%s not probed but content %q: unknown content must count as foreign", d.Name, d.Content)
		}
	}
	if zram := discoverFake(t, "two-identical")["zram0"]; !zram.Swap {
		t.Errorf("zram0 swap not seen")
	}
}

func TestDiscoverMissingSysfs(t *testing.T) {
	_, err := Discover(Root{Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "sysfs") {
		t.Fatalf("want an error naming sysfs, got %v", err)
	}
}

func TestMarkBootMedium(t *testing.T) {
	disks, err := Discover(Root{Dir: "testdata/sysfs/in-use", SkipProbe: true})
	if err != nil {
		t.Fatal(err)
	}
	if !MarkBootMedium(disks, "/dev/sdd1") {
		t.Fatal("sdd1 not found")
	}
	for _, d := range disks {
		if d.BootMedium != (d.Name == "sdd") {
			t.Errorf("%s boot medium %v", d.Name, d.BootMedium)
		}
	}
	if MarkBootMedium(disks, "sdz") {
		t.Error("marked a disk that does not exist")
	}
}

// TestDiscoverProbesDevice gives a fake tree a device node (a regular file
// holding a GPT made by sgdisk) and checks that discovery reads the table,
// names partitions the kernel did not parse, and classifies the disk.
func TestDiscoverProbesDevice(t *testing.T) {
	needTools(t, "sgdisk")
	dir := t.TempDir()
	tr := tree{t: t, dir: dir}
	tr.disk(blockDev{name: "vdb", devPath: "pci0000:00/0000:00:06.0/virtio3/block/vdb", devDir: "pci0000:00/0000:00:06.0/virtio3",
		sectors: 128 << 11, attrs: map[string]string{"serial": "node1\n"}, majMin: "254:16"})
	tr.file("proc/self/mountinfo", "")
	tr.file("proc/swaps", "")
	img := filepath.Join(dir, "dev", "vdb")
	tr.file("dev/vdb", "")
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	run(t, "sgdisk", "-n1:2048:+32M", "-t1:ef00", "-c1:NODE-ESP", "-n2:0:+32M", "-c2:node-root-a", img)

	disks, err := Discover(Root{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	d := disks[0]
	if d.ProbeError != "" {
		t.Fatalf("probe error %s", d.ProbeError)
	}
	if len(d.Partitions) != 2 || d.Partitions[1].Name != "vdb2" || d.Partitions[1].PartLabel != "node-root-a" || d.Partitions[1].Path != "/dev/vdb2" {
		t.Errorf("partitions %+v", d.Partitions)
	}
	if d.Content != disk.ContentOurs {
		t.Errorf("content %s, want ours", d.Content)
	}

	// Without a device node the content is unknown: foreign, never blank.
	if err := os.Remove(img); err != nil {
		t.Fatal(err)
	}
	disks, err = Discover(Root{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if disks[0].ProbeError == "" || disks[0].Content != disk.ContentForeign {
		t.Errorf("unreadable disk: %+v", disks[0])
	}
}

// TestDiscoverLoop runs discovery against this machine's sysfs for a loop
// device the test creates, with a partition added through BLKPG (partx) and
// mounted. Only the loop device is opened: the root's dev/ holds just its
// nodes, so the machine's own disks are never read.
func TestDiscoverLoop(t *testing.T) {
	for _, ss := range []int{512, 4096} {
		t.Run(itoa(ss), func(t *testing.T) {
			needTools(t, "sgdisk", "partx", "mkfs.ext4", "mount", "umount")
			img := sparseFile(t, 256<<20)
			dev := loopDevice(t, img, ss)
			run(t, "sgdisk", "-n1:1M:+64M", "-c1:node-config", "-n2:0:+64M", "-c2:data", dev)
			run(t, "partx", "-a", dev)
			t.Cleanup(func() { exec.Command("partx", "-d", dev).Run() })
			name := filepath.Base(dev)
			run(t, "mkfs.ext4", "-q", "-F", "-L", "data", dev+"p2")
			mnt := t.TempDir()
			run(t, "mount", "-o", "ro", dev+"p2", mnt)
			t.Cleanup(func() {
				if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
					t.Errorf("umount %s: %v %s", mnt, err, out)
				}
			})

			root := t.TempDir()
			for _, l := range []string{"sys", "proc"} {
				if err := os.Symlink("/"+l, filepath.Join(root, l)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.MkdirAll(filepath.Join(root, "dev"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(dev, filepath.Join(root, "dev", name)); err != nil {
				t.Fatal(err)
			}
			disks, err := Discover(Root{Dir: root})
			if err != nil {
				t.Fatal(err)
			}
			var d *disk.Disk
			for i := range disks {
				if disks[i].Name == name {
					d = &disks[i]
				} else if disks[i].ProbeError == "" && disks[i].SizeBytes > 0 {
					t.Errorf("%s was read; only %s has a node in the test root", disks[i].Name, name)
				}
			}
			if d == nil {
				t.Fatalf("%s not discovered", name)
			}
			if d.Transport != "loop" || d.LogicalSectorSize != ss || d.SizeBytes != 256<<20 {
				t.Errorf("loop facts %+v", d)
			}
			if len(d.Partitions) != 2 || d.Partitions[1].Name != name+"p2" || d.Partitions[1].PartLabel != "data" ||
				d.Partitions[1].FSType != "ext4" || d.Partitions[1].FSLabel != "data" || d.Partitions[0].StartByte != 1<<20 {
				t.Errorf("partitions %+v", d.Partitions)
			}
			if !reflect.DeepEqual(d.Mounts, []string{mnt}) {
				t.Errorf("mounts %q, want %s", d.Mounts, mnt)
			}
			if d.Content != disk.ContentForeign {
				t.Errorf("content %s", d.Content)
			}
			_, err = disk.Select(disks, pathSpec(dev), disk.SelectOptions{AllowLoop: true})
			if err == nil || !strings.Contains(err.Error(), "mounted") {
				t.Errorf("selecting the mounted loop device: %v", err)
			}
		})
	}
}
