package tui

import (
	"encoding/base64"
	"encoding/binary"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-crypt/crypt/algorithm/shacrypt"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/operr"
	"github.com/nodeinit/nodeinit/plan"
)

// TestNeeded: the screen runs only when the line leaves the disk open, always
// with nodeinit.interactive=1, never with =0, and never for a plain boot.
func TestNeeded(t *testing.T) {
	for _, c := range []struct {
		facts, line string
		want        bool
	}{
		{"one-nvme", "install", true}, // the media's "Install or Upgrade" entry
		{"installed", "install console=ttyS0,115200", true},
		{"one-nvme", "install storage_init", false}, // the one eligible disk
		{"two-identical", "install storage_init", true},
		{"two-identical", "install storage_init=nvme", true},
		{"two-identical", "install storage_init=/dev/nvme*", true},
		{"two-identical", "install storage_init=serial:S5GXNF0R100002", false},
		{"two-identical", "storage_init BOOTIF=link", false},                      // oVirt's PXE auto-install: unattended
		{"two-identical", "install storage_init BOOTIF=52:54:00:12:34:56", false}, // any PXE line is unattended
		{"two-identical", "install BOOTIF=52:54:00:12:34:56 nodeinit.interactive=1", true},
		{"two-identical", "storage_init nodeinit.interactive=1 BOOTIF=link", true}, // unless asked for
		{"installed", "storage_init BOOTIF=link", false},                           // auto-install boots the install
		{"two-identical", "install nodeinit.interactive=0", false},
		{"one-nvme", "install storage_init=serial:S5GXNF0R100001 nodeinit.interactive=1", true},
		{"installed", "nodeinit.interactive", true},
		{"installed", "", false}, // a plain boot
		{"installed-v1.1-image", "upgrade", false},
		{"installed", "reinstall", false},
		{"one-nvme", "stateless", false},
		{"one-nvme", "rescue", false},
		{"usb-only", "install storage_init", false}, // nothing to choose from
	} {
		if got := Needed(parse(t, c.line), facts(t, c.facts)); got != c.want {
			t.Errorf("Needed(%q on %s) = %v, want %v", c.line, c.facts, got, c.want)
		}
	}
}

// TestWelcomeOffers: the welcome page offers what the machine's state allows,
// worded as oVirt Node worded it, and explains what it does not offer.
func TestWelcomeOffers(t *testing.T) {
	for _, c := range []struct {
		facts  string
		titles []string
		note   string // a note that must be there
	}{
		{"one-nvme", []string{"Install 1.0", "Run stateless", "Rescue shell"}, ""},
		{"installed-v1.1-image", []string{"Upgrade 1.0 to 1.1", "Reinstall and wipe", "Uninstall", "Run stateless", "Rescue shell"}, ""},
		{"installed", []string{"Reinstall 1.0", "Reinstall and wipe", "Uninstall", "Run stateless", "Rescue shell"}, ""},
		{"installed-old-image", []string{"Reinstall and wipe", "Uninstall", "Run stateless", "Rescue shell"},
			"Downgrade 1.0 to 0.9 is not offered: it goes back a major version"},
		{"installed-1.2", []string{"Downgrade 1.2 to 1.1", "Reinstall and wipe", "Uninstall", "Run stateless", "Rescue shell"}, ""},
		{"installed-v2-image", []string{"Reinstall and wipe", "Uninstall", "Run stateless", "Rescue shell"},
			"Upgrade 1.0 to 2.0 is not offered: it is a major-version jump. Upgrade to the last 1.x release first"},
		{"ovirt", []string{"Install 1.0", "Uninstall", "Run stateless", "Rescue shell"}, ""},
		{"installed-on-trial", []string{"Reinstall and wipe", "Uninstall", "Run stateless", "Rescue shell"}, "not blessed"},
		{"no-image", []string{"Rescue shell"}, "No image was found"},
		{"unsigned-image", []string{"Rescue shell"}, "no valid signature"},
	} {
		var s *State
		if c.facts == "installed-1.2" {
			s = downgradeState(t)
		} else {
			s = newState(t, c.facts, "install")
		}
		var titles []string
		for _, o := range s.offers {
			titles = append(titles, o.Title)
		}
		if !slices.Equal(titles, c.titles) {
			t.Errorf("%s: offers %q, want %q (notes %q)", c.facts, titles, c.titles, s.notes)
		}
		if c.note != "" && !strings.Contains(strings.Join(s.notes, "\n"), c.note) {
			t.Errorf("%s: notes %q lack %q", c.facts, s.notes, c.note)
		}
		if c.note != "" && !strings.Contains(s.Screen(), strings.Fields(c.note)[0]) {
			t.Errorf("%s: the note is not on the screen:\n%s", c.facts, s.Screen())
		}
	}
	if s := newState(t, "ovirt", "install"); !strings.Contains(s.Screen(), "replace the old oVirt Node on /dev/sda") {
		t.Errorf("ovirt: the install offer does not say it replaces the old oVirt Node:\n%s", s.Screen())
	}
}

