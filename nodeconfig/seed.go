package nodeconfig

import (
	"fmt"
	"net"
	"net/netip"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Interface is one network interface to configure with systemd-networkd.
type Interface struct {
	MAC     string // match by MAC (BOOTIF); either MAC or Name
	Name    string // match by kernel name, e.g. eth0
	DHCP    bool
	Address string // CIDR, e.g. 192.0.2.10/24; static when DHCP is false
	Gateway string
	VLAN    int // 802.1Q id, 1..4094; 0 for none
}

// Config is the node configuration given on the kernel command line.
type Config struct {
	Hostname              string
	Interfaces            []Interface
	DNS                   []string // addresses
	NTP                   []string // host names or addresses
	AdminPasswordHash     string   // crypt(3) hash; secret
	RootPasswordHash      string   // crypt(3) hash; secret
	SSHPasswordAuth       *bool
	ManagementServer      string // host[:port]
	ManagementFingerprint string
	Syslog                string // host[:port]
	Netconsole            string // host[:port]
	Collectd              string // host[:port]
}

// Seeded file paths in the node's root.
const (
	HostnamePath    = "/etc/hostname"
	NetworkDir      = "/etc/systemd/network"
	ResolvedPath    = "/etc/systemd/resolved.conf.d/10-nodeinit.conf"
	TimesyncdPath   = "/etc/systemd/timesyncd.conf.d/10-nodeinit.conf"
	SSHDPath        = "/etc/ssh/sshd_config.d/10-nodeinit.conf"
	ManagementPath  = "/etc/nodeinit/management.conf"
	MonitoringPath  = "/etc/nodeinit/monitoring.conf"
	ShadowDir       = "/etc/nodeinit/shadow.d"
	AdminUser       = "admin"
	seedHeader      = "# Written by nodeinit from the kernel command line.\n"
	maxHostnameSize = 253
)

var hostnameLabel = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// Validate checks the whole configuration. Errors name the command line
// argument and never contain a password hash.
func (c Config) Validate() error {
	if c.Hostname != "" {
		if len(c.Hostname) > maxHostnameSize {
			return fmt.Errorf("hostname=%s: longer than %d characters", c.Hostname, maxHostnameSize)
		}
		for _, l := range strings.Split(strings.TrimSuffix(c.Hostname, "."), ".") {
			if !hostnameLabel.MatchString(l) {
				return fmt.Errorf("hostname=%s: %q is not a valid label (letters, digits, '-', up to 63 each)", c.Hostname, l)
			}
		}
	}
	vlanNames := map[string]bool{}
	for i, ifc := range c.Interfaces {
		if err := ifc.validate(); err != nil {
			return fmt.Errorf("interface %d (%s): %w", i+1, ifc.label(), err)
		}
		if ifc.VLAN != 0 {
			n := ifc.vlanName()
			if vlanNames[n] {
				return fmt.Errorf("vlan=%d: given twice", ifc.VLAN)
			}
			vlanNames[n] = true
		}
	}
	for _, d := range c.DNS {
		if _, err := netip.ParseAddr(d); err != nil {
			return fmt.Errorf("dns=%s: not an IP address (hint: dns=192.0.2.53,192.0.2.54)", d)
		}
	}
	for _, n := range c.NTP {
		if n == "" || strings.ContainsAny(n, " \t\r\n,") {
			return fmt.Errorf("ntp=%q: not a host name or address", n)
		}
	}
	for _, h := range []struct{ key, hash string }{{"adminpw", c.AdminPasswordHash}, {"rootpw", c.RootPasswordHash}} {
		if h.hash != "" && !isCryptHash(h.hash) {
			return fmt.Errorf("%s: not a crypt(3) hash (hint: openssl passwd -6 and pass the $6$… result)", h.key)
		}
	}
	for _, hp := range []struct{ key, val string }{
		{"management_server", c.ManagementServer}, {"syslog", c.Syslog},
		{"netconsole", c.Netconsole}, {"collectd", c.Collectd},
	} {
		if hp.val != "" {
			if _, _, err := splitHostPort(hp.val); err != nil {
				return fmt.Errorf("%s=%s: %w", hp.key, hp.val, err)
			}
		}
	}
	if strings.ContainsAny(c.ManagementFingerprint, " \t\r\n") {
		return fmt.Errorf("management_server_fingerprint: must not contain white space")
	}
	return nil
}

// isCryptHash accepts $id$… forms and the 13-character DES form.
func isCryptHash(h string) bool {
	if strings.ContainsAny(h, ": \t\r\n") {
		return false
	}
	if strings.HasPrefix(h, "$") {
		return strings.Count(h, "$") >= 3
	}
	return len(h) == 13 && regexp.MustCompile(`^[./0-9A-Za-z]{13}$`).MatchString(h)
}

// splitHostPort accepts host, host:port, [v6] and [v6]:port.
func splitHostPort(s string) (host string, port int, err error) {
	if h, p, e := net.SplitHostPort(s); e == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "", 0, fmt.Errorf("port %q is not 1..65535", p)
		}
		return h, n, nil
	}
	host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if host == "" || strings.ContainsAny(host, " \t\r\n/") || (strings.Contains(host, ":") && net.ParseIP(host) == nil) {
		return "", 0, fmt.Errorf("not host or host:port")
	}
	return host, 0, nil
}

