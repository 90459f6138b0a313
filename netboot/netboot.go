// Package netboot brings up the network in the initramfs, for the cases where the install
// needs it: an image fetched over HTTP(S) (nodeinit.image=http…), events posted to
// nodeinit.status_url, or a local_boot_trigger to call when the install is done.
//
// It configures one interface, the one the command line names, the way dracut and oVirt
// Node's PXE configs say it:
//   - BOOTIF=MAC (pxelinux's IPAPPEND 2 form 01-aa-bb-…, or aa:bb:…), BOOTIF=NAME, or
//     BOOTIF=link (the first NIC with carrier, waited for a bounded time); ip=…:IFACE:… and
//     ip=…:MAC also name it; with none of these, the only NIC, else the first with carrier;
//   - vlan=ID[:PARENT] (or NAME:PARENT) puts an 802.1Q link on top of it, configured instead;
//   - ip=dhcp (the default) uses u-root's DHCP client; ip=ADDR:…:GW:MASK, or ip=ADDR with
//     netmask= and gateway=, set a static address; dns= (and dracut's DNS fields) go to
//     /etc/resolv.conf.
//
// The kernel is reached through System (netlink, sysfs and DHCP on Linux, a fake in tests).
// URL templates (${mac}, ${serial}, ${uuid}, ${hostname}, ${ip}, or @MAC@-style; see Expand) in the
// path or query of nodeinit.image, nodeinit.status_url and local_boot_trigger are expanded
// with the values of the interface that came up and of DMI (Prepare), so one PXE config
// serves a fleet. Only an HTTP(S) image makes a network failure fatal.
package netboot

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/cmdline"
)

// Link is one network interface as the kernel reports it.
type Link struct {
	Name    string
	Index   int
	MAC     string // aa:bb:cc:dd:ee:ff, lower case
	Carrier bool
	// Physical is set for interfaces backed by a device (not lo, VLANs, bridges, tunnels).
	Physical bool
}

// Lease is the configuration a DHCP server gave, already applied to the interface.
type Lease struct {
	Address  netip.Prefix
	Gateway  netip.Addr
	DNS      []netip.Addr
	Hostname string
}

// System is the edge to the kernel: netlink, sysfs and the DHCP client.
type System interface {
	// Links lists the network interfaces.
	Links() ([]Link, error)
	// SetUp sets the interface up, with the MTU when it is not 0.
	SetUp(name string, mtu int) error
	// AddVLAN creates the 802.1Q interface name with id on parent (it may exist already).
	AddVLAN(parent, name string, id int) error
	// AddAddress adds addr to the interface.
	AddAddress(name string, addr netip.Prefix) error
	// AddDefaultRoute routes everything not on a local network through gw on the interface.
	AddDefaultRoute(name string, gw netip.Addr) error
	// DHCP obtains a lease on the interface (DHCPv6 when v6) and applies it, DNS included.
	DHCP(ctx context.Context, name string, v6 bool) (Lease, error)
	// WriteResolvConf makes dns the resolver's name servers.
	WriteResolvConf(dns []netip.Addr) error
}

// Options tune Up. The zero value (with System set) gives the defaults.
type Options struct {
	System System
	// LinkTimeout bounds the wait for the named interface to appear (its driver may still
	// be loading); default 20s.
	LinkTimeout time.Duration
	// CarrierTimeout bounds the wait for carrier with BOOTIF=link or without BOOTIF; default 15s.
	CarrierTimeout time.Duration
	// Poll is the interval between looks; default 200ms.
	Poll time.Duration
}

func (o Options) withDefaults() Options {
	if o.LinkTimeout == 0 {
		o.LinkTimeout = 20 * time.Second
	}
	if o.CarrierTimeout == 0 {
		o.CarrierTimeout = 15 * time.Second
	}
	if o.Poll == 0 {
		o.Poll = 200 * time.Millisecond
	}
	return o
}

// Result says what Up configured.
type Result struct {
	Interface string // the configured interface (the VLAN link with vlan=)
	Device    string // the physical NIC under it
	MAC       string
	Method    string // dhcp, dhcp6 or static
	Address   netip.Prefix
	Gateway   netip.Addr
	DNS       []netip.Addr
	Hostname  string // the host name DHCP sent, if any
}

