package spec

import (
	"net/netip"
	"strconv"

	"github.com/nodeinit/nodeinit/cmdline"
)

// NIC is one network interface of the machine, as the facts list it.
type NIC struct {
	Name    string // kernel name, e.g. eth0
	MAC     string // aa:bb:cc:dd:ee:ff
	Carrier bool   // the link is up
}

// FromParams maps a parsed command line to the node configuration that seed-config writes,
// and validates it with Config.Validate, so the planner can call it before anything is written
// and refuse the line then. nics are the machine's interfaces: BOOTIF=link names the first of
// them with a carrier. It does no I/O.
//
// Every line cmdline.Parse accepts gives a Config that Validate accepts (fuzzed by
// FuzzAcceptImpliesValid); the only error left is BOOTIF=link on a machine whose interfaces
// all lack a link. Errors are *cmdline.Error values naming the argument and the fix.
func FromParams(p *cmdline.Params, nics []NIC) (Config, error) {
	c := Config{
		Hostname:              p.Hostname,
		DNS:                   p.DNS,
		NTP:                   p.NTP,
		AdminPasswordHash:     p.AdminPW.Reveal(),
		RootPasswordHash:      p.RootPW.Reveal(),
		SSHPasswordAuth:       p.SSHPwAuth,
		ManagementFingerprint: p.ManagementServerFingerprint,
		ManagementServer:      HostPort(p.ManagementServer),
		Syslog:                HostPort(p.Syslog),
		Netconsole:            HostPort(p.Netconsole),
		Collectd:              HostPort(p.Collectd),
	}
	ifc, ok, err := interfaceFromParams(p, nics)
	if err != nil {
		return Config{}, err
	}
	if ok {
		c.Interfaces = append(c.Interfaces, ifc)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// interfaceFromParams is the one interface BOOTIF=, ip= and vlan= configure, if any.
func interfaceFromParams(p *cmdline.Params, nics []NIC) (Interface, bool, error) {
	if p.BootIf == nil && p.IP == nil {
		return Interface{}, false, nil
	}
	static := p.IP != nil && !p.IP.DHCP && p.IP.Address != ""
	if p.IP != nil && !static && p.IP.Address == "" && (p.IP.Method == "none" || p.IP.Method == "off") {
		return Interface{}, false, nil // ip=off: the operator asked for no configuration
	}
	ifc := Interface{DHCP: true}
	if b := p.BootIf; b != nil {
		ifc.MAC, ifc.Name = b.MAC, b.Name
		if b.Link {
			for _, n := range nics {
				if n.Carrier && n.MAC != "" {
					ifc.MAC = n.MAC
					break
				}
			}
			if ifc.MAC == "" {
				// No NIC has a link now: the node is installed without an interface
				// file, as oVirt Node did; the plan warns about it.
				return Interface{}, false, nil
			}
		}
	}
	if ifc.MAC == "" && ifc.Name == "" && p.IP != nil {
		ifc.Name = p.IP.Interface
	}
	if ifc.MAC == "" && ifc.Name == "" {
		return Interface{}, false, nil // nothing names the interface
	}
	if static {
		ifc.DHCP = false
		ifc.Address = p.IP.Address + "/" + strconv.Itoa(prefixLen(p.IP.Netmask))
		ifc.Gateway = p.IP.Gateway
	}
	if p.VLAN != nil {
		ifc.VLAN = p.VLAN.ID
	}
	return ifc, true, nil
}

// prefixLen is the prefix length of a netmask written as a length (24) or a dotted IPv4
// mask (255.255.255.0); -1 when it is neither, which Validate then refuses.
func prefixLen(mask string) int {
	if n, err := strconv.Atoi(mask); err == nil {
		return n
	}
	a, err := netip.ParseAddr(mask)
	if err != nil || !a.Is4() {
		return -1
	}
	return maskBits(a.As4())
}

// HostPort renders a host and port as HOST, HOST:PORT or, for an IPv6 address with a port,
// [ADDRESS]:PORT, the form net.SplitHostPort and the node's services read. "" for nil.
func HostPort(h *cmdline.HostPort) string {
	if h == nil {
		return ""
	}
	if h.Port == 0 {
		return h.Host
	}
	return joinHostPort(h.Host, strconv.Itoa(h.Port))
}