// TestWelcomeActionsPlan: every offer that needs no more input goes straight
// to a plan of the right action, with nodeinit.force where a downgrade or a
// reinstall of the same version needs it.
func TestWelcomeActionsPlan(t *testing.T) {
	for _, c := range []struct {
		facts string
		kind  OfferKind
		want  cmdline.Action
		force bool
	}{
		{"installed-v1.1-image", OfferUpgrade, cmdline.ActionUpgrade, false},
		{"installed-1.2", OfferDowngrade, cmdline.ActionUpgrade, true},
		{"installed", OfferReinstallKeep, cmdline.ActionUpgrade, true},
		{"installed", OfferUninstall, cmdline.ActionUninstall, false},
		{"ovirt", OfferUninstall, cmdline.ActionUninstall, false},
	} {
		var s *State
		if c.facts == "installed-1.2" {
			s = downgradeState(t)
		} else {
			s = newState(t, c.facts, "install")
		}
		choose(t, s, c.kind)
		if s.Page != PagePlan || s.Plan == nil {
			t.Errorf("%s %s: page %s, plan error %v", c.facts, c.kind, s.Page, s.planErr)
			continue
		}
		confirm(t, s)
		p := parse(t, s.Line)
		if p.Action != c.want || p.Node.Force != c.force || p.StorageInit != nil {
			t.Errorf("%s %s: line %q: action %s force %v", c.facts, c.kind, s.Line, p.Action, p.Node.Force)
		}
		samePlan(t, s)
	}
	s := newState(t, "installed", "install console=ttyS0")
	choose(t, s, OfferRescue)
	if !s.Finished || s.Line != "rescue console=ttyS0" {
		t.Errorf("rescue: finished %v line %q", s.Finished, s.Line)
	}
}

// downgradeState is installed-v1.1-image with 1.2 installed: the medium's
// 1.1 is a downgrade within the major version.
func downgradeState(t testing.TB) *State {
	f := facts(t, "installed-v1.1-image")
	f.Install.Slots["a"] = plan.Slot{Version: "1.2", State: "good"}
	s := NewState(f, parse(t, "install"), ImageInfo{}, StyleUnicode)
	s.Hash = fixedHash
	return s
}

// samePlan checks that the screen's line parses back and plans, on the same
// facts, to what the plan page showed; and that it needs no screen again.
func samePlan(t testing.TB, s *State) {
	t.Helper()
	p, err := cmdline.Parse(s.Line)
	if err != nil {
		t.Fatalf("line %q does not parse: %v", s.Line, err)
	}
	bp, err := plan.Plan(p, s.Facts)
	if err != nil {
		t.Fatalf("line %q does not plan: %v", s.Line, err)
	}
	if bp.Action != s.Plan.Action || bp.Slot != s.Plan.Slot || !reflect.DeepEqual(bp.Target, s.Plan.Target) ||
		!reflect.DeepEqual(bp.Layout, s.Plan.Layout) || !reflect.DeepEqual(bp.AppData, s.Plan.AppData) || !reflect.DeepEqual(bp.Steps, s.Plan.Steps) {
		t.Errorf("line %q plans to %s %v slot %s, the page showed %s %v slot %s", s.Line, bp.Action, bp.Target, bp.Slot, s.Plan.Action, s.Plan.Target, s.Plan.Slot)
	}
	if Needed(p, s.Facts) {
		t.Errorf("line %q would show the screen again", s.Line)
	}
}

