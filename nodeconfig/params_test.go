package nodeconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/nodeconfig/spec"
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

// TestSeedIPv6HostPort: an IPv6 management server keeps its address whole in management.conf
// and its brackets in monitoring.conf (issue 12, item 10).
func TestSeedIPv6HostPort(t *testing.T) {
	c, err := fromLine(t, "management_server=[2001:db8::1]:443 syslog=[2001:db8::5]:514")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := Seed(dir, c); err != nil {
		t.Fatal(err)
	}
	if got, want := readFile(t, filepath.Join(dir, ManagementPath)), spec.Header+"MANAGEMENT_SERVER=2001:db8::1\nMANAGEMENT_PORT=443\n"; got != want {
		t.Errorf("management.conf %q, want %q", got, want)
	}
	if got, want := readFile(t, filepath.Join(dir, MonitoringPath)), spec.Header+"SYSLOG=[2001:db8::5]:514\n"; got != want {
		t.Errorf("monitoring.conf %q, want %q", got, want)
	}
}

// goldenLines are the golden command lines of the cmdline package.
func goldenLines(t testing.TB) []string {
	files, err := filepath.Glob("../testdata/cmdline/*.txt")
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

// checkAcceptImpliesSeed is the property of issue 12 item 8: a line the parser (and so the
// plan) accepts is one seed-config accepts too, and Seed writes exactly the rendered files
// (spec's FuzzAcceptImpliesValid re-parses those in each file's own format).
func checkAcceptImpliesSeed(t *testing.T, line string) {
	p, err := cmdline.Parse(line)
	if err != nil {
		return
	}
	c, err := FromParams(p, carrierNIC)
	if err != nil {
		t.Fatalf("Parse accepted %q but FromParams refuses it: %v", line, err)
	}
	dir := t.TempDir()
	if err := Seed(dir, c); err != nil {
		t.Fatalf("Parse accepted %q but Seed refuses it: %v", line, err)
	}
	for _, f := range c.Files() {
		if b, err := os.ReadFile(filepath.Join(dir, f.Path)); err != nil || string(b) != f.Content {
			t.Fatalf("Seed of %q: %s holds %q (%v), want %q", line, f.Path, b, err, f.Content)
		}
	}
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

// TestGoldenLinesSeed runs the property over every golden command line and seedLines.
func TestGoldenLinesSeed(t *testing.T) {
	for _, line := range append(goldenLines(t), seedLines...) {
		checkAcceptImpliesSeed(t, line)
	}
}

// FuzzAcceptImpliesSeed: any command line Parse accepts goes through FromParams and Seed.
func FuzzAcceptImpliesSeed(f *testing.F) {
	for _, line := range append(goldenLines(f), seedLines...) {
		f.Add(line)
	}
	f.Fuzz(checkAcceptImpliesSeed)
}
