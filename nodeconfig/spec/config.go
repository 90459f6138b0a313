package spec

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/nodeinit/nodeinit/cmdline"
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
	// AdminSSHKey is one OpenSSH public key line ("ssh-ed25519 AAAA… user@host") that may
	// log in as the admin user. No kernel argument carries one: the installer screen
	// does (stages.Job.SSHKey).
	AdminSSHKey string
	// MachineID is the node's systemd machine ID (machine-id(5)), written as
	// /etc/machine-id. It never comes from the command line: nodeconfig.Seed
	// creates it when the config has none, so it is made once per install.
	MachineID string
}

// Rendered file paths in the node's root, and the admin user's name.
const (
	HostnamePath   = "/etc/hostname"
	MachineIDPath  = "/etc/machine-id"
	NetworkDir     = "/etc/systemd/network"
	ResolvedPath   = "/etc/systemd/resolved.conf.d/10-nodeinit.conf"
	TimesyncdPath  = "/etc/systemd/timesyncd.conf.d/10-nodeinit.conf"
	SSHDPath       = "/etc/ssh/sshd_config.d/10-nodeinit.conf"
	ManagementPath = "/etc/nodeinit/management.conf"
	MonitoringPath = "/etc/nodeinit/monitoring.conf"
	ShadowDir      = "/etc/nodeinit/shadow.d"
	// AuthorizedKeysDir holds one authorized_keys file per user, named after the
	// user; the sshd drop-in (SSHDPath) adds it to AuthorizedKeysFile. It is root's,
	// as sshd's StrictModes wants, whatever uid the admin user gets at boot.
	AuthorizedKeysDir = "/etc/nodeinit/ssh"
	AdminUser         = "admin"
)

// Header is the first line of every rendered file that has comments.
const Header = "# Written by nodeinit from the kernel command line.\n"

const maxHostnameSize = 253

