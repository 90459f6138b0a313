package rescue

import (
	"context"
	"fmt"
	"time"

	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
)

func init() { register("dhclient", "[-t SECONDS] [-r RETRIES] [IFACE...]", dhcp) }

// dhcp brings up the interfaces (default: every Ethernet one), asks for a DHCPv4 lease on
// each and configures address, routes and /etc/resolv.conf from it. It fails when no
// interface got a lease.
func dhcp(c *call, args []string) error {
	fs := c.flags()
	timeout := fs.Int("t", 15, "seconds to wait for each reply")
	retries := fs.Int("r", 3, "attempts per interface")
	if err := parse(fs, args); err != nil {
		return err
	}
	links, err := dhcpLinks(fs.Args())
	if err != nil {
		return err
	}
	cfg := dhclient.Config{Timeout: time.Duration(*timeout) * time.Second, Retries: *retries}
	leased := 0
	for r := range dhclient.SendRequests(context.Background(), links, true, false, cfg, 30*time.Second) {
		name := r.Interface.Attrs().Name
		err := r.Err
		if err == nil {
			err = r.Lease.Configure()
		}
		if err != nil {
			fmt.Fprintf(c.stderr, "dhclient: %s: %v\n", name, err)
			continue
		}
		leased++
		fmt.Fprintf(c.stdout, "%s: %s\n", name, r.Lease)
	}
	if leased == 0 {
		return fmt.Errorf("no lease on any of %d interfaces", len(links))
	}
	return nil
}

// dhcpLinks are the named links, or every Ethernet link.
func dhcpLinks(names []string) ([]netlink.Link, error) {
	var links []netlink.Link
	for _, n := range names {
		l, err := netlink.LinkByName(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		links = append(links, l)
	}
	if len(names) > 0 {
		return links, nil
	}
	all, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	for _, l := range all {
		if l.Attrs().EncapType == "ether" {
			links = append(links, l)
		}
	}
	if len(links) == 0 {
		return nil, fmt.Errorf("no Ethernet interface (ip link lists them)")
	}
	return links, nil
}