// String is the one-line summary for the console.
func (r *Result) String() string {
	s := fmt.Sprintf("%s (%s) %s %s", r.Interface, r.MAC, r.Method, r.Address)
	if r.Interface != r.Device {
		s += " on " + r.Device
	}
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	if len(r.DNS) > 0 {
		s += " dns " + joinAddrs(r.DNS)
	}
	return s
}

// Vars returns the template values of this interface and machine.
func (r *Result) Vars(p *cmdline.Params, serial, uuid string) Vars {
	v := Vars{MAC: r.MAC, Serial: serial, UUID: uuid, Hostname: Hostname(p)}
	if r.Address.IsValid() {
		v.IP = r.Address.Addr().String()
	}
	if v.Hostname == "" {
		v.Hostname = r.Hostname
	}
	return v
}

// Hostname is the host name the command line gives: hostname=, or ip=…:HOSTNAME:….
func Hostname(p *cmdline.Params) string {
	if p.Hostname != "" {
		return p.Hostname
	}
	if p.IP != nil {
		return p.IP.Hostname
	}
	return ""
}

// Needed reports whether this boot needs the network: the image comes over HTTP(S), or
// events go to a status URL, or a local_boot_trigger is to be called.
func Needed(p *cmdline.Params) bool {
	return IsHTTP(p.Node.Image) || p.Node.StatusURL != "" || p.LocalBootTrigger != ""
}

// Required reports whether a network failure must stop this boot: only an image fetched
// over HTTP(S) cannot do without it; status posts and triggers are best effort.
func Required(p *cmdline.Params) bool { return IsHTTP(p.Node.Image) }

// IsHTTP reports whether an image source is an http(s) URL.
func IsHTTP(spec string) bool {
	return strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://")
}

// ErrNoInterface is wrapped when no interface matches what the command line names.
var ErrNoInterface = errors.New("no network interface")

// Up brings up the interface the command line names and configures it. It changes nothing
// before the interface and its configuration are known to be usable, so a bad ip= or vlan=
// fails before any link is touched.
func Up(ctx context.Context, p *cmdline.Params, o Options) (*Result, error) {
	o = o.withDefaults()
	if o.System == nil {
		return nil, errors.New("netboot: no System")
	}
	cfg, err := addressing(p)
	if err != nil {
		return nil, err
	}
	want := wanted(p)
	dev, err := waitForLink(ctx, o, want)
	if err != nil {
		return nil, err
	}
	mtu := 0
	if p.IP != nil {
		mtu = p.IP.MTU
	}
	if err := o.System.SetUp(dev.Name, mtu); err != nil {
		return nil, fmt.Errorf("bring up %s: %w", dev.Name, err)
	}
	res := &Result{Interface: dev.Name, Device: dev.Name, MAC: dev.MAC, Method: cfg.method}
	if v := p.VLAN; v != nil {
		name := vlanName(dev.Name, v)
		if err := o.System.AddVLAN(dev.Name, name, v.ID); err != nil {
			return nil, fmt.Errorf("vlan=%d on %s: create %s: %w (the initramfs needs the 8021q module)", v.ID, dev.Name, name, err)
		}
		if err := o.System.SetUp(name, mtu); err != nil {
			return nil, fmt.Errorf("bring up %s: %w", name, err)
		}
		res.Interface = name
	}
	switch cfg.method {
	case "static":
		if err := o.System.AddAddress(res.Interface, cfg.addr); err != nil {
			return nil, fmt.Errorf("ip=%s on %s: %w", cfg.addr, res.Interface, err)
		}
		if cfg.gateway.IsValid() {
			if err := o.System.AddDefaultRoute(res.Interface, cfg.gateway); err != nil {
				return nil, fmt.Errorf("gateway %s on %s: %w", cfg.gateway, res.Interface, err)
			}
		}
		res.Address, res.Gateway = cfg.addr, cfg.gateway
	default:
		lease, err := o.System.DHCP(ctx, res.Interface, cfg.method == "dhcp6")
		if err != nil {
			return nil, fmt.Errorf("%s on %s (%s): %w; check that a DHCP server answers on that network, "+
				"or give a static address: ip=ADDR::GATEWAY:NETMASK", cfg.method, res.Interface, dev.MAC, err)
		}
		res.Address, res.Gateway, res.DNS, res.Hostname = lease.Address, lease.Gateway, lease.DNS, lease.Hostname
	}
	if len(cfg.dns) > 0 {
		if err := o.System.WriteResolvConf(cfg.dns); err != nil {
			return nil, fmt.Errorf("dns=%s: %w", joinAddrs(cfg.dns), err)
		}
		res.DNS = cfg.dns
	}
	return res, nil
}