// mutate is several-disks with sda held by dm-0, sdb read-only and sdc mounted.
func mutated(t testing.TB) *State {
	f := facts(t, "several-disks")
	for i := range f.Disks {
		switch f.Disks[i].Name {
		case "sda":
			f.Disks[i].Holders = []string{"dm-0"}
		case "sdb":
			f.Disks[i].ReadOnly = true
		case "sdc":
			f.Disks[i].Mounts = []string{"/mnt/old"}
		}
	}
	// One of the kernel's unattached loop devices (no backing file, 0 bytes):
	// not listed.
	f.Disks = append([]disk.Disk{{Name: "loop0", Path: "/dev/loop0", Transport: "loop", LogicalSectorSize: 512}}, f.Disks...)
	s := NewState(f, parse(t, "install"), ImageInfo{}, StyleUnicode)
	s.Hash = fixedHash
	return s
}

// TestDiskIneligible: disks that can never be targets are listed, greyed with
// their reason, and cannot be chosen.
func TestDiskIneligible(t *testing.T) {
	s := mutated(t)
	choose(t, s, OfferInstall)
	screen := bodyText(s)
	for name, why := range map[string]string{
		"sda": "cannot be used: is in use by dm-0",
		"sdb": "cannot be used: is read-only",
		"sdc": "cannot be used: has mounted filesystems (/mnt/old)",
		"sde": "cannot be used: too small (an install needs 8770 MiB, app-data 1026 MiB)",
		"sr0": "cannot be used: holds the boot medium",
	} {
		if !strings.Contains(screen, why) {
			t.Errorf("%s: the screen lacks %q:\n%s", name, why, screen)
		}
		if slices.ContainsFunc(s.items(), func(it item) bool { return it.id == "disk:"+name }) {
			t.Errorf("%s can take the focus", name)
		}
		s.activate("disk:"+name, false)
		if s.target == name || !strings.Contains(s.msg, "cannot be used") {
			t.Errorf("%s: chosen (target %q, message %q)", name, s.target, s.msg)
		}
	}
	if strings.Contains(screen, "loop0") {
		t.Errorf("the unattached loop0 is listed:\n%s", screen)
	}
	// What is left is sdd, whose content is foreign.
	if it := s.items(); len(it) == 0 || it[0].id != "disk:sdd" {
		t.Errorf("items %v, want sdd first", it)
	}
	for _, want := range []string{"WD-WCC4N0000004  0x50014ee2b5a1c004  ata-WDC_WD10EZEX_WD-WCC4N0000004", "foreign: xfs 'vmstore'", "128.0 GiB"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the disk list lacks %q", want)
		}
	}
}

