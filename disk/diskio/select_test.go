package diskio

import (
	"errors"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/operr"
)

func pathSpec(p string) *cmdline.StorageInit {
	return &cmdline.StorageInit{Disks: []cmdline.DiskSpec{{Kind: cmdline.SpecPath, Value: p, Raw: p}}}
}

func spec(kind cmdline.DiskSpecKind, value string) cmdline.DiskSpec {
	return cmdline.DiskSpec{Kind: kind, Value: value, Raw: string(kind) + ":" + value}
}

func bus(b, serial string) cmdline.DiskSpec {
	if serial == "ALL" {
		return cmdline.DiskSpec{Kind: cmdline.SpecBus, Bus: b, All: true, Raw: b + ":ALL"}
	}
	return cmdline.DiskSpec{Kind: cmdline.SpecBus, Bus: b, Value: serial, Raw: b + ":" + serial}
}

func disksOf(t *testing.T, trees ...string) []disk.Disk {
	t.Helper()
	var all []disk.Disk
	for _, tr := range trees {
		d, err := Discover(Root{Dir: "testdata/sysfs/" + tr, SkipProbe: true})
		if err != nil {
			t.Fatal(err)
		}
		// The fake trees have no device bytes; take the disks for blank, as a probe of an
		// empty disk would, so that suggestions can name them (a foreign disk is never suggested).
		for i := range d {
			d[i].ProbeError, d[i].Content = "", disk.ContentBlank
		}
		all = append(all, d...)
	}
	return all
}

