package netboot

import (
	"context"
	"fmt"

	"github.com/nodeinit/nodeinit/cmdline"
)

// PrepareOptions are Up's options plus where DMI is read.
type PrepareOptions struct {
	Options
	// Root is "/" on a machine; DMI is read below it.
	Root string
}

// Prepare is what /init runs before probing: when this boot needs the network (Needed), it
// brings it up and expands the URL templates of p with the boot interface's MAC, the
// machine's DMI serial and UUID, and its host name. It returns what came up (nil when
// nothing was needed) and warnings for what this boot does without: when only a status
// URL or a local_boot_trigger needed the network and it failed, those are dropped from p
// so nothing waits on them. An image over HTTP(S) without a network is an error.
func Prepare(ctx context.Context, p *cmdline.Params, o PrepareOptions) (*Result, []string, error) {
	if !Needed(p) {
		return nil, nil, nil
	}
	if o.Root == "" {
		o.Root = "/"
	}
	res, err := Up(ctx, p, o.Options)
	if err != nil {
		if Required(p) {
			return nil, nil, fmt.Errorf("network for nodeinit.image=%s: %w", p.Node.Image, err)
		}
		warn := fmt.Sprintf("network: %v; going on without nodeinit.status_url and local_boot_trigger", err)
		p.Node.StatusURL, p.LocalBootTrigger = "", ""
		return nil, []string{warn}, nil
	}
	serial, uuid := ReadDMI(o.Root)
	if err := ExpandParams(p, res.Vars(p, serial, uuid)); err != nil {
		return res, nil, err
	}
	return res, nil, nil
}
