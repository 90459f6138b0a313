package cmdline

import (
	"errors"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/operr"
)

// TestErrors checks that each kind of bad input names its token and carries a hint that says how to fix it.
func TestErrors(t *testing.T) {
	tests := []struct {
		line, token, key, problem, hint string
	}{
		{"upgrade uninstall", "upgrade uninstall", "action", "conflicting actions upgrade and uninstall", "keep only one of upgrade, uninstall"},
		{"install ovirt_stateless reinstall", "ovirt_stateless reinstall", "action", "conflicting actions stateless and reinstall", "install may accompany exactly one other action"},
		{"install=/dev/sda", "install=/dev/sda", "install", "is not a yes/no value", "the disk is chosen with storage_init="},
		{"uninstall=maybe", "uninstall=maybe", "uninstall", "is not a yes/no value", "uninstall=0 to turn it off"},
		{"adminpw=hunter2", "adminpw=<redacted>", "adminpw", "looks like a plaintext password", "openssl passwd -6"},
		{"rootpw=", "rootpw=<redacted>", "rootpw", "needs a password hash", "mkpasswd -m sha-512"},
		{"rootpw=$9$salt$hash", "rootpw=<redacted>", "rootpw", "not a valid $id$salt$hash", "openssl passwd -6"},
		{"storage_init=sda", "storage_init=sda", "storage_init", `"sda" is not a disk name`, "/dev/sda"},
		{"storage_init=", "storage_init=", "storage_init", "names no install disk", "serial:SERIAL"},
		{"storage_init=/dev/sda;/dev/sdb;/dev/sdc", "storage_init=/dev/sda;/dev/sdb;/dev/sdc", "storage_init", "more than one ';'", "extra disks after ';'"},
		{"storage_init=/dev/sda,,/dev/sdb", "storage_init=/dev/sda,,/dev/sdb", "storage_init", "empty disk entry", "separate disks with ','"},
		{"storage_init=/dev/sd[a", "storage_init=/dev/sd[a", "storage_init", "malformed", "* ? and [..] are allowed"},
		{"storage_init=serial:", "storage_init=serial:", "storage_init", "names no disk", "serial:SERIAL"},
		{"ovirt_vol=:4G", "ovirt_vol=:4G", "storage_vol", `size "4G" of swap is not a whole number of MiB`, "sizes are whole MiB"},
		{"storage_vol=100,Home", "storage_vol=100,Home", "storage_vol", `unknown volume name "Home"`, "Swap, Root, Config"},
		{"storage_vol=-1,Swap:-1,Data", "storage_vol=-1,Swap:-1,Data", "storage_vol", "both swap and data ask for the rest", "-1 for the rest of the disk"},
		{"storage_vol=-2,Swap", "storage_vol=-2,Swap", "storage_vol", "is not a whole number", "0 for none"},
		{"storage_vol=1:2:3:4:5:6:7:8:9:10", "storage_vol=1:2:3:4:5:6:7:8:9:10", "storage_vol", "has 10 fields", "SIZE,Name"},
		{"BOOTIF=01-52-54-00-12-34-ZZ", "BOOTIF=01-52-54-00-12-34-ZZ", "BOOTIF", "not a valid MAC address", "BOOTIF=link"},
		{"BOOTIF", "BOOTIF", "BOOTIF", "needs a value", "BOOTIF=<interface>"},
		{"ip=10.0.0.300", "ip=10.0.0.300", "ip", `address "10.0.0.300" is not an IP address`, "ip=dhcp"},
		{"ip=10.0.0.5::10.0.0.1:255.0.255.0", "ip=10.0.0.5::10.0.0.1:255.0.255.0", "ip", "has holes", "NETMASK"},
		{"ip=10.0.0.5:::24:h:eth0:bogus", "ip=10.0.0.5:::24:h:eth0:bogus", "ip", `autoconf method "bogus" is unknown`, "dhcp6|auto6|ibft"},
		{"ip=[2001:db8::1", "ip=[2001:db8::1", "ip", "'[' is not closed", "ip=dhcp"},
		{"ip=10.0.0.5 netmask=255.255.0.255", "netmask=255.255.0.255", "netmask", "is not a netmask", "netmask=24"},
		{"ip=10.0.0.5 gateway=nope", "gateway=nope", "gateway", "is not an IP address", "gateway=192.0.2.1"},
		{"ipv6=sometimes", "ipv6=sometimes", "ipv6", "is not dhcp, auto or an IPv6 address", "ipv6=auto"},
		{"dns=192.0.2.1,,192.0.2.2", "dns=192.0.2.1,,192.0.2.2", "dns", "empty entry", "dns=SERVER[,SERVER...]"},
		{"ntp=bad_host", "ntp=bad_host", "ntp", "neither an IP address nor a host name", "ntp=SERVER"},
		{"hostname=-bad", "hostname=-bad", "hostname", "not a valid host name", "letters, digits"},
		{"vlan=5000", "vlan=5000", "vlan", "outside 1-4094", "vlan=100:eth0"},
		{"vlan=eth0.x:eth0", "vlan=eth0.x:eth0", "vlan", "does not end in its ID", "vlan=eth0.100:eth0"},
		{"bond=bond0:eth0,eth/1", "bond=bond0:eth0,eth/1", "bond", `slave "eth/1" is not an interface name`, "bond=NAME:SLAVE"},
		{"bond=bond0:eth0:mode", "bond=bond0:eth0:mode", "bond", `option "mode" is not NAME=VALUE`, "mode=802.3ad"},
		{"ssh_pwauth=perhaps", "ssh_pwauth=perhaps", "ssh_pwauth", "not a yes/no value", "ssh_pwauth=0"},
		{"management_server=https://engine/ovirt-engine", "management_server=https://engine/ovirt-engine", "management_server", "has a path", "without a path"},
		{"management_server=engine:99999", "management_server=engine:99999", "management_server", "not a number between 1 and 65535", "HOST[:PORT]"},
		{"management_port=443", "management_port=443", "management_port", "needs management_server", "management_server=HOST"},
		{"management_server_fingerprint=33:2B", "management_server_fingerprint=33:2B", "management_server_fingerprint", "has 2 bytes", "hex pairs"},
		{"syslog=[::1", "syslog=[::1", "syslog", "'[' is not closed", "syslog=HOST[:PORT]"},
		{"collectd=host:", "collectd=host:", "collectd", "port \"\" is not a number", "collectd=HOST[:PORT]"},
		{"local_boot_trigger=ftp://x/y", "local_boot_trigger=ftp://x/y", "local_boot_trigger", "not an http(s) URL", "local_boot_trigger=http://"},
		{"reboot_delay=-5", "reboot_delay=-5", "reboot_delay", "not a number of seconds", "0 to 86400"},
		{"nodeinit.dryrn", "nodeinit.dryrn", "nodeinit.dryrn", "unknown nodeinit key", "nodeinit.dryrun"},
		{"nodeinit.image=ftp://x", "nodeinit.image=ftp://x", "nodeinit.image", "not an image source", "label:NAME"},
		{"nodeinit.image.sha256=xyz", "nodeinit.image.sha256=xyz", "nodeinit.image.sha256", "not 64 hex digits", "sha256sum manifest.json"},
		{"nodeinit.dryrun=sure", "nodeinit.dryrun=sure", "nodeinit.dryrun", "not a yes/no value", "nodeinit.dryrun=0"},
		{"nodeinit.break", "nodeinit.break", "nodeinit.break", "needs a stage name", "write-slot"},
		{"nodeinit.break=partition,format", "nodeinit.break=partition,format", "nodeinit.break", `"format" is not a stage`, "write-slot"},
		{"nodeinit.onfail=explode", "nodeinit.onfail=explode", "nodeinit.onfail", "not a failure policy", "shell, reboot, poweroff or halt"},
		{"nodeinit.status_url=localhost:80", "nodeinit.status_url=localhost:80", "nodeinit.status_url", "not an http(s) URL", "http(s)://HOST"},
		{"nodeinit.wipe=", "nodeinit.wipe=", "nodeinit.wipe", "needs the serial or WWN", "SERIAL[,WWN...]"},
		{"nodeinit.wipe=A,,B", "nodeinit.wipe=A,,B", "nodeinit.wipe", "empty entry", "serial or WWN"},
		{"nodeinit.keep=config", "nodeinit.keep=config", "nodeinit.keep", `"config" cannot be kept`, "nodeinit.keep=data"},
		{"nodeinit.slot=c", "nodeinit.slot=c", "nodeinit.slot", "not a slot", "nodeinit.slot=a or nodeinit.slot=b"},
		{"nodeinit.tries=10", "nodeinit.tries=10", "nodeinit.tries", "from 1 to 9", "N from 1 to 9"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			p, err := Parse(tt.line)
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.line, p)
			}
			if p != nil {
				t.Errorf("Parse returned params along with the error")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not a *cmdline.Error", err)
			}
			if e.Token != tt.token || e.Key != tt.key {
				t.Errorf("token/key = %q/%q, want %q/%q", e.Token, e.Key, tt.token, tt.key)
			}
			if !strings.Contains(e.Problem, tt.problem) {
				t.Errorf("problem %q does not say %q", e.Problem, tt.problem)
			}
			if !strings.Contains(e.Hint, tt.hint) {
				t.Errorf("hint %q does not say %q", e.Hint, tt.hint)
			}
			if msg := err.Error(); !strings.Contains(msg, e.Token) || strings.Contains(msg, e.Hint) {
				t.Errorf("message %q does not name the token, or repeats the fix", msg)
			}
			if d := operr.Describe(err); d.Fix != e.Hint {
				t.Errorf("the operator error's fix is %q, want the hint %q", d.Fix, e.Hint)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "$9$salt") {
				t.Errorf("message shows a secret: %s", err)
			}
		})
	}
}