// TestDiskForeignConsent: a disk with foreign content is chosen only with its
// serial typed exactly; a wrong serial, another case or none is refused.
func TestDiskForeignConsent(t *testing.T) {
	s := newState(t, "several-disks", "install")
	choose(t, s, OfferInstall)
	focusOn(t, s, "disk:sdd")
	press(s, "enter")
	for _, typed := range []string{"", "WD-WCC4N0000005", "wd-wcc4n0000004", "WD-WCC4N000000"} {
		focusOn(t, s, "consent:sdd")
		press(s, "ctrl+u", "="+typed)
		next(t, s)
		if s.Page != PageDisk || !strings.Contains(s.msg, "/dev/sdd") {
			t.Fatalf("serial %q: page %s, message %q", typed, s.Page, s.msg)
		}
		if typed != "" && !s.field("consent:sdd").Empty() {
			t.Errorf("serial %q: the wrong serial stays in the field", typed)
		}
	}
	if !strings.Contains(bodyText(s), "/dev/sdd holds gpt partition table with 1 partitions, xfs filesystem labelled") {
		t.Errorf("the consent prompt does not say what the disk holds:\n%s", s.Screen())
	}
	focusOn(t, s, "consent:sdd")
	press(s, "=WD-WCC4N0000004")
	next(t, s)
	if s.Page != PageLayout {
		t.Fatalf("the exact serial was refused: %s", s.msg)
	}
	next(t, s)
	passwordAndNetwork(t, s)
	p := parse(t, s.Line)
	if !slices.Equal(p.Node.Wipe, []string{"WD-WCC4N0000004"}) || p.StorageInit.Disks[0].Raw != "serial:WD-WCC4N0000004" {
		t.Errorf("line %q: wipe %q", s.Line, p.Node.Wipe)
	}
	if !strings.Contains(strings.Join(s.Plan.Destroys, "\n"), "/dev/sdd") {
		t.Errorf("the plan does not destroy sdd: %q", s.Plan.Destroys)
	}
	confirm(t, s)
	samePlan(t, s)
}

// TestDiskAppData: Space adds app-data disks in order; they become
// storage_init's further disks, and the install disk cannot be one.
func TestDiskAppData(t *testing.T) {
	s := newState(t, "several-disks", "install")
	choose(t, s, OfferInstall)
	focusOn(t, s, "disk:sda")
	press(s, "space")
	if s.target != "" || !slices.Equal(s.appData, []string{"sda"}) {
		t.Fatalf("target %q app-data %q", s.target, s.appData)
	}
	press(s, "enter") // the app-data disk becomes the install disk
	if s.target != "sda" || len(s.appData) != 0 {
		t.Fatalf("target %q app-data %q", s.target, s.appData)
	}
	press(s, "space")
	if !strings.Contains(s.msg, "is the install disk") {
		t.Errorf("space on the install disk: %q", s.msg)
	}
	installTo(t, s, "sda", []string{"sdc", "sdb"}, nil)
	p := parse(t, s.Line)
	var raw []string
	for _, d := range p.StorageInit.Disks {
		raw = append(raw, d.Raw)
	}
	if want := []string{"serial:WD-WCC4N0000001", "serial:WD-WCC4N0000003", "serial:WD-WCC4N0000002"}; !slices.Equal(raw, want) {
		t.Errorf("storage_init %q, want %q", raw, want)
	}
	if len(s.Plan.AppData) != 2 || s.Plan.AppData[0].Target.Name != "sdc" || s.Plan.AppData[1].Mount != "/data/app2" {
		t.Errorf("app-data %+v", s.Plan.AppData)
	}
	confirm(t, s)
	samePlan(t, s)
}

// TestDiskTooSmallToInstall: a disk big enough only for app data is offered
// as one, and refused as the install disk with the size it needs.
func TestDiskTooSmallToInstall(t *testing.T) {
	s := newState(t, "small", "install")
	choose(t, s, OfferInstall)
	if !strings.Contains(bodyText(s), "too small to install on (8770 MiB needed): an app-data disk only") {
		t.Errorf("no note:\n%s", s.Screen())
	}
	focusOn(t, s, "disk:nvme0n1")
	press(s, "enter")
	if s.target != "" || !strings.Contains(s.msg, "too small to install on (4096 MiB; the layout needs 8770 MiB)") {
		t.Errorf("target %q message %q", s.target, s.msg)
	}
}

