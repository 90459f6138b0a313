package cmdline

import (
	"errors"
	"strings"
	"testing"
)

// mustParse parses a line that must be accepted.
func mustParse(t *testing.T, line string) *Params {
	t.Helper()
	p, err := Parse(line)
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	return p
}

// parseErr parses a line that must be refused and returns its one *Error.
func parseErr(t *testing.T, line string) *Error {
	t.Helper()
	p, err := Parse(line)
	if err == nil {
		t.Fatalf("Parse(%q) = %s, want an error", line, p)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse(%q): %v is not a *cmdline.Error", line, err)
	}
	if e.Hint == "" {
		t.Errorf("Parse(%q): error %v has no hint", line, err)
	}
	return e
}

// TestActionAliasesShareLastValue: aliases of one action are one key for "last value wins"
// (issue 12, oVirt compatibility): firstboot ovirt_firstboot=0 is off.
func TestActionAliasesShareLastValue(t *testing.T) {
	for line, want := range map[string]Action{
		"firstboot ovirt_firstboot=0 storage_init=/dev/vda":   ActionBoot,
		"ovirt_firstboot=0 firstboot storage_init=/dev/vda":   ActionInstall,
		"install firstboot=0 storage_init=/dev/vda":           ActionBoot,
		"local_boot ovirt_upgrade=no":                         ActionBoot,
		"ovirt_reinstall reinstall=0 install":                 ActionInstall,
		"stateless ovirt_stateless=off":                       ActionBoot,
		"ovirt_uninstall=1 uninstall=0 uninstall=1 install=0": ActionUninstall,
	} {
		p := mustParse(t, line)
		if p.Action != want {
			t.Errorf("%q: action %s, want %s", line, p.Action, want)
		}
	}
	// An alias turned off last still suppresses oVirt's implicit auto-install.
	p := mustParse(t, "firstboot ovirt_firstboot=0 storage_init=/dev/vda BOOTIF=link")
	if p.AutoInstall || p.Destructive() {
		t.Errorf("firstboot ovirt_firstboot=0: AutoInstall=%v Destructive=%v, want both false", p.AutoInstall, p.Destructive())
	}
}

// TestActionCase: action flags match case-sensitively, as the kernel and oVirt Node match
// them; a near miss is refused with a hint naming the right spelling, never acted on.
func TestActionCase(t *testing.T) {
	for line, want := range map[string]string{
		"Reinstall storage_init=/dev/sda": "reinstall",
		"INSTALL storage_init=/dev/sda":   "install",
		"Firstboot":                       "firstboot",
		"ovirt_Reinstall":                 "ovirt_reinstall",
		"UNINSTALL=1":                     "uninstall",
		"reinstal storage_init=/dev/sda":  "reinstall",
		"uninstal":                        "uninstall",
		"localboot":                       "local_boot",
		"upgarde":                         "upgrade",
	} {
		e := parseErr(t, line)
		if e.Key != "action" || !strings.Contains(e.Hint, "write "+want) {
			t.Errorf("%q: key %q hint %q, want the action key and a hint naming %q", line, e.Key, e.Hint, want)
		}
	}
	// '-' and '_' stay the same in action keys, as in every key.
	if p := mustParse(t, "ovirt-reinstall storage_init=/dev/sda"); p.Action != ActionReinstall {
		t.Errorf("ovirt-reinstall: action %s", p.Action)
	}
	// Tokens that merely resemble no action are kept.
	if p := mustParse(t, "resume=/dev/sda2 single"); p.Action != ActionBoot || len(p.Kept) != 2 {
		t.Errorf("resume= single: action %s kept %v", p.Action, p.Kept)
	}
}

