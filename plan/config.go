package plan

import (
	"errors"
	"fmt"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/nodeconfig/spec"
	"github.com/nodeinit/nodeinit/operr"
)

// checkAdminHash refuses nodeinit.adminpw=bundle when the image carries no admin password
// hash: the node would come up without the admin password the operator asked for. A hash
// file that does not match the signed manifest never gets here; the probe makes the image
// unusable then (ImageFacts.Error).
func checkAdminHash(p *cmdline.Params, f *Facts) error {
	if p.Node.AdminPWFrom != cmdline.AdminPWBundle || f.Image != nil && f.Image.AdminHash {
		return nil
	}
	source := "the image"
	if f.Image != nil {
		source = "image " + f.Image.Source
	}
	return &operr.Error{
		What: fmt.Sprintf("nodeinit.adminpw=bundle: %s carries no admin password hash", source),
		Why:  "its manifest lists no adminpw.hash",
		Fix: "rebuild the bundle with `nodeinit image build --admin-hash-file FILE` and sign it, or drop nodeinit.adminpw=bundle " +
			"and pass adminpw=HASH (on a stateless line every process on the node can read it in /proc/cmdline)",
	}
}

// checkConfig runs the one validation of the node configuration (spec.FromParams, which
// seed-config runs again before it writes) against the machine's interfaces, so that a
// value seed-config would refuse is refused here, before any disk is written. The refusal
// is an *operr.Error whose What names the kernel argument as written (secrets redacted)
// and whose Fix says how to write it. Arg stays empty: the fix is a corrected value, which
// only the operator knows.
func checkConfig(p *cmdline.Params, f *Facts) error {
	nics := make([]spec.NIC, 0, len(f.NICs))
	for _, n := range f.NICs {
		nics = append(nics, spec.NIC{Name: n.Name, MAC: n.MAC, Carrier: n.Carrier})
	}
	if _, err := spec.FromParams(p, nics); err != nil {
		var e *cmdline.Error
		if errors.As(err, &e) {
			// Not Err: e's own text repeats the fix, which the failure screen shows on its own line.
			return &operr.Error{What: fmt.Sprintf("kernel argument %q", e.Token), Why: e.Problem, Fix: e.Hint}
		}
		return &operr.Error{What: "node configuration from the kernel command line", Err: err,
			Fix: "correct the network, host name, password and management arguments"}
	}
	return nil
}