// TestLayoutFit: the fit check says, as the sizes are typed, how many MiB
// are missing, and Next waits until the layout fits.
func TestLayoutFit(t *testing.T) {
	s := newState(t, "one-nvme", "install")
	choose(t, s, OfferInstall)
	press(s, "enter") // the one disk
	next(t, s)
	if s.Page != PageLayout {
		t.Fatalf("page %s: %s", s.Page, s.msg)
	}
	if ok, lines := s.fit(); !ok || !strings.HasPrefix(lines[0], "Fits /dev/nvme0n1: ESP 512, root 2 x 2048, config 64, logging 2048, swap 2048, data 56766 MiB") {
		t.Errorf("defaults: %v %q", ok, lines)
	}
	focusOn(t, s, "vol:data")
	press(s, "=70000")
	// The smallest disk for Data 70000 uses the defaults of disks under 32 GiB:
	// ESP 512 + root 2 x 2048 + config 64 + logging 2048 + swap 1024 + data
	// 70000 + 2 for the tables = 77746 MiB; the disk has 65536.
	const want = "Does not fit /dev/nvme0n1: 12210 MiB missing (this layout needs 77746 MiB; the disk has 65536 MiB)"
	if _, lines := s.fit(); lines[0] != want {
		t.Errorf("fit %q, want %q", lines, want)
	}
	if !strings.Contains(s.Screen(), "12210 MiB missing") {
		t.Errorf("the page does not show it:\n%s", s.Screen())
	}
	vols, _ := s.vols()
	_, err := disk.PlanLayout(65536<<20, 512, vols)
	if e := operr.Of(err); e == nil || !strings.Contains(e.What, "(12210 MiB short)") {
		t.Errorf("disk.PlanLayout says %v", err)
	}
	next(t, s)
	if s.Page != PageLayout || s.msg != want {
		t.Errorf("Next with a layout that does not fit: page %s message %q", s.Page, s.msg)
	}
	focusOn(t, s, "vol:data")
	press(s, "ctrl+u", "=abc")
	if ok, lines := s.fit(); ok || !strings.Contains(lines[0], `"abc" is not a size`) {
		t.Errorf("bad number: %v %q", ok, lines)
	}
	press(s, "ctrl+u", "=20000")
	next(t, s)
	passwordAndNetwork(t, s)
	if p := parse(t, s.Line); p.StorageVol.SizesMiB[cmdline.VolData] != 20000 {
		t.Errorf("line %q", s.Line)
	}
	if d, _ := s.Plan.Layout.Find(disk.LabelData); d.Size != 20000<<20 {
		t.Errorf("node-data is %d MiB", d.Size>>20)
	}
	confirm(t, s)
	samePlan(t, s)
}

// TestPassword: the password is typed twice, never shown, refused when the
// two differ, and goes on the line as a SHA-512 crypt hash that verifies.
func TestPassword(t *testing.T) {
	s := newState(t, "one-nvme", "install")
	s.Hash = nil // the real HashPassword, random salt
	choose(t, s, OfferInstall)
	press(s, "enter")
	next(t, s)
	next(t, s)
	if s.Page != PagePassword {
		t.Fatalf("page %s: %s", s.Page, s.msg)
	}
	next(t, s)
	if s.Page != PagePassword || !strings.Contains(s.msg, "type the admin password") {
		t.Errorf("empty: page %s %q", s.Page, s.msg)
	}
	press(s, "=correct horse", "tab", "=correct hors")
	if strings.Contains(s.Screen(), "correct") || !strings.Contains(s.Screen(), "[*************") {
		t.Errorf("the password is shown:\n%s", s.Screen())
	}
	next(t, s)
	if s.Page != PagePassword || !strings.Contains(s.msg, "differ") || !s.field("pw1").Empty() || !s.field("pw2").Empty() || s.hash != "" {
		t.Fatalf("mismatch: page %s %q hash %q", s.Page, s.msg, s.hash)
	}
	focusOn(t, s, "pw1")
	press(s, "=correct horse", "tab", "=correct horse")
	focusOn(t, s, "sshkey")
	press(s, "=ssh-ed25519 AAAAnotakey me@host")
	next(t, s)
	if s.Page != PagePassword || !strings.Contains(s.msg, "SSH key") {
		t.Fatalf("bad SSH key: page %s %q", s.Page, s.msg)
	}
	key := "ssh-ed25519 " + sshBlob("ssh-ed25519") + " admin@example.com"
	focusOn(t, s, "sshkey")
	press(s, "ctrl+u", "="+key)
	next(t, s) // the password stays set although its fields were cleared
	if s.Page != PageNetwork {
		t.Fatalf("good key and password refused: %q", s.msg)
	}
	if !s.field("pw1").Empty() || s.sshKey != key {
		t.Errorf("fields %q, key %q", s.field("pw1").String(), s.sshKey)
	}
	next(t, s)
	p := parse(t, s.Line)
	h := p.AdminPW.Reveal()
	if !strings.HasPrefix(h, "$6$") || strings.Contains(s.Line, "correct") {
		t.Fatalf("line %q", s.Line)
	}
	if ok, weak := cmdline.CheckPasswordHash(h); !ok || weak {
		t.Errorf("cmdline does not take %q: %v %v", h, ok, weak)
	}
	d, err := shacrypt.Decode(h)
	if err != nil || !d.Match("correct horse") || d.Match("correct hors") {
		t.Errorf("the hash %q does not verify: %v", h, err)
	}
	if strings.Contains(s.Screen(), h) {
		t.Errorf("the plan page shows the hash")
	}
}

