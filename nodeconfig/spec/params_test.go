package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
)

// carrierNIC is the interface BOOTIF=link picks in these tests.
var carrierNIC = []NIC{{Name: "eth9", MAC: "52:54:00:00:00:01"}, {Name: "eth0", MAC: "52:54:00:aa:bb:cc", Carrier: true}}

func fromLine(t *testing.T, line string) (Config, error) {
	t.Helper()
	p, err := cmdline.Parse(line)
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	return FromParams(p, carrierNIC)
}

// TestFromParams maps command lines to the config they seed, including the netmask forms
// (netmask=24, a prefix in ip=) and IPv6 host:port values, which keep their brackets.
func TestFromParams(t *testing.T) {
	tests := []struct {
		line string
		want func(*testing.T, Config)
	}{
		{"BOOTIF=link ip=10.0.0.5 netmask=24 gateway=10.0.0.1", func(t *testing.T, c Config) {
			want := []Interface{{MAC: "52:54:00:aa:bb:cc", Address: "10.0.0.5/24", Gateway: "10.0.0.1"}}
			if !slices.Equal(c.Interfaces, want) {
				t.Errorf("interfaces %+v, want %+v", c.Interfaces, want)
			}
		}},
		{"BOOTIF=eth1 ip=10.0.0.5/23 gateway=10.0.0.1", func(t *testing.T, c Config) {
			if c.Interfaces[0].Address != "10.0.0.5/23" || c.Interfaces[0].Name != "eth1" {
				t.Errorf("interfaces %+v", c.Interfaces)
			}
		}},
		{"ip=10.0.0.5::10.0.0.1:24:node1.example.com:eth0:none:9000:52-54-00-12-34-56", func(t *testing.T, c Config) {
			if c.Interfaces[0].Address != "10.0.0.5/24" || c.Interfaces[0].Name != "eth0" {
				t.Errorf("interfaces %+v", c.Interfaces)
			}
		}},
		{"BOOTIF=01-52-54-00-12-34-56 ip=[2001:db8::5]::[2001:db8::1]:64 vlan=100", func(t *testing.T, c Config) {
			want := []Interface{{MAC: "52:54:00:12:34:56", Address: "2001:db8::5/64", Gateway: "2001:db8::1", VLAN: 100}}
			if !slices.Equal(c.Interfaces, want) {
				t.Errorf("interfaces %+v, want %+v", c.Interfaces, want)
			}
		}},
		{"BOOTIF=eth0 ip=192.168.1.10:192.168.1.1:192.168.1.1:255.255.254.0", func(t *testing.T, c Config) {
			if c.Interfaces[0].Address != "192.168.1.10/23" {
				t.Errorf("interfaces %+v", c.Interfaces)
			}
		}},
		{"BOOTIF=eth0 ip=off", func(t *testing.T, c Config) {
			if len(c.Interfaces) != 0 {
				t.Errorf("ip=off configured %+v", c.Interfaces)
			}
		}},
		{"ip=eth1:dhcp", func(t *testing.T, c Config) {
			if want := []Interface{{Name: "eth1", DHCP: true}}; !slices.Equal(c.Interfaces, want) {
				t.Errorf("interfaces %+v, want %+v", c.Interfaces, want)
			}
		}},
		{"management_server=[2001:db8::1]:443 syslog=[2001:db8::5]:514 collectd=[2001:db8::6]:25826 netconsole=[2001:db8::7]:6666", func(t *testing.T, c Config) {
			got := []string{c.ManagementServer, c.Syslog, c.Collectd, c.Netconsole}
			want := []string{"[2001:db8::1]:443", "[2001:db8::5]:514", "[2001:db8::6]:25826", "[2001:db8::7]:6666"}
			if !slices.Equal(got, want) {
				t.Errorf("host:port values %q, want %q", got, want)
			}
		}},
		{"management_server=2001:db8::1 syslog=192.0.2.5:514 collectd=collect.example.com", func(t *testing.T, c Config) {
			got := []string{c.ManagementServer, c.Syslog, c.Collectd}
			want := []string{"2001:db8::1", "192.0.2.5:514", "collect.example.com"}
			if !slices.Equal(got, want) {
				t.Errorf("host:port values %q, want %q", got, want)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			c, err := fromLine(t, tt.line)
			if err != nil {
				t.Fatal(err)
			}
			tt.want(t, c)
			checkFiles(t, c)
		})
	}
}

// TestFromParamsBootIfLinkNoCarrier: BOOTIF=link on a machine without a link
// installs without an interface file, as oVirt Node did (the plan warns); it is
// not a reason to refuse the install.
func TestFromParamsBootIfLinkNoCarrier(t *testing.T) {
	p, err := cmdline.Parse("BOOTIF=link ip=dhcp")
	if err != nil {
		t.Fatal(err)
	}
	c, err := FromParams(p, []NIC{{Name: "eth0", MAC: "52:54:00:aa:bb:cc"}})
	if err != nil || len(c.Interfaces) != 0 {
		t.Fatalf("FromParams = %+v, %v; want no interface and no error", c.Interfaces, err)
	}
}

// goldenLines are the golden command lines of the cmdline package.
func goldenLines(t testing.TB) []string {
	files, err := filepath.Glob("../../testdata/cmdline/*.txt")
	if err != nil || len(files) < 40 {
		t.Fatalf("golden command lines: %d, %v", len(files), err)
	}
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(string(b), "\n"))
	}
	return out
}

