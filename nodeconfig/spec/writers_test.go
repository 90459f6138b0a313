package spec

import (
	"errors"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
)

// unitFile is a systemd unit-style file read back: section → key → values, in order.
type unitFile map[string]map[string][]string

// parseUnit reads systemd's INI dialect the way systemd does: one assignment a line, '#' and
// ';' lines are comments, [Section] headers; no continuation lines are written, so a trailing
// backslash is an error.
func parseUnit(t *testing.T, name, s string) unitFile {
	t.Helper()
	out := unitFile{}
	section := ""
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			if out[section] != nil {
				t.Errorf("%s: section [%s] twice", name, section)
			}
			out[section] = map[string][]string{}
		case strings.HasSuffix(line, `\`):
			t.Errorf("%s: continuation line %q", name, line)
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Errorf("%s: line %q is not KEY=VALUE in a section", name, line)
				continue
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// parseEnv reads a KEY=VALUE file (management.conf, monitoring.conf), which a shell may
// source: every value must be free of shell syntax.
func parseEnv(t *testing.T, name, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s: line %q is not KEY=VALUE", name, line)
			continue
		}
		if _, dup := out[k]; dup {
			t.Errorf("%s: %s twice", name, k)
		}
		if strings.ContainsFunc(v, func(r rune) bool {
			return !strings.ContainsRune("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.:-[]", r)
		}) {
			t.Errorf("%s: value %q of %s holds characters a shell would interpret", name, v, k)
		}
		out[k] = v
	}
	return out
}

// checkFiles renders c and re-parses every file with its own format's rules, checking that
// each value landed whole in its own key and nothing else appeared.
func checkFiles(t *testing.T, c Config) {
	t.Helper()
	files := c.Files()
	got := map[string]string{}
	for _, f := range files {
		if path.Clean(f.Path) != f.Path || !strings.HasPrefix(f.Path, "/etc/") {
			t.Errorf("file path %q escapes /etc", f.Path)
		}
		got[f.Path] = f.Content
	}
	if c.Hostname != "" {
		if s := got[HostnamePath]; s != c.Hostname+"\n" || strings.Count(s, "\n") != 1 {
			t.Errorf("hostname file %q for %q", s, c.Hostname)
		}
	}
	for _, ifc := range c.Interfaces {
		base := path.Join(NetworkDir, "10-nodeinit-"+ifc.label())
		u := parseUnit(t, base, got[base+".network"])
		match := "Name"
		if ifc.MAC != "" {
			match = "MACAddress"
		}
		if m := u["Match"]; len(m) != 1 || len(m[match]) != 1 || len(strings.Fields(m[match][0])) != 1 || strings.ContainsAny(m[match][0], "*?[") {
			t.Errorf("%s: [Match] %q, want one literal %s", base, m, match)
		}
		net := u["Network"]
		if ifc.VLAN != 0 {
			net = parseUnit(t, "vlan", got[path.Join(NetworkDir, "10-nodeinit-"+ifc.vlanName()+".network")])["Network"]
		}
		want := map[string][]string{}
		if ifc.DHCP {
			want["DHCP"] = []string{"yes"}
		} else {
			want["Address"] = []string{ifc.Address}
		}
		if ifc.Gateway != "" {
			want["Gateway"] = []string{ifc.Gateway}
		}
		if len(net) != len(want) {
			t.Errorf("%s: [Network] %q, want %q", base, net, want)
		}
		for k, v := range want {
			if !slices.Equal(net[k], v) || len(strings.Fields(v[0])) != 1 {
				t.Errorf("%s: %s=%q, want %q as one field", base, k, net[k], v)
			}
		}
	}
	for _, list := range []struct {
		path, section, key string
		want               []string
	}{{ResolvedPath, "Resolve", "DNS", c.DNS}, {TimesyncdPath, "Time", "NTP", c.NTP}} {
		if len(list.want) == 0 {
			continue
		}
		u := parseUnit(t, list.path, got[list.path])
		if len(u) != 1 || len(u[list.section]) != 1 || len(u[list.section][list.key]) != 1 {
			t.Errorf("%s: %q, want only %s=", list.path, u, list.key)
			continue
		}
		if f := strings.Fields(u[list.section][list.key][0]); !slices.Equal(f, list.want) {
			t.Errorf("%s: %s= reads back as %q, want %q", list.path, list.key, f, list.want)
		}
	}
	if c.ManagementServer != "" {
		env := parseEnv(t, ManagementPath, got[ManagementPath])
		host, port, _ := splitHostPort(c.ManagementServer)
		wantPort, hasPort := env["MANAGEMENT_PORT"]
		if env["MANAGEMENT_SERVER"] != host || hasPort != (port != 0) || hasPort && wantPort != strconv.Itoa(port) {
			t.Errorf("management.conf %q for %q", env, c.ManagementServer)
		}
		if env["MANAGEMENT_FINGERPRINT"] != c.ManagementFingerprint {
			t.Errorf("management.conf fingerprint %q, want %q", env["MANAGEMENT_FINGERPRINT"], c.ManagementFingerprint)
		}
	}
	if s, ok := got[MonitoringPath]; ok {
		env := parseEnv(t, MonitoringPath, s)
		for k, v := range map[string]string{"SYSLOG": c.Syslog, "NETCONSOLE": c.Netconsole, "COLLECTD": c.Collectd} {
			if env[k] != v {
				t.Errorf("monitoring.conf %s=%q, want %q", k, env[k], v)
			}
		}
	}
	for user, hash := range map[string]string{AdminUser: c.AdminPasswordHash, "root": c.RootPasswordHash} {
		if hash == "" {
			continue
		}
		s := got[path.Join(ShadowDir, user)]
		f := strings.Split(strings.TrimSuffix(s, "\n"), ":")
		if strings.Count(s, "\n") != 1 || len(f) != 9 || f[0] != user || f[1] != hash {
			t.Errorf("shadow fragment for %s does not hold the hash as its second field", user)
		}
	}
}

// hostile are values that would end a line, split a list, start a pattern or a shell
// expansion, or break a shadow line if they reached a file unchecked.
var hostile = []string{
	"fe80::1%eth0\nDNSStubListener=no", "fe80::1%eth0 192.0.2.66", "fe80::1%x\rY=1", "fe80::1%a*", "fe80::1%\x00",
	"192.0.2.1\n[Network]", "a b", "a\tb", "a\nb", "$(reboot)", "`id`", "a;b", "a#b", "eth*", "eth[0]", "..", "a/../b",
	"host:99999", "[2001:db8::1%eth0]:443", "[::1]:0443", "x\\", "AB:CD\nX=1", "$6$salt$hash:0:0", "$6$salt$ha sh", "\xff",
}

// TestValidateRefusesInjection: each hostile value is refused in every field it could reach,
// with an error that names the argument and the fix (issue 12, item 9).
func TestValidateRefusesInjection(t *testing.T) {
	fields := map[string]func(*Config, string){
		"hostname":    func(c *Config, v string) { c.Hostname = v },
		"BOOTIF name": func(c *Config, v string) { c.Interfaces = []Interface{{Name: v, DHCP: true}} },
		"BOOTIF mac":  func(c *Config, v string) { c.Interfaces = []Interface{{MAC: v, DHCP: true}} },
		"ip":          func(c *Config, v string) { c.Interfaces = []Interface{{Name: "eth0", Address: v}} },
		"gateway":     func(c *Config, v string) { c.Interfaces = []Interface{{Name: "eth0", DHCP: true, Gateway: v}} },
		"dns":         func(c *Config, v string) { c.DNS = []string{"192.0.2.53", v} },
		"ntp":         func(c *Config, v string) { c.NTP = []string{v} },
		"adminpw":     func(c *Config, v string) { c.AdminPasswordHash = v },
		"rootpw":      func(c *Config, v string) { c.RootPasswordHash = v },
		"management":  func(c *Config, v string) { c.ManagementServer = v },
		"fingerprint": func(c *Config, v string) { c.ManagementServer, c.ManagementFingerprint = "engine", v },
		"syslog":      func(c *Config, v string) { c.Syslog = v },
		"netconsole":  func(c *Config, v string) { c.Netconsole = v },
		"collectd":    func(c *Config, v string) { c.Collectd = v },
	}
	for name, set := range fields {
		for _, v := range hostile {
			var c Config
			set(&c, v)
			err := c.Validate()
			if err == nil {
				// A few hostile strings are harmless in some fields (".." is no host name
				// but "a/../b" is no MAC either): what is accepted must still stay in place.
				checkFiles(t, c)
				if strings.ContainsAny(v, " \t\r\n\x00;`$*[#\\") {
					t.Errorf("%s=%q accepted", name, v)
				}
				continue
			}
			var e *cmdline.Error
			if !errors.As(err, &e) || e.Hint == "" {
				t.Errorf("%s=%q: error %v is not a *cmdline.Error with a hint", name, v, err)
			}
			if (name == "adminpw" || name == "rootpw") && len(v) > 4 && strings.Contains(err.Error(), v) {
				t.Errorf("%s: the error shows the value: %v", name, err)
			}
		}
	}
}