// TestBootIfPxelinuxLength: pxelinux's BOOTIF=01-… must carry exactly six MAC bytes, separated
// by '-' (pxelinux) or ':' (GRUB's BOOTIF=01-${net_default_mac}); a short or long value is
// refused instead of being read as another MAC.
func TestBootIfPxelinuxLength(t *testing.T) {
	for _, c := range []struct{ v, problem string }{
		{"01-52-54-00-12-34", "has 5 bytes"}, {"01-52-54-00-12-34-56-78", "has 7 bytes"}, {"01-52-54-00-12", "has 4 bytes"},
		{"01-52:54:00:12:34", "has 5 bytes"}, {"01-52:54:00:12:34:56:78", "has 7 bytes"}, {"01-", "has 0 bytes"},
		{"01:52:54:00:12:34", "multicast"}, {"01-52:54:00-12:34:56:78", "has 7 bytes"}, {"01-52:54:00:12:34:5", "not a valid MAC"},
	} {
		e := parseErr(t, "BOOTIF="+c.v)
		if e.Key != "BOOTIF" || !strings.Contains(e.Problem, c.problem) || e.Hint == "" {
			t.Errorf("BOOTIF=%s: key %q, problem %q, want %q and a hint", c.v, e.Key, e.Problem, c.problem)
		}
	}
	for _, v := range []string{"01-52-54-00-12-34-56", "01-52:54:00:12:34:56", "01-52:54:00:12:34:56", "52-54-00-12-34-56", "52:54:00:12:34:56"} {
		if p := mustParse(t, "BOOTIF="+v); p.BootIf == nil || p.BootIf.MAC != "52:54:00:12:34:56" {
			t.Errorf("BOOTIF=%s read as %+v", v, p.BootIf)
		}
	}
}

// TestPasswordKeysAreSecret: every password argument, also with oVirt's ovirt_ prefix, is a
// secret: parsed where nodeinit uses it, and never shown by String, JSON, Kept or errors.
func TestPasswordKeysAreSecret(t *testing.T) {
	const des, sha = "RHhwCLrQXB8zE", "$6$saltsalt$GyB1s3q6Esx33IRI49rK5RM7VdJObU"
	p := mustParse(t, "install ovirt_adminpw="+des+" ovirt_rootpw="+sha+" admin_pw=hunter2 ovirt_snmp_password=topsecret "+
		"OVIRT_ROOTPW_HASHED=redhat123 quiet")
	if p.AdminPW.Reveal() != des || p.RootPW.Reveal() != sha {
		t.Errorf("ovirt_adminpw/ovirt_rootpw not parsed: %q %q", p.AdminPW.Reveal(), p.RootPW.Reveal())
	}
	for _, shown := range []string{p.String(), strings.Join(p.Kept, " "), strings.Join(p.BootEntryArgs(), " "), strings.Join(p.Warnings, " ")} {
		for _, s := range []string{des, "GyB1s3q6Esx33IRI49rK5RM7VdJObU", "hunter2", "topsecret", "redhat123"} {
			if strings.Contains(shown, s) {
				t.Errorf("secret %q shown in %q", s, shown)
			}
		}
	}
	e := parseErr(t, "ovirt_adminpw=hunter2")
	if strings.Contains(e.Error(), "hunter2") || e.Key != "adminpw" {
		t.Errorf("error for a plaintext ovirt_adminpw: key %q: %v", e.Key, e)
	}
	for _, k := range []string{"adminpw", "ovirt_adminpw", "rootpw", "ovirt_rootpw", "admin_pw", "rhn_password", "ovirt_cim_passwd",
		"db_passwd", "root_password", "rootpw_hashed", "ovirt_rootpw_hashed", "luks_passphrase"} {
		if !isSecretKey(k) {
			t.Errorf("isSecretKey(%q) = false", k)
		}
	}
	for _, k := range []string{"ip", "storage_init", "hostname", "nodeinit.image", "bootif"} {
		if isSecretKey(k) {
			t.Errorf("isSecretKey(%q) = true", k)
		}
	}
}

// TestNetmaskForms: a prefix length is a netmask (netmask=24, the NETMASK field of ip=, or
// ip=ADDR/PREFIX); a static address without one, or a mask that does not fit the address
// family, is refused at parse time rather than when the config is seeded.
func TestNetmaskForms(t *testing.T) {
	for line, want := range map[string][2]string{
		"ip=10.0.0.5 netmask=24 gateway=10.0.0.1":   {"10.0.0.5", "24"},
		"ip=10.0.0.5/24 gateway=10.0.0.1":           {"10.0.0.5", "24"},
		"ip=10.0.0.5/24::10.0.0.1::node1:eth0:none": {"10.0.0.5", "24"},
		"ip=10.0.0.5::10.0.0.1:24":                  {"10.0.0.5", "24"},
		"ip=[2001:db8::5/64]::[2001:db8::1]":        {"2001:db8::5", "64"},
		"ip=10.0.0.5/24 netmask=24":                 {"10.0.0.5", "24"},
		"ip=10.0.0.5/24 netmask=255.255.255.0":      {"10.0.0.5", "24"},
		"ip=10.0.0.5/24 netmask=255.255.0.0":        {"10.0.0.5", "24"}, // ip= wins, with a warning
	} {
		p := mustParse(t, line)
		if p.IP.Address != want[0] || p.IP.Netmask != want[1] {
			t.Errorf("%q: address %q netmask %q, want %q %q", line, p.IP.Address, p.IP.Netmask, want[0], want[1])
		}
		checkRoundTrip(t, p)
	}
	for line, key := range map[string]string{
		"ip=10.0.0.5":                         "ip",
		"ip=10.0.0.5 gateway=10.0.0.1":        "ip",
		"ip=10.0.0.5 netmask=33":              "netmask",
		"ip=10.0.0.5/33":                      "ip",
		"ip=[2001:db8::5]:::255.255.255.0":    "ip",
		"ip=[2001:db8::5]::[2001:db8::1]:129": "ip",
		"ip=10.0.0.5/24:::255.255.0.0":        "ip",
		"ip=10.0.0.5/x":                       "ip",
	} {
		if e := parseErr(t, line); e.Key != key {
			t.Errorf("%q: key %q, want %q (%v)", line, e.Key, key, e)
		}
	}
}