// The grammar's patterns compile on first use, as internal/lazyre's do
// elsewhere (this package imports only cmdline and operr: TestImportsNoIO): a
// plain boot validates no config, and package-level regexps cost /init's
// start under emulation.
var (
	hostnameLabel = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`) })
	ifName        = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]{1,15}$`) })
	cryptID       = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^\$[0-9a-z]+(\$[./0-9A-Za-z=,]*)+\$[./0-9A-Za-z=,]+$`)
	})
	cryptDES    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[./0-9A-Za-z]{13}$`) })
	fingerprint = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*$`) })
)

// Validate checks the whole configuration against the grammar of every file it is written
// into, so that no value can end its line or key early, add a key, or be read as a pattern:
// host names are RFC 1123, addresses carry no zone except an interface name in DNS and NTP
// servers (netip.ParseAddr takes any bytes after '%'), interface names have no glob
// characters, hashes are crypt(3) text. Errors are *cmdline.Error values that name the
// command-line argument and the fix, and never contain a password hash. The one value
// that no argument gives, MachineID, is checked too (ValidMachineID): a bad one is a
// plain error.
func (c Config) Validate() error {
	if c.MachineID != "" && !ValidMachineID(c.MachineID) {
		return fmt.Errorf("machine ID %q is not 32 lower-case hexadecimal digits, not all zero (machine-id(5))", c.MachineID)
	}
	if c.Hostname != "" && !validHostname(c.Hostname) {
		return argError("hostname", c.Hostname, "write hostname=NAME with letters, digits, '-' and '.', e.g. hostname=node1.example.com",
			"not an RFC 1123 host name (labels of letters, digits and '-', up to 63 each, %d in all)", maxHostnameSize)
	}
	vlanNames := map[string]bool{}
	for _, ifc := range c.Interfaces {
		if err := ifc.validate(); err != nil {
			return err
		}
		if ifc.VLAN != 0 {
			n := ifc.vlanName()
			if vlanNames[n] {
				return argError("vlan", strconv.Itoa(ifc.VLAN), "give each VLAN once", "VLAN %d is given twice", ifc.VLAN)
			}
			vlanNames[n] = true
		}
	}
	for _, d := range c.DNS {
		if _, err := parseAddr(d, true); err != nil {
			return argError("dns", d, "write dns=ADDRESS[,ADDRESS...], e.g. dns=192.0.2.53,2001:db8::53", "%v", err)
		}
	}
	for _, n := range c.NTP {
		if _, err := parseAddr(n, true); err != nil && !validHostname(n) {
			return argError("ntp", n, "write ntp=SERVER[,SERVER...] with addresses or host names, e.g. ntp=0.pool.ntp.org",
				"not an IP address or a host name")
		}
	}
	for _, h := range []struct{ key, hash string }{{"adminpw", c.AdminPasswordHash}, {"rootpw", c.RootPasswordHash}} {
		if h.hash != "" && !isCryptHash(h.hash) {
			return &cmdline.Error{Token: h.key + "=" + cmdline.Redacted, Key: h.key, Problem: "not a crypt(3) hash (value not shown)",
				Hint: "generate a hash with `openssl passwd -6` and pass the $6$... result"}
		}
	}
	for _, hp := range []struct{ key, val string }{
		{"management_server", c.ManagementServer}, {"syslog", c.Syslog},
		{"netconsole", c.Netconsole}, {"collectd", c.Collectd},
	} {
		if hp.val != "" {
			if _, _, err := splitHostPort(hp.val); err != nil {
				return argError(hp.key, hp.val, "write "+hp.key+"=HOST[:PORT], an IPv6 address in brackets before a port: [2001:db8::1]:514", "%v", err)
			}
		}
	}
	if c.AdminSSHKey != "" && !ValidSSHKey(c.AdminSSHKey) {
		return fmt.Errorf("the admin SSH key is not one OpenSSH public key line (TYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAA… admin@example.com)")
	}
	if c.ManagementFingerprint != "" && !fingerprint().MatchString(c.ManagementFingerprint) {
		return argError("management_server_fingerprint", c.ManagementFingerprint,
			"write the engine CA fingerprint as hex pairs separated by ':', e.g. 33:2B:79:...:8A", "not hex pairs separated by ':'")
	}
	return nil
}

// ValidSSHKey reports whether k is one OpenSSH public key line: a key type, the base64
// key blob (which starts with that type's name) and an optional comment, on one line.
func ValidSSHKey(k string) bool {
	if strings.ContainsAny(k, "\r\n\x00") {
		return false
	}
	f := strings.Fields(k)
	if len(f) < 2 {
		return false
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil || len(blob) < 4 {
		return false
	}
	n := binary.BigEndian.Uint32(blob)
	return int64(n) <= int64(len(blob)-4) && string(blob[4:4+n]) == f[0]
}

// ValidMachineID reports whether id is a machine ID as machine-id(5) defines it: 32
// lower-case hexadecimal digits (128 bits), not all zero.
func ValidMachineID(id string) bool {
	if len(id) != 32 || strings.Trim(id, "0") == "" {
		return false
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return false
		}
	}
	return true
}

// validHostname checks an RFC 1123 host name (one trailing dot allowed).
func validHostname(h string) bool {
	if h == "" || len(h) > maxHostnameSize {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostnameLabel().MatchString(l) {
			return false
		}
	}
	return true
}

// parseAddr reads an IP address; a zone is allowed only where zoneOK and only as an interface name.
func parseAddr(s string, zoneOK bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return a, fmt.Errorf("not an IP address")
	}
	if z := a.Zone(); z != "" && (!zoneOK || !ifName().MatchString(z)) {
		if !zoneOK {
			return a, fmt.Errorf("an address here cannot carry a zone")
		}
		return a, fmt.Errorf("the zone is not an interface name")
	}
	return a, nil
}

// isCryptHash accepts $id$… forms and the 13-character DES form, in crypt(3)'s alphabet
// (never ':' or white space, which would split a shadow(5) line).
func isCryptHash(h string) bool {
	return cryptID().MatchString(h) || cryptDES().MatchString(h)
}

// splitHostPort accepts host, host:port, [v6] and [v6]:port, where host is an RFC 1123 host
// name or an IP address without a zone.
func splitHostPort(s string) (host string, port int, err error) {
	host = s
	if h, p, ok := cutPort(s); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return "", 0, fmt.Errorf("port %q is not 1..65535", p)
		}
		host, port = h, n
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	}
	if _, err := parseAddr(host, false); err != nil && !validHostname(host) {
		return "", 0, fmt.Errorf("%q is not a host name or an IP address without a zone", host)
	}
	return host, port, nil
}

func (i Interface) validate() error {
	switch {
	case i.MAC == "" && i.Name == "":
		return argError("BOOTIF", "", "add BOOTIF=<MAC> or BOOTIF=<interface>", "no MAC or interface name says which interface to configure")
	case i.MAC != "":
		if _, ok := parseMAC(i.MAC); !ok {
			return argError("BOOTIF", i.MAC, "write BOOTIF=52:54:00:12:34:56 or BOOTIF=01-52-54-00-12-34-56", "not a MAC address")
		}
	case !ifName().MatchString(i.Name) || i.Name == "." || i.Name == "..":
		return argError("BOOTIF", i.Name, "write BOOTIF=<interface> with letters, digits, '-', '_' and '.', up to 15", "not an interface name")
	}
	if i.DHCP == (i.Address != "") {
		return argError("ip", i.Address, "write ip=dhcp, or ip=ADDR with netmask= for a static address",
			"give either DHCP or a static address (ip=ADDR netmask=MASK), not both or neither")
	}
	if i.Address != "" {
		if _, err := netip.ParsePrefix(i.Address); err != nil {
			return argError("ip", i.Address, "write ip=ADDR with netmask=MASK, or ip=ADDR/PREFIX, e.g. ip=192.0.2.10/24",
				"not an address with a prefix length (e.g. 192.0.2.10/24)")
		}
	}
	if i.Gateway != "" {
		if _, err := parseAddr(i.Gateway, false); err != nil {
			return argError("gateway", i.Gateway, "write gateway=ADDRESS, e.g. gateway=192.0.2.1", "%v", err)
		}
	}
	if i.VLAN < 0 || i.VLAN > 4094 {
		return argError("vlan", strconv.Itoa(i.VLAN), "write vlan=ID with ID from 1 to 4094", "VLAN ID %d is outside 1..4094", i.VLAN)
	}
	return nil
}

// argError is the error for one configuration value: it names the kernel argument it came
// from and how to fix it. value is shown as written; pass "" for a secret.
func argError(key, value, hint, format string, args ...any) error {
	tok := key
	if value != "" {
		tok = key + "=" + value
	}
	return &cmdline.Error{Token: tok, Key: key, Problem: fmt.Sprintf(format, args...), Hint: hint}
}