// TestHashPassword: the hash is crypt(3)'s SHA-512 form, the one openssl
// passwd -6 makes (a known pair), with a new salt each time.
func TestHashPassword(t *testing.T) {
	a, err := HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := HashPassword("secret")
	if a == b || !strings.HasPrefix(a, "$6$") || strings.Contains(a, "rounds=") {
		t.Errorf("hashes %q and %q", a, b)
	}
	if d, err := shacrypt.Decode(a); err != nil || !d.Match("secret") {
		t.Errorf("%q does not verify: %v", a, err)
	}
	// openssl passwd -6 -salt abc secret
	const openssl = "$6$abc$IdWKNKTJEb8LxY7CGg8YBXlvtfZzFw7Mp/r6niK9YB2mdvgY..TKjv1T..8RadRt2qvUHYRLr/TsVArtr91iR1"
	if d, err := shacrypt.Decode(openssl); err != nil || !d.Match("secret") || d.Match("Secret") {
		t.Errorf("openssl's hash does not verify: %v", err)
	}
}

// sshBlob is a well-formed key blob of type typ (32 zero key bytes).
func sshBlob(typ string) string {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(len(typ)))
	b = append(b, typ...)
	b = binary.BigEndian.AppendUint32(b, 32)
	b = append(b, make([]byte, 32)...)
	return base64.StdEncoding.EncodeToString(b)
}

// TestNetwork: the network page's values are checked by cmdline.Parse and
// become BOOTIF, ip, netmask, gateway, dns, vlan and management_server.
func TestNetwork(t *testing.T) {
	s := newState(t, "one-nvme", "install console=ttyS0,115200 nodeinit.events=ttyS1")
	choose(t, s, OfferStateless)
	press(s, "=pw", "tab", "=pw")
	next(t, s)
	if s.Page != PageNetwork {
		t.Fatalf("page %s: %s", s.Page, s.msg)
	}
	press(s, "=bad_name")
	next(t, s)
	if s.Page != PageNetwork || !strings.Contains(s.msg, `"hostname=bad_name"`) {
		t.Errorf("bad host name: page %s %q", s.Page, s.msg)
	}
	focusOn(t, s, "hostname")
	press(s, "ctrl+u", "=node7")
	focusOn(t, s, "ip:static")
	press(s, "enter")
	focusOn(t, s, "addr")
	press(s, "=192.0.2.7")
	next(t, s)
	if s.Page != PageNetwork || !strings.Contains(s.msg, "prefix") {
		t.Errorf("no prefix: %q", s.msg)
	}
	for id, v := range map[string]string{"prefix": "24", "gw": "192.0.2.1", "dns": "192.0.2.53, 192.0.2.54", "vlan": "100", "mgmt": "engine.example.com:443"} {
		focusOn(t, s, id)
		press(s, "="+v)
	}
	next(t, s)
	if s.Page != PagePlan || s.Plan == nil {
		t.Fatalf("page %s: %s %v", s.Page, s.msg, s.planErr)
	}
	p := parse(t, s.Line)
	if p.Action != cmdline.ActionStateless || p.Hostname != "node7" || p.BootIf.MAC != "52:54:00:12:34:56" ||
		p.IP.Address != "192.0.2.7" || p.IP.Gateway != "192.0.2.1" || !slices.Equal(p.DNS, []string{"192.0.2.53", "192.0.2.54"}) ||
		p.VLAN.ID != 100 || p.ManagementServer.Host != "engine.example.com" || p.ManagementServer.Port != 443 {
		t.Errorf("line %q", s.Line)
	}
	if p.Node.Events != "ttyS1" || !slices.Contains(p.Consoles, "ttyS0,115200") {
		t.Errorf("the line lost the boot's own arguments: %q", s.Line)
	}
	confirm(t, s)
	samePlan(t, s)
}

