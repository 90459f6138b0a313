package netboot

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nodeinit/nodeinit/kmod"
	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// HostSystem is the machine's own network stack: netlink for links, addresses and routes,
// sysfs to tell NICs from virtual links, and u-root's DHCP client.
func HostSystem() System { return hostSystem{sysClassNet: "/sys/class/net"} }

type hostSystem struct {
	sysClassNet string
}

func (h hostSystem) Links() ([]Link, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	out := make([]Link, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		_, err := os.Stat(filepath.Join(h.sysClassNet, a.Name, "device"))
		out = append(out, Link{
			Name: a.Name, Index: a.Index, MAC: strings.ToLower(a.HardwareAddr.String()),
			Carrier:  a.RawFlags&unix.IFF_LOWER_UP != 0,
			Physical: err == nil && a.Flags&net.FlagLoopback == 0,
		})
	}
	return out, nil
}

func (hostSystem) SetUp(name string, mtu int) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if mtu > 0 && l.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(l, mtu); err != nil {
			return fmt.Errorf("set MTU %d: %w", mtu, err)
		}
	}
	if err := netlink.LinkSetUp(l); err != nil {
		return err
	}
	// The loopback interface is needed by anything that talks to itself; raise it too.
	if lo, err := netlink.LinkByName("lo"); err == nil {
		netlink.LinkSetUp(lo)
	}
	return nil
}

func (hostSystem) AddVLAN(parent, name string, id int) error {
	p, err := netlink.LinkByName(parent)
	if err != nil {
		return err
	}
	if l, err := netlink.LinkByName(name); err == nil {
		if v, ok := l.(*netlink.Vlan); ok && v.VlanId == id && v.ParentIndex == p.Attrs().Index {
			return nil
		}
		return fmt.Errorf("interface %s exists and is not VLAN %d on %s", name, id, parent)
	}
	kmod.Load("8021q") // not loaded at boot; without it LinkAdd fails and the caller names the module
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.ParentIndex = name, p.Attrs().Index
	return netlink.LinkAdd(&netlink.Vlan{LinkAttrs: attrs, VlanId: id, VlanProtocol: netlink.VLAN_PROTOCOL_8021Q})
}

func (hostSystem) AddAddress(name string, addr netip.Prefix) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	ipnet := &net.IPNet{IP: addr.Addr().AsSlice(), Mask: net.CIDRMask(addr.Bits(), addr.Addr().BitLen())}
	return netlink.AddrReplace(l, &netlink.Addr{IPNet: ipnet})
}

func (hostSystem) AddDefaultRoute(name string, gw netip.Addr) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	return netlink.RouteReplace(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw.AsSlice()})
}

// DHCP runs u-root's client: up to 4 attempts of 5 s each, then applies the lease
// (address, routes, and /etc/resolv.conf).
func (hostSystem) DHCP(ctx context.Context, name string, v6 bool) (Lease, error) {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return Lease{}, err
	}
	cfg := dhclient.Config{Timeout: 5 * time.Second, Retries: 3}
	var last error = errors.New("no answer")
	for r := range dhclient.SendRequests(ctx, []netlink.Link{l}, !v6, v6, cfg, 30*time.Second) {
		if r.Err != nil {
			last = r.Err
			continue
		}
		if err := r.Lease.Configure(); err != nil {
			return Lease{}, fmt.Errorf("apply lease: %w", err)
		}
		return leaseOf(r.Lease), nil
	}
	return Lease{}, last
}

// leaseOf reads what our Result reports from u-root's lease.
func leaseOf(l dhclient.Lease) Lease {
	var out Lease
	m4, _ := l.Message()
	if m4 == nil {
		return out
	}
	if a, ok := netip.AddrFromSlice(m4.YourIPAddr.To4()); ok {
		bits := 32
		if mask := m4.SubnetMask(); mask != nil {
			bits, _ = mask.Size()
		}
		out.Address = netip.PrefixFrom(a, bits)
	}
	if r := m4.Router(); len(r) > 0 {
		out.Gateway, _ = netip.AddrFromSlice(r[0].To4())
	}
	for _, d := range m4.DNS() {
		if a, ok := netip.AddrFromSlice(d.To4()); ok {
			out.DNS = append(out.DNS, a)
		}
	}
	out.Hostname = m4.HostName()
	return out
}

func (hostSystem) WriteResolvConf(dns []netip.Addr) error {
	ips := make([]net.IP, len(dns))
	for i, a := range dns {
		ips[i] = a.AsSlice()
	}
	return dhclient.WriteDNSSettings(ips, nil, "", dhclient.ResolvConfPath)
}