// TestDNSAddressesOnly: dns= takes addresses (a resolver cannot look up its own servers).
func TestDNSAddressesOnly(t *testing.T) {
	e := parseErr(t, "dns=ns1.example.com,192.0.2.53")
	if e.Key != "dns" || !strings.Contains(e.Hint, "IP address") {
		t.Errorf("dns= with a host name: %v", e)
	}
	if p := mustParse(t, "ntp=ntp1.example.com dns=192.0.2.53,2001:db8::53"); len(p.DNS) != 2 || len(p.NTP) != 1 {
		t.Errorf("dns/ntp: %v %v", p.DNS, p.NTP)
	}
}

// TestZones: an IPv6 zone is an interface name or nothing; netip.ParseAddr accepts any bytes
// after '%', which would let a value escape its line in a generated file.
func TestZones(t *testing.T) {
	if p := mustParse(t, "dns=fe80::1%eth0 ntp=fe80::123%enp1s0"); p.DNS[0] != "fe80::1%eth0" {
		t.Errorf("dns with a zone: %v", p.DNS)
	}
	for _, line := range []string{
		`dns="fe80::1%eth0 DNSStubListener=no"`,
		"dns=\"fe80::1%x\nDomains=evil\"",
		"ntp=fe80::1%a/b,b",
		`ntp="fe80::1%a b"`,
		"dns=fe80::1%",
		"ip=10.0.0.5/24 gateway=fe80::1%eth0",
		"ip=[fe80::5%eth0]:::64",
		"ip=[2001:db8::5]::[fe80::1%eth0]:64",
		"management_server=[fe80::1%eth0]:443",
		"syslog=fe80::1%eth0",
		"ipv6=fe80::1%eth0",
		"dns=fe80::1%eth0/1",
		"dns=fe80::1%eth*",
	} {
		parseErr(t, line)
	}
}

// TestInterfaceNames: interface names are what networkd's Name= takes literally: no glob
// characters, no whitespace.
func TestInterfaceNames(t *testing.T) {
	for _, line := range []string{"BOOTIF=eth*", "BOOTIF=eth?", "BOOTIF=eth[0]", "ip=eth#0:dhcp", "vlan=100:eth*", "bond=bond0:eth*"} {
		parseErr(t, line)
	}
	mustParse(t, "BOOTIF=enp0s31f6 vlan=eth0.100:eth0 bond=bond-lan:eth_0,eth.1")
}

// TestStorageVolOVirtValues: the storage_vol values oVirt Node used every day parse; the
// layout rounds them up where it needs more (disk.PlanLayout).
func TestStorageVolOVirtValues(t *testing.T) {
	p := mustParse(t, "storage_vol=:4096::5:2048:-1 ")
	if p.StorageVol.SizesMiB[VolConfig] != 5 {
		t.Errorf("config: %v", p.StorageVol.SizesMiB)
	}
	p = mustParse(t, "storage_vol=256,EFI:50,Boot:1024,Swap2:-1,Data2:5,Config")
	want := map[string]int64{VolEFI: 256, VolBoot: 50, VolSwap2: 1024, VolData2: -1, VolConfig: 5}
	for k, v := range want {
		if p.StorageVol.SizesMiB[k] != v {
			t.Errorf("%s = %d, want %d", k, p.StorageVol.SizesMiB[k], v)
		}
	}
}
