package stages

import (
	"testing"

	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/nodeconfig"
	"github.com/nodeinit/nodeinit/plan"
)

// TestJobSeedsSSHKey: the job's SSH key is part of the config seed-config writes, next to
// what the command line gives.
func TestJobSeedsSSHKey(t *testing.T) {
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@example.com"
	p, err := cmdline.Parse("install hostname=n1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := (&Job{Params: p, Facts: &plan.Facts{}, SSHKey: key}).nodeConfig()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range c.Files() {
		found = found || f.Path == nodeconfig.AuthorizedKeysDir+"/"+nodeconfig.AdminUser && f.Content == key+"\n"
	}
	if c.Hostname != "n1" || !found {
		t.Errorf("config %+v does not seed the key for %s", c, nodeconfig.AdminUser)
	}
}
