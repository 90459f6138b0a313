package nodeconfig

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/nodeconfig/spec"
)

const testHash = "$6$saltsalt$qFmFH.bQmmtXzyBY0s9v7Oicd2z4XSIecDzlB5KiA2/jctKu9YterLp8wwnSq.qc.eoxqOmSuNp2xS0ktL3nh/"

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sampleConfig() Config {
	no := false
	return Config{
		Hostname: "node1.example.com",
		Interfaces: []Interface{
			{MAC: "52:54:00:12:34:56", Address: "192.0.2.10/24", Gateway: "192.0.2.1", VLAN: 100},
			{Name: "eth1", DHCP: true},
		},
		DNS:                   []string{"192.0.2.53", "2001:db8::53"},
		NTP:                   []string{"ntp1.example.com", "192.0.2.123"},
		AdminPasswordHash:     testHash,
		SSHPasswordAuth:       &no,
		ManagementServer:      "engine.example.com:443",
		ManagementFingerprint: "AB:CD",
		Syslog:                "192.0.2.5:514",
	}
}

func TestSeedWritesFiles(t *testing.T) {
	dir := t.TempDir()
	c := sampleConfig()
	if err := Seed(dir, c); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/etc/hostname": "node1.example.com\n",
		"/etc/systemd/network/10-nodeinit-525400123456.network": spec.Header +
			"[Match]\nMACAddress=52:54:00:12:34:56\n\n[Network]\nVLAN=vlan100\nLinkLocalAddressing=no\n",
		"/etc/systemd/network/10-nodeinit-vlan100.netdev": spec.Header +
			"[NetDev]\nName=vlan100\nKind=vlan\n\n[VLAN]\nId=100\n",
		"/etc/systemd/network/10-nodeinit-vlan100.network": spec.Header +
			"[Match]\nName=vlan100\n\n[Network]\nAddress=192.0.2.10/24\nGateway=192.0.2.1\n",
		"/etc/systemd/network/10-nodeinit-eth1.network": spec.Header +
			"[Match]\nName=eth1\n\n[Network]\nDHCP=yes\n",
		ResolvedPath:  spec.Header + "[Resolve]\nDNS=192.0.2.53 2001:db8::53\n",
		TimesyncdPath: spec.Header + "[Time]\nNTP=ntp1.example.com 192.0.2.123\n",
		SSHDPath:      spec.Header + "PasswordAuthentication no\nKbdInteractiveAuthentication no\n",
		ManagementPath: spec.Header + "MANAGEMENT_SERVER=engine.example.com\nMANAGEMENT_PORT=443\n" +
			"MANAGEMENT_FINGERPRINT=AB:CD\n",
		MonitoringPath:       spec.Header + "SYSLOG=192.0.2.5:514\n",
		ShadowDir + "/admin": "admin:" + testHash + ":0:0:99999:7:::\n",
	}
	for p, content := range want {
		if got := readFile(t, filepath.Join(dir, p)); got != content {
			t.Errorf("%s:\n got %q\nwant %q", p, got, content)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, ShadowDir, "admin")); st.Mode().Perm() != 0o600 {
		t.Errorf("shadow fragment mode %v, want 0600", st.Mode().Perm())
	}
	list, err := Persisted(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths := append(c.Paths(), MachineIDPath) // c has no machine ID: Seed made one
	slices.Sort(paths)
	if !slices.Equal(list, paths) || len(list) != len(want)+1 {
		t.Errorf("persisted = %v\nwant %v", list, paths)
	}
	// Seeding again is idempotent.
	if err := Seed(dir, c); err != nil {
		t.Fatal(err)
	}
	if again, _ := Persisted(dir); !slices.Equal(again, list) {
		t.Errorf("second seed changed the list: %v", again)
	}
}

func TestSeedRefusesBadInput(t *testing.T) {
	tests := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Hostname = "bad_host" }, "hostname="},
		{func(c *Config) { c.Interfaces[0].MAC = "zz:zz" }, "BOOTIF="},
		{func(c *Config) { c.Interfaces[0].Address = "192.0.2.10" }, "ip="},
		{func(c *Config) { c.Interfaces[0].DHCP = true }, "either DHCP"},
		{func(c *Config) { c.Interfaces[0].VLAN = 5000 }, "vlan="},
		{func(c *Config) { c.Interfaces[1].VLAN = 100; c.Interfaces[1].Name = "eth1" }, "given twice"},
		{func(c *Config) { c.DNS = []string{"dns.example.com"} }, "dns="},
		{func(c *Config) { c.AdminPasswordHash = "secret-plaintext" }, "adminpw"},
		{func(c *Config) { c.ManagementServer = "engine:99999" }, "management_server="},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		c := sampleConfig()
		tc.mod(&c)
		err := Seed(dir, c)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Seed = %v, want error with %q", err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "secret-plaintext") || strings.Contains(err.Error(), testHash) {
			t.Errorf("error leaks the password: %v", err)
		}
		if des, _ := os.ReadDir(dir); len(des) != 0 {
			t.Errorf("Seed wrote %v despite %v", des, err)
		}
	}
}

func TestApplyShadow(t *testing.T) {
	cfg, root := t.TempDir(), t.TempDir()
	if err := Seed(cfg, Config{AdminPasswordHash: testHash, RootPasswordHash: "abcdefghijklm"}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:1000:1000::/:/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/shadow"), []byte("root:*:19000:0:99999:7:::\nnobody:*:19000::::::\n"), 0o640)
	for i := 0; i < 2; i++ {
		if err := ApplyShadow(cfg, root); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := readFile(t, filepath.Join(root, "etc/shadow")),
		"root:abcdefghijklm:0:0:99999:7:::\nnobody:*:19000::::::\nadmin:"+testHash+":0:0:99999:7:::\n"; got != want {
		t.Errorf("shadow:\n got %q\nwant %q", got, want)
	}
	if got := readFile(t, filepath.Join(root, "etc/passwd")); !strings.HasSuffix(got, "admin:x:1001:1001:Node administrator:/home/admin:/bin/sh\n") {
		t.Errorf("passwd: %q", got)
	}
	if got := readFile(t, filepath.Join(root, "etc/group")); got != "root:x:0:\nadmin:x:1001:\n" {
		t.Errorf("group: %q", got)
	}
	if st, _ := os.Stat(filepath.Join(root, "etc/shadow")); st.Mode().Perm() != 0o640 {
		t.Errorf("shadow mode changed to %v", st.Mode().Perm())
	}
}