func TestSelect(t *testing.T) {
	type tc struct {
		name   string
		tree   string
		init   *cmdline.StorageInit
		opts   disk.SelectOptions
		target string   // kernel name, or "" for an error
		extra  []string // kernel names
		errHas []string // substrings of the message (operr.Describe)
		fixHas string   // a substring of the fix
		arg    string   // the exact kernel argument the failure screen shows
	}
	one := func(s ...cmdline.DiskSpec) *cmdline.StorageInit { return &cmdline.StorageInit{Disks: s} }
	cases := []tc{
		// oVirt paths and globs
		{name: "path", tree: "two-identical", init: pathSpec("/dev/sdb"), target: "sdb"},
		{name: "glob ambiguous", tree: "two-identical", init: pathSpec("/dev/sd*"),
			errHas: []string{"matches 2 disks", "S6PUNX0R100001A", "S6PUNX0R100002B", "ata-Samsung_SSD_870_EVO_1TB_S6PUNX0R100002B"},
			fixHas: "name one of them", arg: "storage_init=serial:S6PUNX0R100001A"},
		{name: "glob one", tree: "usb-nvme", init: pathSpec("/dev/nvme*"), target: "nvme0n1"},
		{name: "path no match", tree: "usb-nvme", init: pathSpec("/dev/sda"), errHas: []string{"matches no disk", "/dev/nvme0n1", "/dev/sdb"},
			arg: "storage_init=serial:S5GXNF0R123456"},
		{name: "partition path", tree: "usb-nvme", init: pathSpec("/dev/nvme0n1p2"), errHas: []string{"partition of /dev/nvme0n1", "whole disks"},
			fixHas: "whole disk", arg: "storage_init=serial:S5GXNF0R123456"},
		{name: "by-id path", tree: "two-identical", init: pathSpec("/dev/disk/by-id/ata-Samsung_SSD_870_EVO_1TB_S6PUNX0R100002B"), target: "sdb"},
		{name: "by-id wwn path", tree: "two-identical", init: pathSpec("/dev/disk/by-id/wwn-0x5002538f4210a001"), target: "sda"},
		{name: "by-path path", tree: "usb-nvme", init: pathSpec("/dev/disk/by-path/pci-0000:00:04.0-nvme-1"), target: "nvme0n1"},
		// bus forms
		{name: "bus serial", tree: "two-identical", init: one(bus("ata", "S6PUNX0R100002B")), target: "sdb"},
		{name: "bus ID_SERIAL", tree: "usb-nvme", init: one(bus("usb", "SanDisk_Cruzer_Blade_4C530001220528")), target: "sdb"},
		{name: "bus nvme model_serial", tree: "usb-nvme", init: one(bus("nvme", "Samsung_SSD_980_PRO_1TB_S5GXNF0R123456")), target: "nvme0n1"},
		{name: "bus ALL one", tree: "usb-nvme", init: one(bus("nvme", "ALL")), target: "nvme0n1"},
		{name: "bus ALL two", tree: "two-identical", init: one(bus("ata", "ALL")), errHas: []string{"matches 2 disks"}},
		{name: "bus wrong", tree: "two-identical", init: one(bus("nvme", "S6PUNX0R100002B")), errHas: []string{"matches no disk"}},
		// stable forms
		{name: "serial", tree: "two-identical", init: one(spec(cmdline.SpecSerial, "S6PUNX0R100001A")), target: "sda"},
		{name: "serial case", tree: "two-identical", init: one(spec(cmdline.SpecSerial, "s6punx0r100001a")), target: "sda"},
		{name: "wwn", tree: "wwn-only", init: one(spec(cmdline.SpecWWN, "0x5000c500a1b2c3d4")), target: "sdc"},
		{name: "wwn no 0x", tree: "wwn-only", init: one(spec(cmdline.SpecWWN, "5000C500A1B2C3D4")), target: "sdc"},
		{name: "wwn nvme eui", tree: "usb-nvme", init: one(spec(cmdline.SpecWWN, "eui.002538b1c1a2b3c4")), target: "nvme0n1"},
		{name: "by-id", tree: "wwn-only", init: one(spec(cmdline.SpecByID, "scsi-35000c500a1b2c3d4")), target: "sdc"},
		{name: "by-id glob", tree: "two-identical", init: one(spec(cmdline.SpecByID, "ata-Samsung_*")), errHas: []string{"matches 2 disks"}},
		{name: "by-path", tree: "wwn-only", init: one(spec(cmdline.SpecByPath, "pci-0000:00:10.0-scsi-1:0:0:0")), target: "sdc"},
		{name: "by-path ata compat", tree: "two-identical", init: one(spec(cmdline.SpecByPath, "pci-0000:00:1f.2-ata-2.0")), target: "sdb"},
		{name: "by-path virtio alias", tree: "in-use", init: one(spec(cmdline.SpecByPath, "virtio-pci-0000:00:06.0")), target: "vdb"},
		// lists
		// lists: each spec is one disk; the first is the install disk, the others app-data disks
		{name: "comma list, one absent", tree: "usb-nvme", init: one(spec(cmdline.SpecSerial, "NOPE"), bus("nvme", "ALL")),
			errHas: []string{"storage_init=serial:NOPE,nvme:ALL: serial:NOPE matches no disk", "/dev/nvme0n1"}, fixHas: "name one of the candidates"},
		{name: "comma list, two (HostVG)", tree: "two-identical", init: one(pathSpec("/dev/sda").Disks[0], pathSpec("/dev/sdb").Disks[0]),
			target: "sda", extra: []string{"sdb"}},
		{name: "comma list, listed order", tree: "two-identical", init: one(pathSpec("/dev/sdb").Disks[0], pathSpec("/dev/sda").Disks[0]),
			target: "sdb", extra: []string{"sda"}},
		{name: "comma list, glob of several", tree: "two-identical", init: one(spec(cmdline.SpecSerial, "S6PUNX0R100001A"), pathSpec("/dev/sd*").Disks[0]),
			errHas: []string{"/dev/sd* matches 2 disks where one is needed", "S6PUNX0R100002B"}, fixHas: "list each by its own name"},
		{name: "extra after ;", tree: "two-identical", init: &cmdline.StorageInit{Disks: []cmdline.DiskSpec{spec(cmdline.SpecSerial, "S6PUNX0R100001A")},
			Extra: []cmdline.DiskSpec{spec(cmdline.SpecSerial, "S6PUNX0R100002B")}}, target: "sda", extra: []string{"sdb"}},
		{name: "extra same as target", tree: "two-identical", init: &cmdline.StorageInit{Disks: []cmdline.DiskSpec{spec(cmdline.SpecSerial, "S6PUNX0R100001A")},
			Extra: []cmdline.DiskSpec{pathSpec("/dev/sda").Disks[0]}}, errHas: []string{"/dev/sda is listed twice (as serial:S6PUNX0R100001A and as /dev/sda)"}, fixHas: "list each disk once"},
		{name: "listed twice in HostVG", tree: "two-identical", init: one(pathSpec("/dev/sdb").Disks[0], spec(cmdline.SpecSerial, "S6PUNX0R100002B")),
			errHas: []string{"/dev/sdb is listed twice"}},
		{name: "extra ALL ambiguous", tree: "two-identical", init: &cmdline.StorageInit{Disks: []cmdline.DiskSpec{spec(cmdline.SpecSerial, "S6PUNX0R100001A")},
			Extra: []cmdline.DiskSpec{bus("ata", "ALL")}}, errHas: []string{"ata:ALL matches 2 disks where one is needed"}},
		{name: "extra excluded", tree: "in-use", init: &cmdline.StorageInit{Disks: []cmdline.DiskSpec{pathSpec("/dev/vdb").Disks[0]},
			Extra: []cmdline.DiskSpec{pathSpec("/dev/sda").Disks[0]}}, errHas: []string{"/dev/sda has mounted filesystems"}},
		// bare
		{name: "bare, USB stick beside NVMe", tree: "usb-nvme", init: &cmdline.StorageInit{Bare: true}, target: "nvme0n1"},
		{name: "bare, two identical", tree: "two-identical", init: &cmdline.StorageInit{Bare: true},
			errHas: []string{"exactly one eligible disk; there are 2", "S6PUNX0R100001A", "S6PUNX0R100002B"}, arg: "storage_init=serial:S6PUNX0R100001A"},
		{name: "bare, only excluded", tree: "in-use", init: &cmdline.StorageInit{Bare: true}, target: "vdb"},
		// exclusions named explicitly
		{name: "mounted", tree: "in-use", init: pathSpec("/dev/sda"), errHas: []string{"/dev/sda has mounted filesystems (/srv/my data)"},
			fixHas: "another disk", arg: "storage_init=/dev/disk/by-id/virtio-node_disk_1"},
		{name: "holders", tree: "in-use", init: one(spec(cmdline.SpecSerial, "WD-WCC3F0000002")), errHas: []string{"/dev/sdb is in use by md127"}},
		{name: "swap", tree: "in-use", init: one(spec(cmdline.SpecByID, "ata-WDC_WD10EZEX-00BN5A0_WD-WCC3F0000003")), errHas: []string{"/dev/sdc has active swap"}},
		{name: "read-only", tree: "in-use", init: one(bus("virtio", "cfgdisk")), errHas: []string{"/dev/vda is read-only"}},
		{name: "md", tree: "in-use", init: pathSpec("/dev/md127"), errHas: []string{"md device"}},
		{name: "zram", tree: "two-identical", init: pathSpec("/dev/zram0"), errHas: []string{"zram device"}},
		{name: "glob skips excluded", tree: "in-use", init: pathSpec("/dev/vd*"), target: "vdb"},
		{name: "glob only excluded", tree: "in-use", init: pathSpec("/dev/sd[abc]"),
			errHas: []string{"cannot be targets", "/dev/sda has mounted", "/dev/sdb is in use by md127", "/dev/sdc has active swap"}},
		{name: "loop refused", tree: "two-identical", init: pathSpec("/dev/loop0"), opts: disk.SelectOptions{AllowLoop: false}, errHas: []string{"loop device"}},
		{name: "nil", tree: "usb-nvme", init: nil, errHas: []string{"no storage_init"}, fixHas: "add storage_init", arg: "storage_init=serial:S5GXNF0R123456"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			disks := disksOf(t, c.tree)
			sel, err := disk.Select(disks, c.init, c.opts)
			if c.target == "" {
				if err == nil {
					t.Fatalf("want an error, selected %s", sel.Target.Name)
				}
				var se *disk.SelectError
				if !errors.As(err, &se) {
					t.Fatalf("error %T is not a *SelectError: %v", err, err)
				}
				checkOperatorError(t, err, c.errHas, c.fixHas, c.arg)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if sel.Target.Name != c.target {
				t.Errorf("target %s, want %s", sel.Target.Name, c.target)
			}
			var extra []string
			for _, d := range sel.Extra {
				extra = append(extra, d.Name)
			}
			if strings.Join(extra, ",") != strings.Join(c.extra, ",") {
				t.Errorf("extra %v, want %v", extra, c.extra)
			}
		})
	}
}