// TestInstallFlows: every way to install ends in a line that parses back and
// plans, on the same facts, to the plan the page showed.
func TestInstallFlows(t *testing.T) {
	for _, c := range []struct {
		facts, line string
		kind        OfferKind
		target      string
		want        cmdline.Action
	}{
		{"one-nvme", "install", OfferInstall, "nvme0n1", cmdline.ActionInstall},
		{"two-identical", "install storage_init", OfferInstall, "nvme1n1", cmdline.ActionInstall},
		{"ovirt", "install", OfferInstall, "sda", cmdline.ActionReinstall}, // replacing an old oVirt Node is reinstall
		{"installed", "install", OfferReinstallWipe, "nvme0n1", cmdline.ActionReinstall},
		{"installed-app-data", "install", OfferReinstallWipe, "sda", cmdline.ActionReinstall},
		{"installed-incomplete", "install", OfferInstall, "nvme0n1", cmdline.ActionInstall}, // install redoes it
	} {
		t.Run(c.facts+"/"+string(c.kind), func(t *testing.T) {
			s := newState(t, c.facts, c.line)
			choose(t, s, c.kind)
			installTo(t, s, c.target, nil, nil)
			confirm(t, s)
			p := parse(t, s.Line)
			if p.Action != c.want || s.Plan.Target.Name != c.target {
				t.Errorf("line %q: action %s target %s", s.Line, p.Action, s.Plan.Target.Name)
			}
			samePlan(t, s)
		})
	}
}

// TestInteractivePrefill: with nodeinit.interactive=1 the pages show the
// line's own values, and the line the screen makes drops the key.
func TestInteractivePrefill(t *testing.T) {
	s := newState(t, "several-disks", "install storage_init=serial:WD-WCC4N0000002,serial:WD-WCC4N0000003 storage_vol=4096,Root:1024,Swap "+
		"hostname=n9 BOOTIF=52:54:00:12:34:56 ip=192.0.2.9 netmask=24 nodeinit.interactive=1")
	choose(t, s, OfferInstall)
	if s.target != "sdb" || !slices.Equal(s.appData, []string{"sdc"}) || s.field("vol:root").String() != "4096" || s.field("vol:swap").String() != "1024" ||
		s.field("hostname").String() != "n9" || !s.static || s.field("addr").String() != "192.0.2.9" {
		t.Fatalf("prefill: target %q app %q root %q host %q static %v", s.target, s.appData, s.field("vol:root"), s.field("hostname"), s.static)
	}
	next(t, s)
	next(t, s)
	press(s, "=pw", "tab", "=pw")
	next(t, s)
	next(t, s)
	if s.Plan == nil {
		t.Fatalf("page %s: %s %v", s.Page, s.msg, s.planErr)
	}
	if strings.Contains(s.Line, "interactive") {
		t.Errorf("line %q keeps nodeinit.interactive", s.Line)
	}
	confirm(t, s)
	samePlan(t, s)
}