func (i Interface) validate() error {
	switch {
	case i.MAC == "" && i.Name == "":
		return fmt.Errorf("needs a MAC (BOOTIF=) or an interface name")
	case i.MAC != "":
		if _, err := net.ParseMAC(i.MAC); err != nil {
			return fmt.Errorf("BOOTIF=%s: not a MAC address", i.MAC)
		}
	case !regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`).MatchString(i.Name):
		return fmt.Errorf("interface name %q is not a valid name", i.Name)
	}
	if i.DHCP == (i.Address != "") {
		return fmt.Errorf("give either DHCP or a static address (ip=ADDR netmask=MASK), not both or neither")
	}
	if i.Address != "" {
		if _, err := netip.ParsePrefix(i.Address); err != nil {
			return fmt.Errorf("ip=%s: not an address with prefix length, e.g. 192.0.2.10/24", i.Address)
		}
	}
	if i.Gateway != "" {
		if _, err := netip.ParseAddr(i.Gateway); err != nil {
			return fmt.Errorf("gateway=%s: not an IP address", i.Gateway)
		}
	}
	if i.VLAN < 0 || i.VLAN > 4094 {
		return fmt.Errorf("vlan=%d: must be 1..4094", i.VLAN)
	}
	return nil
}

// label names the interface in file names: its name, or its MAC without colons.
func (i Interface) label() string {
	if i.MAC != "" {
		hw, err := net.ParseMAC(i.MAC)
		if err == nil {
			return strings.ReplaceAll(hw.String(), ":", "")
		}
		return i.MAC
	}
	return i.Name
}

func (i Interface) vlanName() string { return "vlan" + strconv.Itoa(i.VLAN) }

func (i Interface) matchSection() string {
	if i.MAC != "" {
		hw, _ := net.ParseMAC(i.MAC)
		return "[Match]\nMACAddress=" + hw.String() + "\n"
	}
	return "[Match]\nName=" + i.Name + "\n"
}

func (i Interface) addressing() string {
	var b strings.Builder
	if i.DHCP {
		b.WriteString("DHCP=yes\n")
	} else {
		b.WriteString("Address=" + i.Address + "\n")
	}
	if i.Gateway != "" {
		b.WriteString("Gateway=" + i.Gateway + "\n")
	}
	return b.String()
}

// files renders the configuration: root path → content and mode.
func (c Config) files() ([]seedFile, error) {
	var out []seedFile
	add := func(p, content string, mode uint32) {
		out = append(out, seedFile{path: p, content: content, mode: mode})
	}
	if c.Hostname != "" {
		add(HostnamePath, c.Hostname+"\n", 0o644)
	}
	for _, ifc := range c.Interfaces {
		base := path.Join(NetworkDir, "10-nodeinit-"+ifc.label())
		if ifc.VLAN == 0 {
			add(base+".network", seedHeader+ifc.matchSection()+"\n[Network]\n"+ifc.addressing(), 0o644)
			continue
		}
		v := ifc.vlanName()
		add(base+".network", seedHeader+ifc.matchSection()+"\n[Network]\nVLAN="+v+"\nLinkLocalAddressing=no\n", 0o644)
		add(path.Join(NetworkDir, "10-nodeinit-"+v+".netdev"),
			seedHeader+"[NetDev]\nName="+v+"\nKind=vlan\n\n[VLAN]\nId="+strconv.Itoa(ifc.VLAN)+"\n", 0o644)
		add(path.Join(NetworkDir, "10-nodeinit-"+v+".network"),
			seedHeader+"[Match]\nName="+v+"\n\n[Network]\n"+ifc.addressing(), 0o644)
	}
	if len(c.DNS) > 0 {
		add(ResolvedPath, seedHeader+"[Resolve]\nDNS="+strings.Join(c.DNS, " ")+"\n", 0o644)
	}
	if len(c.NTP) > 0 {
		add(TimesyncdPath, seedHeader+"[Time]\nNTP="+strings.Join(c.NTP, " ")+"\n", 0o644)
	}
	if c.SSHPasswordAuth != nil {
		v := "no"
		if *c.SSHPasswordAuth {
			v = "yes"
		}
		add(SSHDPath, seedHeader+"PasswordAuthentication "+v+"\nKbdInteractiveAuthentication "+v+"\n", 0o644)
	}
	if c.ManagementServer != "" {
		host, port, _ := splitHostPort(c.ManagementServer)
		s := seedHeader + "MANAGEMENT_SERVER=" + host + "\n"
		if port != 0 {
			s += "MANAGEMENT_PORT=" + strconv.Itoa(port) + "\n"
		}
		if c.ManagementFingerprint != "" {
			s += "MANAGEMENT_FINGERPRINT=" + c.ManagementFingerprint + "\n"
		}
		add(ManagementPath, s, 0o644)
	}
	if c.Syslog != "" || c.Netconsole != "" || c.Collectd != "" {
		s := seedHeader
		for _, kv := range [][2]string{{"SYSLOG", c.Syslog}, {"NETCONSOLE", c.Netconsole}, {"COLLECTD", c.Collectd}} {
			if kv[1] != "" {
				s += kv[0] + "=" + kv[1] + "\n"
			}
		}
		add(MonitoringPath, s, 0o644)
	}
	// lastchg 0: the user must change the password at first login.
	if c.AdminPasswordHash != "" {
		add(path.Join(ShadowDir, AdminUser), AdminUser+":"+c.AdminPasswordHash+":0:0:99999:7:::\n", 0o600)
	}
	if c.RootPasswordHash != "" {
		add(path.Join(ShadowDir, "root"), "root:"+c.RootPasswordHash+":0:0:99999:7:::\n", 0o600)
	}
	return out, nil
}

type seedFile struct {
	path    string
	content string
	mode    uint32
}

// Paths lists the root paths Seed writes for c, in order.
func (c Config) Paths() []string {
	files, _ := c.files()
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.path
	}
	return out
}

// Seed validates c and writes its files into the config directory (each at
// its path in the node's root, see Paths), then records every file in the
// persisted list. Nothing is written when c is invalid. Password hashes go
// only into 0600 shadow fragments and never into an error.
func Seed(configDir string, c Config) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("seed config: %w", err)
	}
	files, err := c.files()
	if err != nil {
		return fmt.Errorf("seed config: %w", err)
	}
	var written []string
	for _, f := range files {
		if err := writeFileAtomic(filepath.Join(configDir, f.path), []byte(f.content), osMode(f.mode)); err != nil {
			return fmt.Errorf("seed config: write %s: %w", f.path, err)
		}
		written = append(written, f.path)
	}
	if err := addPersisted(configDir, written...); err != nil {
		return fmt.Errorf("seed config: %w", err)
	}
	return nil
}