// addressingConfig is how the interface gets its address.
type addressingConfig struct {
	method  string // dhcp, dhcp6, static
	addr    netip.Prefix
	gateway netip.Addr
	dns     []netip.Addr
}

const ipHint = "write ip=dhcp, or a static address: ip=ADDR::GATEWAY:NETMASK (or ip=ADDR netmask=MASK gateway=GW)"

// addressing reads ip=, netmask=, gateway= and dns= into the configuration to apply.
func addressing(p *cmdline.Params) (addressingConfig, error) {
	var c addressingConfig
	for _, d := range p.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return c, fmt.Errorf("dns=%s is not an IP address; write dns=ADDR[,ADDR]", d)
		}
		c.dns = append(c.dns, a)
	}
	ip := p.IP
	if ip == nil || ip.DHCP || (ip.Address == "" && ip.Method == "") {
		c.method = "dhcp"
		return c, nil
	}
	for _, d := range ip.DNS {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return c, fmt.Errorf("ip= DNS server %q is not an IP address; %s", d, ipHint)
		}
		c.dns = append(c.dns, a)
	}
	switch ip.Method {
	case "dhcp6":
		c.method = "dhcp6"
		return c, nil
	case "auto6", "ibft":
		return c, fmt.Errorf("ip=%s is not supported in the initramfs; %s", ip.Method, ipHint)
	}
	if ip.Address == "" {
		return c, fmt.Errorf("ip=%s leaves the interface without an address, but this boot needs the network; %s", ip.Method, ipHint)
	}
	addr, err := netip.ParseAddr(ip.Address)
	if err != nil {
		return c, fmt.Errorf("ip=%s is not an IP address; %s", ip.Address, ipHint)
	}
	bits, err := prefixLen(ip.Netmask, addr)
	if err != nil {
		return c, err
	}
	c.method, c.addr = "static", netip.PrefixFrom(addr, bits)
	if ip.Gateway != "" {
		if c.gateway, err = netip.ParseAddr(ip.Gateway); err != nil {
			return c, fmt.Errorf("gateway=%s is not an IP address; %s", ip.Gateway, ipHint)
		}
		if !c.addr.Masked().Contains(c.gateway) {
			return c, fmt.Errorf("gateway %s is not on the network %s of ip=%s; check netmask= and gateway=", c.gateway, c.addr.Masked(), ip.Address)
		}
	}
	return c, nil
}