// checkOperatorError asserts what the failure screen shows for a refusal: the message holds
// errHas and never the fix, the fix is words (holding fixHas), and the kernel argument is
// exactly arg (when arg is given) and is not inside the message either.
func checkOperatorError(t *testing.T, err error, errHas []string, fixHas, arg string) {
	t.Helper()
	d := operr.Describe(err)
	for _, s := range errHas {
		if !strings.Contains(d.Message, s) {
			t.Errorf("message lacks %q:\n%s", s, d.Message)
		}
	}
	if d.Fix == "" || strings.Contains(d.Message, d.Fix) || !strings.Contains(d.Fix, fixHas) {
		t.Errorf("fix %q: want words holding %q, not repeated in the message:\n%s", d.Fix, fixHas, d.Message)
	}
	if arg != "" && d.Arg != arg {
		t.Errorf("kernel argument %q, want %q", d.Arg, arg)
	}
	if d.Arg != "" && (strings.Contains(d.Message, d.Arg) || strings.Contains(d.Fix, d.Arg)) {
		t.Errorf("kernel argument %q repeated in the message or the fix:\n%s\nfix: %s", d.Arg, d.Message, d.Fix)
	}
}

// TestSelectBootMedium: the boot medium is never a target, whichever way it is named.
func TestSelectBootMedium(t *testing.T) {
	disks := disksOf(t, "usb-nvme")
	MarkBootMedium(disks, "sdb1")
	for _, init := range []*cmdline.StorageInit{
		pathSpec("/dev/sdb"),
		{Disks: []cmdline.DiskSpec{bus("usb", "4C530001220528")}},
		{Disks: []cmdline.DiskSpec{spec(cmdline.SpecSerial, "4C530001220528")}},
	} {
		_, err := disk.Select(disks, init, disk.SelectOptions{})
		if err == nil || !strings.Contains(err.Error(), "/dev/sdb holds the boot medium") {
			t.Errorf("%s: %v", init.Disks[0].Raw, err)
		}
	}
	_, err := disk.Select(disks, &cmdline.StorageInit{Disks: []cmdline.DiskSpec{bus("usb", "ALL")}}, disk.SelectOptions{})
	if err == nil || !strings.Contains(err.Error(), "boot medium") {
		t.Errorf("usb:ALL with only the boot medium: %v", err)
	}
}

