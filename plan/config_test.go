package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/operr"
)

const testHash = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"

func configFacts(t testing.TB) *Facts {
	t.Helper()
	f, err := loadFacts("../testdata/facts/one-nvme.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.NICs) == 0 || !f.NICs[0].Carrier {
		t.Fatalf("one-nvme.json lost its NIC with a link: %+v", f.NICs)
	}
	return f
}

func parseLine(t testing.TB, line string) *cmdline.Params {
	t.Helper()
	p, err := cmdline.Parse(line)
	if err != nil {
		t.Fatalf("Parse(%q): %v", line, err)
	}
	return p
}

// TestCheckConfigRefuses: a value seed-config would refuse is an operator error naming the
// argument, with a fix and without the fix in its message, and never showing a hash. The
// parser refuses most of these itself, so the values are set on parsed Params directly, as
// a future parser gap would leave them.
func TestCheckConfigRefuses(t *testing.T) {
	f := configFacts(t)
	noLink := *f
	noLink.NICs = []NIC{{Name: "eth0", MAC: "52:54:00:12:34:56"}}
	tests := []struct {
		name  string
		facts *Facts
		set   func(*cmdline.Params)
		token string // in What
	}{
		{"hostile hostname", f, func(p *cmdline.Params) { p.Hostname = "node1\nDNS=192.0.2.66" }, `"hostname=node1\nDNS=192.0.2.66"`},
		{"dns host name", f, func(p *cmdline.Params) { p.DNS = []string{"192.0.2.53", "ns1.example.com"} }, `"dns=ns1.example.com"`},
		{"dns zone injection", f, func(p *cmdline.Params) { p.DNS = []string{"fe80::1%eth0 Domains=x"} }, `"dns=fe80::1%eth0 Domains=x"`},
		{"ntp space", f, func(p *cmdline.Params) { p.NTP = []string{"a b"} }, `"ntp=a b"`},
		{"syslog port", f, func(p *cmdline.Params) { p.Syslog = &cmdline.HostPort{Host: "log", Port: 99999} }, `"syslog=log:99999"`},
		{"adminpw plaintext", f, func(p *cmdline.Params) { p.AdminPW = "hunter2:0:0" }, `"adminpw=<redacted>"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := parseLine(t, "install storage_init=/dev/nvme0n1 BOOTIF=link adminpw="+testHash)
			tt.set(p)
			err := checkConfig(p, tt.facts)
			e := operr.Of(err)
			if e == nil {
				t.Fatalf("checkConfig = %v, want an *operr.Error", err)
			}
			d := operr.Describe(err)
			if !strings.Contains(e.What, tt.token) && !strings.Contains(e.Arg, tt.token) {
				t.Errorf("What %q / Arg %q does not name %s", e.What, e.Arg, tt.token)
			}
			if d.Fix == "" || strings.Contains(d.Message, d.Fix) {
				t.Errorf("fix %q missing or repeated in the message %q", d.Fix, d.Message)
			}
			if strings.Contains(d.Message, "hunter2") || strings.Contains(d.Message, testHash) {
				t.Errorf("the message shows a password: %q", d.Message)
			}
		})
	}
}

// goldenCmdlines are the cmdline package's golden command lines.
func goldenCmdlines(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("../testdata/cmdline/*.txt")
	if err != nil || len(files) < 40 {
		t.Fatalf("golden command lines: %d, %v", len(files), err)
	}
	var out []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSuffix(string(b), "\n"))
	}
	return out
}

// checkAcceptImpliesSeed is issue 12's property on the plan's side: a line the parser
// accepts passes checkConfig on a machine with a link, and then seed-config (the same
// conversion, then nodeconfig.Seed into a directory) accepts it too.
func checkAcceptImpliesSeed(t *testing.T, f *Facts, line string) bool {
	p, err := cmdline.Parse(line)
	if err != nil {
		return false
	}
	if err := checkConfig(p, f); err != nil {
		t.Fatalf("Parse accepted %q but checkConfig refuses it: %v", line, err)
	}
	var nics []nodeconfig.NIC
	for _, n := range f.NICs {
		nics = append(nics, nodeconfig.NIC{Name: n.Name, MAC: n.MAC, Carrier: n.Carrier})
	}
	c, err := nodeconfig.FromParams(p, nics)
	if err == nil {
		err = nodeconfig.Seed(t.TempDir(), c)
	}
	if err != nil {
		t.Fatalf("checkConfig accepted %q but seed-config refuses it: %v", line, err)
	}
	return true
}

// TestCheckConfigGoldenLines runs the property over every golden command line.
func TestCheckConfigGoldenLines(t *testing.T) {
	f := configFacts(t)
	accepted := 0
	for _, line := range goldenCmdlines(t) {
		if checkAcceptImpliesSeed(t, f, line) {
			accepted++
		}
	}
	if accepted < 40 {
		t.Fatalf("only %d golden lines parse; the property was hardly tried", accepted)
	}
}

// FuzzCheckConfigImpliesSeed: any line the parser accepts passes checkConfig and Seed.
func FuzzCheckConfigImpliesSeed(fz *testing.F) {
	f := configFacts(fz)
	for _, line := range goldenCmdlines(fz) {
		fz.Add(line)
	}
	fz.Fuzz(func(t *testing.T, line string) { checkAcceptImpliesSeed(t, f, line) })
}
