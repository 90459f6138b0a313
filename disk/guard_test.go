package disk

import (
	"errors"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/operr"
)

func TestClassify(t *testing.T) {
	cases := []struct {
		name string
		d    Disk
		want ContentClass
	}{
		{"blank", Disk{}, ContentBlank},
		{"empty gpt", Disk{Signatures: []Signature{{Type: SigGPT}, {Type: SigPMBR}}}, ContentBlank},
		{"ours", Disk{Partitions: []Partition{{Number: 1, PartLabel: "NODE-ESP"}, {Number: 2, PartLabel: "node-root-a"}}}, ContentOurs},
		{"ovirt labels", Disk{Partitions: []Partition{{Number: 1, FSLabel: "Root"}, {Number: 2, FSLabel: "RootBackup"}}}, ContentOVirt},
		{"ovirt HostVG", Disk{Signatures: []Signature{{Type: SigLVM, Label: "HostVG"}}}, ContentOVirt},
		{"other VG", Disk{Signatures: []Signature{{Type: SigLVM, Label: "vg0"}}}, ContentForeign},
		{"VG named like a root label", Disk{Signatures: []Signature{{Type: SigLVM, Label: "node-root-a"}}}, ContentForeign},
		{"only Root", Disk{Partitions: []Partition{{Number: 1, FSLabel: "Root"}}}, ContentForeign},
		{"foreign gpt", Disk{Signatures: []Signature{{Type: SigGPT}}, Partitions: []Partition{{Number: 1, PartLabel: "EFI"}}}, ContentForeign},
		{"ext4", Disk{Signatures: []Signature{{Type: SigExt4, Label: "data"}}}, ContentForeign},
		{"luks", Disk{Signatures: []Signature{{Type: SigLUKS}}}, ContentForeign},
		{"md", Disk{Signatures: []Signature{{Type: SigMD}}}, ContentForeign},
		{"unreadable", Disk{ProbeError: "EIO"}, ContentForeign},
	}
	for _, c := range cases {
		Classify(&c.d)
		if c.d.Content != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.d.Content, c.want)
		}
	}
}