// prefixLen reads a netmask written as a prefix length (24) or dotted (255.255.255.0).
func prefixLen(mask string, addr netip.Addr) (int, error) {
	if mask == "" {
		return 0, fmt.Errorf("ip=%s has no netmask; add netmask=255.255.255.0 (or the prefix length, netmask=24)", addr)
	}
	if n, err := strconv.Atoi(mask); err == nil {
		if n < 0 || n > addr.BitLen() {
			return 0, fmt.Errorf("netmask=%s is out of range for %s", mask, addr)
		}
		return n, nil
	}
	m, err := netip.ParseAddr(mask)
	if err != nil || !m.Is4() || !addr.Is4() {
		return 0, fmt.Errorf("netmask=%s is neither a dotted IPv4 mask nor a prefix length", mask)
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	n := 0
	for v&(1<<31) != 0 {
		n++
		v <<= 1
	}
	if v != 0 {
		return 0, fmt.Errorf("netmask=%s has holes", mask)
	}
	return n, nil
}

// want is what the command line says about which NIC to use.
type want struct {
	name  string // an interface name
	mac   string // a MAC
	link  bool   // the first NIC with carrier
	given string // the argument that said so, for messages
}

// wanted reads the interface choice: vlan= parent, then ip= interface or MAC, then BOOTIF.
// Without any of these: the only NIC, else the first with carrier.
func wanted(p *cmdline.Params) want {
	switch {
	case p.VLAN != nil && p.VLAN.Parent != "":
		return want{name: p.VLAN.Parent, given: "vlan=" + strconv.Itoa(p.VLAN.ID) + ":" + p.VLAN.Parent}
	case p.IP != nil && p.IP.Interface != "":
		return want{name: p.IP.Interface, given: "ip=…:" + p.IP.Interface}
	case p.IP != nil && p.IP.MAC != "":
		return want{mac: p.IP.MAC, given: "ip=…:" + p.IP.MAC}
	case p.BootIf != nil && p.BootIf.MAC != "":
		return want{mac: p.BootIf.MAC, given: "BOOTIF=" + p.BootIf.MAC}
	case p.BootIf != nil && p.BootIf.Name != "":
		return want{name: p.BootIf.Name, given: "BOOTIF=" + p.BootIf.Name}
	case p.BootIf != nil && p.BootIf.Link:
		return want{link: true, given: "BOOTIF=link"}
	}
	return want{link: true}
}

// waitForLink polls until the wanted interface exists (and, for link, has carrier), or the
// bounded wait ends with an error listing the interfaces there are.
func waitForLink(ctx context.Context, o Options, w want) (Link, error) {
	deadline := time.Now().Add(o.LinkTimeout)
	var carrierDeadline time.Time
	raised := map[string]bool{}
	for {
		links, err := o.System.Links()
		if err != nil {
			return Link{}, fmt.Errorf("list network interfaces: %w", err)
		}
		phys := physical(links)
		l, found := pick(phys, links, w)
		if found {
			return l, nil
		}
		if w.link && len(phys) > 0 {
			// Carrier shows only once a link is up: raise every candidate, then wait.
			if carrierDeadline.IsZero() {
				carrierDeadline = time.Now().Add(o.CarrierTimeout)
			}
			for _, l := range phys {
				if !raised[l.Name] {
					raised[l.Name] = true
					if err := o.System.SetUp(l.Name, 0); err != nil {
						return Link{}, fmt.Errorf("bring up %s to look for carrier: %w", l.Name, err)
					}
				}
			}
			if time.Now().After(carrierDeadline) {
				return Link{}, fmt.Errorf("%w: no cable: none of %s has carrier after %s; plug in the boot network, "+
					"or name the interface: BOOTIF=<MAC or name>", ErrNoInterface, describe(phys), o.CarrierTimeout)
			}
		} else if time.Now().After(deadline) {
			return Link{}, notFound(w, phys, o.LinkTimeout)
		}
		select {
		case <-ctx.Done():
			return Link{}, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
}

// pick chooses from the current links; found is false while the choice must wait.
func pick(phys, all []Link, w want) (Link, bool) {
	switch {
	case w.mac != "":
		for _, l := range phys {
			if strings.EqualFold(l.MAC, w.mac) {
				return l, true
			}
		}
	case w.name != "":
		for _, l := range all {
			if l.Name == w.name {
				return l, true
			}
		}
	case w.link:
		// Without BOOTIF, a machine with one NIC uses it, carrier or not yet.
		if w.given == "" && len(phys) == 1 {
			return phys[0], true
		}
		for _, l := range phys {
			if l.Carrier {
				return l, true
			}
		}
	}
	return Link{}, false
}

func notFound(w want, phys []Link, waited time.Duration) error {
	have := "this machine has no network interface (is its driver in the initramfs?)"
	if len(phys) > 0 {
		have = "this machine has " + describe(phys)
	}
	if w.given == "" {
		return fmt.Errorf("%w appeared within %s; %s", ErrNoInterface, waited, have)
	}
	return fmt.Errorf("%w matches %s within %s; %s; write BOOTIF=link, or the MAC or name of one of them",
		ErrNoInterface, w.given, waited, have)
}

func physical(links []Link) []Link {
	var out []Link
	for _, l := range links {
		if l.Physical {
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

func describe(links []Link) string {
	parts := make([]string, len(links))
	for i, l := range links {
		parts[i] = fmt.Sprintf("%s (%s)", l.Name, l.MAC)
	}
	return strings.Join(parts, ", ")
}

// vlanName is the VLAN interface's name: vlan=NAME:PARENT's NAME, else PARENT.ID when it
// fits the kernel's 15 characters, else vlanID.
func vlanName(parent string, v *cmdline.VLAN) string {
	if v.Name != "" {
		return v.Name
	}
	if n := parent + "." + strconv.Itoa(v.ID); len(n) <= 15 {
		return n
	}
	return "vlan" + strconv.Itoa(v.ID)
}

func joinAddrs(a []netip.Addr) string {
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = x.String()
	}
	return strings.Join(s, ",")
}
