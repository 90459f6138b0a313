//go:build !linux

package netboot

import (
	"context"
	"errors"
	"net/netip"
)

// HostSystem is the machine's network stack; only Linux has one here.
func HostSystem() System { return unsupported{} }

var errUnsupported = errors.New("netboot: bringing up the network needs Linux")

type unsupported struct{}

func (unsupported) Links() ([]Link, error)                { return nil, errUnsupported }
func (unsupported) SetUp(string, int) error               { return errUnsupported }
func (unsupported) AddVLAN(string, string, int) error     { return errUnsupported }
func (unsupported) AddAddress(string, netip.Prefix) error { return errUnsupported }
func (unsupported) AddDefaultRoute(string, netip.Addr) error {
	return errUnsupported
}
func (unsupported) DHCP(context.Context, string, bool) (Lease, error) { return Lease{}, errUnsupported }
func (unsupported) WriteResolvConf([]netip.Addr) error                { return errUnsupported }
