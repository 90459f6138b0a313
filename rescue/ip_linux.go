package rescue

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
)

func init() {
	register("ip", "addr [show [DEV]] | addr add|del CIDR dev DEV | link [show [DEV]] | link set DEV up|down | "+
		"route [show] | route add|del default|CIDR [via GW] [dev DEV]", ip)
}

// ipRequest is a parsed ip command line.
type ipRequest struct {
	object, verb string // addr, link or route; show, add, del or set
	dev          string
	up           bool          // link set
	addr         *netlink.Addr // addr add, del
	dst          *net.IPNet    // route add, del; nil is the default route
	gw           net.IP
}

// ipObjects maps what an operator types to the object: ip a, ip addr, ip r, …
var ipObjects = map[string]string{"a": "addr", "addr": "addr", "address": "addr", "l": "link", "link": "link",
	"r": "route", "ro": "route", "route": "route"}

func parseIP(args []string) (ipRequest, error) {
	var q ipRequest
	if len(args) == 0 {
		return q, usageError("missing OBJECT")
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		return q, flag.ErrHelp
	}
	q.object, q.verb = ipObjects[args[0]], "show"
	if q.object == "" {
		return q, usagef("unknown object %q", args[0])
	}
	if args = args[1:]; len(args) > 0 {
		q.verb, args = args[0], args[1:]
	}
	switch q.verb {
	case "list", "ls", "s":
		q.verb = "show"
	case "delete":
		q.verb = "del"
	}
	// Operands are KEYWORD VALUE pairs (dev eth0, via 10.0.0.1) and bare words.
	kv, words := map[string]string{}, []string(nil)
	for i := 0; i < len(args); i++ {
		if k := args[i]; (k == "dev" || k == "via") && i+1 < len(args) {
			kv[k], i = args[i+1], i+1
		} else {
			words = append(words, k)
		}
	}
	q.dev = kv["dev"]
	var err error
	switch q.object + " " + q.verb {
	case "addr show", "link show":
		if len(words) == 1 && q.dev == "" {
			q.dev, words = words[0], nil
		}
	case "route show":
	case "link set":
		if q.dev == "" && len(words) > 0 {
			q.dev, words = words[0], words[1:]
		}
		if q.dev == "" || len(words) != 1 || words[0] != "up" && words[0] != "down" {
			return q, usageError("want: ip link set DEV up|down")
		}
		q.up, words = words[0] == "up", nil
	case "addr add", "addr del":
		if len(words) != 1 || q.dev == "" {
			return q, usageError("want: ip addr add|del CIDR dev DEV")
		}
		if q.addr, err = netlink.ParseAddr(words[0]); err != nil {
			return q, usagef("bad CIDR %q: %v", words[0], err)
		}
		words = nil
	case "route add", "route del":
		if len(words) != 1 || kv["via"] == "" && q.dev == "" {
			return q, usageError("want: ip route add|del default|CIDR [via GW] [dev DEV]")
		}
		if words[0] != "default" {
			if _, q.dst, err = net.ParseCIDR(words[0]); err != nil {
				return q, usagef("bad destination %q: %v", words[0], err)
			}
		}
		if v := kv["via"]; v != "" {
			if q.gw = net.ParseIP(v); q.gw == nil {
				return q, usagef("bad gateway %q", v)
			}
		}
		words = nil
	default:
		return q, usagef("ip %s %s is not supported", q.object, q.verb)
	}
	if len(words) > 0 {
		return q, usagef("unexpected %q", words[0])
	}
	return q, nil
}

func ip(c *call, args []string) error {
	q, err := parseIP(args)
	if err != nil {
		return err
	}
	var link netlink.Link
	if q.dev != "" {
		if link, err = netlink.LinkByName(q.dev); err != nil {
			return fmt.Errorf("%s: %w", q.dev, err)
		}
	}
	switch q.object + " " + q.verb {
	case "addr show", "link show":
		return showLinks(c.stdout, link, q.object == "addr")
	case "route show":
		return showRoutes(c.stdout)
	case "link set":
		if q.up {
			return netlink.LinkSetUp(link)
		}
		return netlink.LinkSetDown(link)
	case "addr add":
		return netlink.AddrAdd(link, q.addr)
	case "addr del":
		return netlink.AddrDel(link, q.addr)
	}
	r := &netlink.Route{Dst: q.dst, Gw: q.gw}
	if link != nil {
		r.LinkIndex = link.Attrs().Index
	}
	if q.verb == "add" {
		return netlink.RouteAdd(r)
	}
	return netlink.RouteDel(r)
}

// showLinks prints one link, or all when link is nil, with their addresses when addrs.
func showLinks(w io.Writer, link netlink.Link, addrs bool) error {
	links := []netlink.Link{link}
	if link == nil {
		var err error
		if links, err = netlink.LinkList(); err != nil {
			return err
		}
	}
	for _, l := range links {
		a := l.Attrs()
		flags := strings.ToUpper(strings.ReplaceAll(a.Flags.String(), "|", ","))
		fmt.Fprintf(w, "%d: %s: <%s> mtu %d state %s\n    link/%s %s\n", a.Index, a.Name, flags, a.MTU,
			strings.ToUpper(a.OperState.String()), a.EncapType, cmp.Or(a.HardwareAddr.String(), "00:00:00:00:00:00"))
		if !addrs {
			continue
		}
		list, err := netlink.AddrList(l, netlink.FAMILY_ALL)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Name, err)
		}
		for _, ad := range list {
			family := "inet"
			if ad.IP.To4() == nil {
				family = "inet6"
			}
			fmt.Fprintf(w, "    %s %s\n", family, ad.IPNet)
		}
	}
	return nil
}

// showRoutes prints the IPv4 and IPv6 routes of the main table.
func showRoutes(w io.Writer) error {
	names := map[int]string{}
	links, err := netlink.LinkList()
	if err != nil {
		return err
	}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	routes, err := netlink.RouteList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return err
	}
	for _, r := range routes {
		line := "default" // netlink gives 0.0.0.0/0 or nil
		if r.Dst != nil {
			if ones, _ := r.Dst.Mask.Size(); ones > 0 {
				line = r.Dst.String()
			}
		}
		if r.Gw != nil {
			line += " via " + r.Gw.String()
		}
		if name := names[r.LinkIndex]; name != "" {
			line += " dev " + name
		}
		if r.Src != nil {
			line += " src " + r.Src.String()
		}
		fmt.Fprintln(w, line)
	}
	return nil
}