func TestCheckConsent(t *testing.T) {
	foreign := Disk{Name: "nvme0n1", Path: "/dev/nvme0n1", Serial: "S5GXNF0R123456", WWN: "eui.002538b1c1a2b3c4",
		ByID:       []string{"nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R123456"},
		Signatures: []Signature{{Type: SigGPT, Where: "disk"}, {Type: SigExt4, Label: "data", Where: "nvme0n1p1"}},
		Partitions: []Partition{{Number: 1, Name: "nvme0n1p1"}}, Content: ContentForeign}
	wwnOnly := Disk{Name: "sdc", Path: "/dev/sdc", WWN: "0x5000c500a1b2c3d4", Signatures: []Signature{{Type: SigLVM, Label: "vg0"}}, Content: ContentForeign}
	noID := Disk{Name: "vdb", Path: "/dev/vdb", Signatures: []Signature{{Type: SigXFS}}, Content: ContentForeign}
	ours := Disk{Name: "sda", Path: "/dev/sda", Serial: "A1", Content: ContentOurs}
	ovirt := Disk{Name: "sda", Path: "/dev/sda", Serial: "A1", Content: ContentOVirt}
	blank := Disk{Name: "sdb", Path: "/dev/sdb", Serial: "B1", Content: ContentBlank}
	cases := []struct {
		name    string
		d       Disk
		action  string
		consent []string
		errHas  []string // nil: allowed
	}{
		{"blank install", blank, "install", nil, nil},
		{"foreign without consent", foreign, "install", nil,
			[]string{"/dev/nvme0n1", "ext4 filesystem labelled 'data' on nvme0n1p1", "nodeinit.wipe=S5GXNF0R123456"}},
		{"foreign reinstall without consent", foreign, "reinstall", nil, []string{"nodeinit.wipe=S5GXNF0R123456"}},
		{"foreign with serial", foreign, "install", []string{"S5GXNF0R123456"}, nil},
		{"foreign with wwn", foreign, "install", []string{"eui.002538B1C1A2B3C4"}, nil},
		{"foreign with by-id", foreign, "install", []string{"nvme-Samsung_SSD_980_PRO_1TB_S5GXNF0R123456"}, nil},
		{"foreign with another disk's serial", foreign, "install", []string{"OTHER123"},
			[]string{"nodeinit.wipe=OTHER123 does not name this disk", "nodeinit.wipe=S5GXNF0R123456"}},
		{"foreign path is not consent", foreign, "install", []string{"/dev/nvme0n1"}, []string{"nodeinit.wipe=S5GXNF0R123456"}},
		{"wwn only, no consent", wwnOnly, "install", nil, []string{"LVM physical volume of volume group vg0", "nodeinit.wipe=0x5000c500a1b2c3d4"}},
		{"wwn only, consent without 0x", wwnOnly, "install", []string{"5000C500A1B2C3D4"}, nil},
		{"no identity, path", noID, "install", []string{"/dev/vdb"}, nil},
		{"ours install", ours, "install", nil, []string{"nodeinit install", "reinstall"}},
		{"ours reinstall", ours, "reinstall", nil, nil},
		{"ours uninstall", ours, "uninstall", nil, nil},
		{"ours install with consent", ours, "install", []string{"A1"}, nil},
		{"ovirt install", ovirt, "install", nil, []string{"old oVirt Node install"}},
		{"ovirt firstboot", ovirt, "firstboot", nil, nil},
		{"ovirt reinstall", ovirt, "reinstall", nil, nil},
		{"unreadable", Disk{Path: "/dev/sdz", Serial: "Z", ProbeError: "EIO", Content: ContentForeign}, "install", nil,
			[]string{"could not be read", "nodeinit.wipe=Z"}},
	}
	for _, c := range cases {
		err := CheckConsent(c.d, c.action, c.consent)
		if c.errHas == nil {
			if err != nil {
				t.Errorf("%s: refused: %v", c.name, err)
			}
			continue
		}
		var ce *ConsentError
		if !errors.As(err, &ce) {
			t.Errorf("%s: want *ConsentError, got %v", c.name, err)
			continue
		}
		// What the operator sees: the message, the fix and the kernel argument.
		d := operr.Describe(err)
		shown := d.Message + "\n" + d.Fix + "\n" + d.Arg
		for _, s := range c.errHas {
			if !strings.Contains(shown, s) {
				t.Errorf("%s: failure screen lacks %q: %s", c.name, s, shown)
			}
		}
		if d.Arg == "" || strings.Contains(d.Message, d.Fix) {
			t.Errorf("%s: want a kernel argument and a message without the fix: %+v", c.name, d)
		}
	}
}

// TestClassifyRealOVirtLayout builds an old oVirt Node disk with the real
// tools (MBR, ext2 Root and RootBackup, a HostVG PV) on a loop device and
// checks discovery-level probing classifies it as oVirt.
func TestClassifyRealOVirtLayout(t *testing.T) {
	needTools(t, "sgdisk", "mkfs.ext2", "pvcreate", "vgcreate", "partx")
	img := sparseFile(t, 256<<20)
	dev := loopDevice(t, img, 512)
	run(t, "sgdisk", "-n1:1M:+50M", "-c1:Root", "-n2:0:+50M", "-c2:RootBackup", "-n3:0:0", "-c3:HostVG", dev)
	run(t, "partx", "-a", dev)
	t.Cleanup(func() { run(t, "partx", "-d", dev) })
	run(t, "mkfs.ext2", "-q", "-F", "-L", "Root", dev+"p1")
	run(t, "mkfs.ext2", "-q", "-F", "-L", "RootBackup", dev+"p2")
	run(t, "pvcreate", "-q", "-ff", "-y", "--devices", dev+"p3", dev+"p3")
	run(t, "vgcreate", "-q", "--devices", dev+"p3", "HostVG", dev+"p3")

	res := probeFile(t, dev, 512)
	d := Disk{Signatures: res.Signatures, Partitions: res.Partitions}
	Classify(&d)
	if d.Content != ContentOVirt {
		t.Fatalf("content %s, want ovirt: %+v", d.Content, res.Signatures)
	}
	if s := findSig(res.Signatures, SigLVM); s == nil || s.Label != "HostVG" || s.Where != "partition 3" {
		t.Errorf("HostVG PV not found in partition 3: %+v", res.Signatures)
	}
	// Without the labels, the HostVG volume group alone still says oVirt.
	d = Disk{Signatures: []Signature{*findSig(res.Signatures, SigLVM)}}
	Classify(&d)
	if d.Content != ContentOVirt {
		t.Errorf("HostVG alone: %s", d.Content)
	}
}