// TestErrorsJoined checks that every bad argument is reported, not only the first.
func TestErrorsJoined(t *testing.T) {
	_, err := Parse("nodeinit.slot=c nodeinit.tries=0 reboot_delay=soon quiet")
	if err == nil {
		t.Fatal("want an error")
	}
	for _, tok := range []string{"nodeinit.slot=c", "nodeinit.tries=0", "reboot_delay=soon"} {
		if !strings.Contains(err.Error(), tok) {
			t.Errorf("joined error does not mention %s: %v", tok, err)
		}
	}
}

// TestTruncated checks the kernel-limit rule at both sides of the boundary.
func TestTruncated(t *testing.T) {
	for _, n := range []int{MaxLen - 2, MaxLen - 1, MaxLen + 10} {
		line := "install storage_init=/dev/sda x="
		line += strings.Repeat("a", n-len(line))
		p, err := Parse(line + "\n")
		if err != nil {
			t.Fatal(err)
		}
		if want := n >= MaxLen-1; p.PossiblyTruncated != want || !p.Destructive() {
			t.Errorf("len %d: PossiblyTruncated=%v Destructive=%v, want %v true", n, p.PossiblyTruncated, p.Destructive(), want)
		}
	}
}

// TestDestructive covers every action.
func TestDestructive(t *testing.T) {
	for line, want := range map[string]bool{
		"": false, "rescue": false, "stateless": false, "install": true, "reinstall": true, "upgrade": true,
		"uninstall": true, "uninstall=0": false, "storage_init=/dev/sda BOOTIF=link": true, "storage_init=/dev/sda": false,
	} {
		p, err := Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		if p.Destructive() != want {
			t.Errorf("%q: Destructive() = %v, want %v", line, p.Destructive(), want)
		}
	}
}

// TestBootEntryArgs checks what reaches the installed boot entry.
func TestBootEntryArgs(t *testing.T) {
	p, err := Parse(`BOOT_IMAGE=/vmlinuz install storage_init=/dev/sda adminpw=$1$abcdefgh$qyElKzTtSdp6DF7aG6as3/ ` +
		`console=ttyS0,115200 "foo=a b" nodeinit.debug snmp_password=s3cret crashkernel=256M -- single "x y"`)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(p.BootEntryArgs(), " ")
	want := `console=ttyS0,115200 "foo=a b" crashkernel=256M -- single "x y"`
	if got != want {
		t.Errorf("BootEntryArgs = %s\nwant %s", got, want)
	}
}

// TestSplit pins the tokenizer on the kernel's quoting rules.
func TestSplit(t *testing.T) {
	toks, init, open := Split(` a="b c"  "d e"f "" -- g "--" h`)
	if strings.Join(toks, "|") != "a=b c|d ef" || strings.Join(init, "|") != "g|--|h" || open {
		t.Errorf("Split = %q %q %v", toks, init, open)
	}
	if _, _, open := Split(`a "b`); !open {
		t.Error("unterminated quote not reported")
	}
}