// checkAcceptImpliesValid is the property of issue 12 item 8: a line the parser (and so the
// plan) accepts gives a Config that Validate accepts, and every file rendered from it
// re-parses to its values. nodeconfig's FuzzAcceptImpliesSeed adds the write.
func checkAcceptImpliesValid(t *testing.T, line string) {
	p, err := cmdline.Parse(line)
	if err != nil {
		return
	}
	c, err := FromParams(p, carrierNIC)
	if err != nil {
		t.Fatalf("Parse accepted %q but FromParams refuses it: %v", line, err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("FromParams gave %q a Config that Validate refuses: %v", line, err)
	}
	checkFiles(t, c)
}

// seedLines are lines that the parser once accepted and seed-config then refused.
var seedLines = []string{
	"BOOTIF=link ip=10.0.0.5 netmask=24 dns=10.0.0.53 ntp=ntp.example.com",
	"BOOTIF=eth0 ip=10.0.0.5/24 gateway=10.0.0.1 vlan=7",
	"ip=10.0.0.5::10.0.0.1:24:node1:eth0:none",
	"BOOTIF=eth0 ip=10.0.0.5 gateway=10.0.0.1",
	"ip=[2001:db8::5/64]::[2001:db8::1]::node1:eth0:none dns=fe80::1%eth0",
	"management_server=[2001:db8::1]:443 syslog=[2001:db8::5]:514 adminpw=$6$$abc rootpw=abcdefghijklm",
	"dns=ns1.example.com",
	"BOOTIF=eth+0 ip=dhcp",
	`dns="fe80::1%eth0 Domains=x" ntp="fe80::1%a b"`,
	`ip=10.0.0.5:::24 gateway="fe80::1%eth0 Gateway=192.0.2.66" BOOTIF=eth0`,
}

// TestGoldenLinesValid runs the property over every golden command line and seedLines.
func TestGoldenLinesValid(t *testing.T) {
	for _, line := range append(goldenLines(t), seedLines...) {
		checkAcceptImpliesValid(t, line)
	}
}

// FuzzAcceptImpliesValid: any command line Parse accepts goes through FromParams and
// renders files that keep every value in place.
func FuzzAcceptImpliesValid(f *testing.F) {
	for _, line := range append(goldenLines(f), seedLines...) {
		f.Add(line)
	}
	f.Fuzz(checkAcceptImpliesValid)
}
