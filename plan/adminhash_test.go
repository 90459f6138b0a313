package plan

import (
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/operr"
)

// TestAdminHashFromBundle: nodeinit.adminpw=bundle is planned for every action that
// seeds the config (install, reinstall, stateless) when the probe read the hash from the
// bundle, and refused, with a fix, when the image carries none. The stateless goldens
// (stateless-adminpw-bundle*) show the same for the whole plan.
func TestAdminHashFromBundle(t *testing.T) {
	with, err := loadFacts("../testdata/facts/admin-hash-image.json")
	if err != nil {
		t.Fatal(err)
	}
	without, err := loadFacts("../testdata/facts/one-nvme.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"stateless nodeinit.adminpw=bundle",
		"install storage_init=serial:S5GXNF0R100001 nodeinit.adminpw=bundle",
		"storage_init=serial:S5GXNF0R100001 BOOTIF=link nodeinit.adminpw=bundle", // oVirt's auto-install
	} {
		p, err := cmdline.Parse(line)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Plan(p, with); err != nil {
			t.Errorf("%q with the hash in the bundle: %v", line, err)
		}
		_, err = Plan(p, without)
		if e := operr.Of(err); e == nil || !strings.Contains(e.What, "nodeinit.adminpw=bundle") || !strings.Contains(e.Fix, "--admin-hash-file") {
			t.Errorf("%q without the hash in the bundle = %v, want a refusal naming nodeinit.adminpw=bundle with a fix", line, err)
		}
	}
}