// TestSelectLoopByExactPath: loop devices only by exact path, and only when the caller allows.
func TestSelectLoopByExactPath(t *testing.T) {
	disks := []disk.Disk{{Name: "loop7", Path: "/dev/loop7", Transport: "loop", SizeBytes: 1 << 30}}
	if _, err := disk.Select(disks, pathSpec("/dev/loop*"), disk.SelectOptions{AllowLoop: true}); err == nil {
		t.Error("a glob picked a loop device")
	}
	if _, err := disk.Select(disks, &cmdline.StorageInit{Bare: true}, disk.SelectOptions{AllowLoop: true}); err == nil {
		t.Error("bare storage_init picked a loop device")
	}
	sel, err := disk.Select(disks, pathSpec("/dev/loop7"), disk.SelectOptions{AllowLoop: true})
	if err != nil || sel.Target.Name != "loop7" {
		t.Errorf("exact path with AllowLoop: %v", err)
	}
}

// TestSelectOVirtForms: the oVirt forms a scoring of real command lines found unmatched
// (issue 12): a bare bus name, udev's USB ID_SERIAL with its -0:0 suffix, /dev/mapper/<WWID>.
func TestSelectOVirtForms(t *testing.T) {
	one := func(s ...cmdline.DiskSpec) *cmdline.StorageInit { return &cmdline.StorageInit{Disks: s} }
	bare := func(b string) cmdline.DiskSpec { return cmdline.DiskSpec{Kind: cmdline.SpecBus, Bus: b, Raw: b} }
	cases := []struct {
		name, tree string
		init       *cmdline.StorageInit
		target     string
		errHas     []string
	}{
		{"bare usb, one stick", "usb-nvme", one(bare("usb")), "sdb", nil},
		{"bare nvme", "usb-nvme", one(bare("nvme")), "nvme0n1", nil},
		{"bare virtio skips the read-only disk", "in-use", one(bare("virtio")), "vdb", nil},
		{"bare ata, two disks", "two-identical", one(bare("ata")), "", []string{"matches 2 disks", "S6PUNX0R100001A", "S6PUNX0R100002B"}},
		{"bare scsi, none", "usb-nvme", one(bare("scsi")), "", []string{"matches no disk"}},
		{"bare usb, only the boot medium", "in-use", one(bare("usb")), "sdd", nil},
		{"usb ID_SERIAL with -0:0", "usb-nvme", one(bus("usb", "SanDisk_Cruzer_Blade_4C530001220528-0:0")), "sdb", nil},
		{"usb ID_SERIAL with -0:1", "usb-nvme", one(bus("usb", "SanDisk_Cruzer_Blade_4C530001220528-0:1")), "", []string{"matches no disk"}},
		{"mapper scsi WWID", "wwn-only", pathSpec("/dev/mapper/35000c500a1b2c3d4"), "sdc", nil},
		{"mapper ata WWID", "two-identical", pathSpec("/dev/mapper/35002538f4210a002"), "sdb", nil},
		{"mapper ata SATA_ WWID", "two-identical", pathSpec("/dev/mapper/SATA_Samsung_SSD_870_EVO_1TB_S6PUNX0R100001A"), "sda", nil},
		{"mapper nvme WWID", "usb-nvme", pathSpec("/dev/mapper/eui.002538b1c1a2b3c4"), "nvme0n1", nil},
		{"mapper friendly name", "wwn-only", pathSpec("/dev/mapper/mpatha"), "", []string{"no disk has the WWID \"mpatha\""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			disks := disksOf(t, c.tree)
			if c.name == "bare usb, only the boot medium" {
				MarkBootMedium(disks, "sdd1")
				c.target, c.errHas = "", []string{"cannot be targets", "boot medium"}
			}
			sel, err := disk.Select(disks, c.init, disk.SelectOptions{})
			if c.target == "" {
				if err == nil {
					t.Fatalf("want an error, selected %s", sel.Target.Name)
				}
				arg := ""
				if c.name == "mapper friendly name" {
					arg = "storage_init=/dev/mapper/35000c500a1b2c3d4" // the form the operator used
				}
				checkOperatorError(t, err, c.errHas, "", arg)
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if sel.Target.Name != c.target {
				t.Errorf("target %s, want %s", sel.Target.Name, c.target)
			}
		})
	}
}

// TestSelectAmbiguousForeign (issue 20, item 4): when storage_init is ambiguous the candidate
// list marks the disks holding foreign content, and the suggested storage_init names a blank
// disk, never a foreign one.
func TestSelectAmbiguousForeign(t *testing.T) {
	disks := disksOf(t, "two-identical")
	for i := range disks {
		disks[i].Content = disk.ContentBlank
		if disks[i].Name == "sda" {
			disks[i].Content = disk.ContentForeign
			disks[i].Signatures = []disk.Signature{{Type: "ext4", Label: "home", Where: "sda1"}}
		}
	}
	for _, init := range []*cmdline.StorageInit{pathSpec("/dev/sd*"), {Bare: true}} {
		_, err := disk.Select(disks, init, disk.SelectOptions{})
		if err == nil {
			t.Fatal("want an ambiguity error")
		}
		var sdaLine, sdbLine string
		for _, l := range strings.Split(err.Error(), "\n") {
			switch {
			case strings.HasPrefix(l, "  /dev/sda "):
				sdaLine = l
			case strings.HasPrefix(l, "  /dev/sdb "):
				sdbLine = l
			}
		}
		if !strings.Contains(sdaLine, "foreign content: ext4 filesystem") || !strings.Contains(sdaLine, "nodeinit.wipe=S6PUNX0R100001A") {
			t.Errorf("the foreign disk is not marked: %q", sdaLine)
		}
		if strings.Contains(sdbLine, "foreign") {
			t.Errorf("the blank disk is marked foreign: %q", sdbLine)
		}
		if d := operr.Describe(err); d.Arg != "storage_init=serial:S6PUNX0R100002B" || strings.Contains(d.Fix, "S6PUNX0R100001A") {
			t.Errorf("the suggestion does not name the blank disk sdb: kernel argument %q, fix %q", d.Arg, d.Fix)
		}
	}
	// Every candidate foreign: no serial is suggested at all, and the fix says why.
	for i := range disks {
		disks[i].Content = disk.ContentForeign
	}
	_, err := disk.Select(disks, pathSpec("/dev/sd*"), disk.SelectOptions{})
	d := operr.Describe(err)
	if err == nil || d.Arg != "" || strings.Contains(d.Fix, "serial:S6") || !strings.Contains(d.Fix, "every candidate holds foreign content") {
		t.Errorf("all-foreign suggestion: %+v", d)
	}
}

// TestSelectNoEligibleDisk: with no disk that can be a target, no argument is suggested
// and the fix says what to do instead.
func TestSelectNoEligibleDisk(t *testing.T) {
	disks := disksOf(t, "usb-nvme")
	for i := range disks {
		disks[i].Mounts = []string{"/mnt"}
	}
	for _, init := range []*cmdline.StorageInit{nil, {Bare: true}, pathSpec("/dev/nvme*")} {
		_, err := disk.Select(disks, init, disk.SelectOptions{})
		d := operr.Describe(err)
		if err == nil || d.Arg != "" || !strings.Contains(d.Fix, "no disk here can be a target") || strings.Contains(d.Message, d.Fix) {
			t.Errorf("storage_init %+v: %+v", init, d)
		}
	}
}