// FuzzSeedWriters feeds hostile values to every writer: whatever Validate accepts must
// re-parse, in each file's own format, to the value itself in its own key.
func FuzzSeedWriters(f *testing.F) {
	f.Add("node1.example.com", "eth0", "52:54:00:12:34:56", "192.0.2.10/24", "192.0.2.1", "192.0.2.53", "ntp.example.com",
		"$6$salt$hash", "[2001:db8::1]:443", "AB:CD", 7)
	for _, v := range hostile {
		f.Add(v, v, v, v, v, v, v, v, v, v, 0)
	}
	f.Fuzz(func(t *testing.T, hostname, name, mac, addr, gw, dns, ntp, hash, server, fp string, vlan int) {
		c := Config{
			Hostname:              hostname,
			Interfaces:            []Interface{{Name: name, Address: addr, Gateway: gw, VLAN: vlan}, {MAC: mac, DHCP: true}},
			DNS:                   []string{dns},
			NTP:                   []string{ntp, "192.0.2.123"},
			AdminPasswordHash:     hash,
			ManagementServer:      server,
			ManagementFingerprint: fp,
			Syslog:                server,
			Netconsole:            dns,
			Collectd:              ntp,
		}
		// Validate stops at the first bad value; try the fields one at a time as well, so that
		// one bad field does not hide the others from the writers.
		for _, cfg := range []Config{c,
			{Hostname: hostname}, {Interfaces: c.Interfaces[:1]}, {Interfaces: c.Interfaces[1:]}, {DNS: c.DNS},
			{NTP: c.NTP}, {AdminPasswordHash: hash}, {RootPasswordHash: hash}, {ManagementServer: server, ManagementFingerprint: fp},
			{Syslog: server, Netconsole: dns, Collectd: ntp},
		} {
			if cfg.Validate() == nil {
				checkFiles(t, cfg)
			}
		}
	})
}