// TestPlanRefusal: a plan that plan.Plan refuses is shown with its fix and
// offers only Back; nothing can be started.
func TestPlanRefusal(t *testing.T) {
	s := newState(t, "no-ext4-overlay", "install")
	choose(t, s, OfferInstall)
	installToRefused(t, s)
	if s.Plan != nil || s.planErr == nil || !strings.Contains(s.Screen(), "no ext4 filesystem") || !strings.Contains(s.Screen(), "nothing will be written") {
		t.Fatalf("plan %v error %v:\n%s", s.Plan, s.planErr, s.Screen())
	}
	if it := s.items(); len(it) != 1 || it[0].id != "back" {
		t.Errorf("items %v", it)
	}
	press(s, "enter")
	if s.Page != PageNetwork || s.Finished {
		t.Errorf("Back: page %s finished %v", s.Page, s.Finished)
	}
}

// installToRefused goes to the plan page of the first disk, which refuses.
func installToRefused(t testing.TB, s *State) {
	t.Helper()
	press(s, "enter")
	next(t, s)
	next(t, s)
	press(s, "=pw", "tab", "=pw")
	next(t, s)
	next(t, s)
	if s.Page != PagePlan {
		t.Fatalf("page %s: %s", s.Page, s.msg)
	}
}

// TestCancel: Ctrl-C quits from any page before the plan's button, and is
// ignored while the install runs.
func TestCancel(t *testing.T) {
	s := newState(t, "one-nvme", "install")
	choose(t, s, OfferInstall)
	press(s, "ctrl+c")
	if !s.Canceled || s.Finished {
		t.Errorf("canceled %v finished %v", s.Canceled, s.Finished)
	}
	s = newState(t, "one-nvme", "install")
	choose(t, s, OfferInstall)
	installTo(t, s, "nvme0n1", nil, nil)
	confirm(t, s)
	s.StartProgress()
	press(s, "ctrl+c", "enter", "esc")
	if s.Canceled || s.Page != PageProgress {
		t.Errorf("keys during the install: canceled %v page %s", s.Canceled, s.Page)
	}
	if !strings.Contains(ErrCanceled.Error(), "nothing was written") {
		t.Errorf("ErrCanceled: %v", ErrCanceled)
	}
}

// TestCleanFacts: text from the facts cannot send escape sequences.
func TestCleanFacts(t *testing.T) {
	f := facts(t, "one-nvme")
	f.Disks[0].Model = "evil\x1b[2J\x1b]0;pwned\x07"
	s := NewState(f, parse(t, "install"), ImageInfo{}, StyleUnicode)
	choose(t, s, OfferInstall)
	if v := s.View(); strings.Contains(v, "\x1b[2J") || strings.Contains(v, "\x1b]") || strings.Contains(v, "\x07") {
		t.Errorf("the model's escape sequences reach the terminal: %q", v)
	}
}

// TestLongPageScrolls: what does not fit the screen and cannot take the
// focus (a long note) is reached with PgDn, and the frame says there is more.
func TestLongPageScrolls(t *testing.T) {
	s := newState(t, "two-installs", "install")
	if !strings.Contains(s.Screen(), "more below: PgUp/PgDn") || strings.Contains(s.Screen(), "that should not be here") {
		t.Fatalf("first screen:\n%s", s.Screen())
	}
	press(s, "pgdown")
	if !strings.Contains(s.Screen(), "that should not be here") || !strings.Contains(s.Screen(), "more above") {
		t.Errorf("after PgDn:\n%s", s.Screen())
	}
	press(s, "down")
	if strings.Contains(s.Screen(), "more above") {
		t.Errorf("moving the focus does not bring the window back:\n%s", s.Screen())
	}
}

// TestStyleFor: the Linux console and xterm-likes draw lines, a VT100 and
// unknown terminals ASCII, a dumb terminal plain frames.
func TestStyleFor(t *testing.T) {
	for term, want := range map[string]Style{
		"linux": StyleUnicode, "xterm-256color": StyleUnicode, "screen": StyleUnicode, "tmux-256color": StyleUnicode,
		"vt100": StyleASCII, "vt220": StyleASCII, "ansi": StyleASCII, "sun": StyleASCII,
		"dumb": StylePlain, "": StylePlain,
	} {
		if got := StyleFor(term); got != want {
			t.Errorf("StyleFor(%q) = %d, want %d", term, got, want)
		}
	}
}
