package nodeconfig

import (
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/nodeconfig/spec"
)

// NIC is one network interface of the machine, as the facts list it (see spec.NIC).
type NIC = spec.NIC

// FromParams maps a parsed command line to the node configuration that Seed writes and
// validates it; it is spec.FromParams, kept here for the stages that seed.
func FromParams(p *cmdline.Params, nics []NIC) (Config, error) { return spec.FromParams(p, nics) }

// HostPort renders a host and port as net.SplitHostPort reads them; see spec.HostPort.
func HostPort(h *cmdline.HostPort) string { return spec.HostPort(h) }
