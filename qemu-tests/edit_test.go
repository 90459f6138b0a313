package qemutests

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// editedBundle edits the fixtures' 1.0 bundle with `nodeinit image edit`'s
// package: a .deb built here (no maintainer scripts: the test OS has no
// shell), a directory plugin, and a new /etc/node-release so that the TESTOS
// line names the edited version. It is signed with the fixtures' key, which
// the initramfs trusts.
func editedBundle(t *testing.T, base, key string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("image edit needs root")
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("pkg/DEBIAN/control", "Package: node-agent\nVersion: 3.1\nArchitecture: amd64\nMaintainer: Test <t@example.com>\nDescription: agent\n")
	write("pkg/usr/share/node-agent/agent.txt", "agent from the package\n")
	deb := filepath.Join(dir, "node-agent_3.1_amd64.deb")
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "--build", filepath.Join(dir, "pkg"), deb)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH=1700000000")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
	write("plugin/plugin.json", `{"name": "vdsm-lite", "version": "1.0", "files": [{"src": "vdsm.conf", "dest": "/etc/vdsm/vdsm.conf", "mode": "0600"}]}`)
	write("plugin/vdsm.conf", "engine=engine.example\n")
	release := write("node-release", "NAME=demo-node\nVERSION=1.0+edit.1\n")
	out := filepath.Join(dir, "bundle")
	m, err := image.EditBundle(context.Background(), image.EditOptions{
		Bundle: base, Out: out, Key: key, Debs: []string{deb},
		Plugins: []string{filepath.Join(dir, "plugin")},
		Adds:    []string{release + ":/etc/node-release"},
	})
	if err != nil {
		t.Fatalf("image edit: %v", err)
	}
	if m.Version != "1.0+edit.1" {
		t.Fatalf("edited version %q, want 1.0+edit.1", m.Version)
	}
	return out
}

// TestUpgradeToEditedImage installs the original 1.0 bundle, then the running
// node runs `nodeinit upgrade --image label:NODEEDIT` to the bundle that
// `nodeinit image edit` made from it. The node boots the edited image from
// slot b, and the plugin's file and the package's file are there.
func TestUpgradeToEditedImage(t *testing.T) {
	f := fixtures(t)
	edited := editedBundle(t, f.Bundles["1.0"], f.PrivKey)
	upd := bundleDisk(t, edited, "NODEEDIT")
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "EDITED01"},
		vm.Disk{Path: upd, Interface: vm.Virtio, Serial: "UPDATE02"})
	acts := "testos.action=show:/etc/vdsm/vdsm.conf,show:/usr/share/node-agent/agent.txt," +
		"run:/usr/sbin/nodeinit:upgrade:--image:label%3ANODEEDIT,poweroff"
	v := n.installer("1.0", "install storage_init=serial:EDITED01 hostname=edit1 "+acts)
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)

	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=edit1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/vdsm/vdsm.conf missing`, 30*time.Second)
	v.Expect(`TESTOS-SHOW /usr/share/node-agent/agent.txt missing`, 30*time.Second)
	if bp := v.ExpectPlan(time.Minute); bp.Action != "boot" || bp.Slot != "a" {
		t.Errorf("the boot's plan is %s of slot %q, want a boot of slot a", bp.Action, bp.Slot)
	}
	p := v.ExpectPlan(2 * time.Minute)
	if p.Action != "upgrade" || p.Slot != "b" || p.Image == nil || p.Image.Version != "1.0+edit.1" {
		t.Errorf("the online upgrade plans %s of %+v into slot %q; want 1.0+edit.1 into slot b", p.Action, p.Image, p.Slot)
	}
	v.ExpectEvent("the upgrade's last step", vm.StageDone("report"), 2*time.Minute)
	waitExit(t, v)
	if ledger := espFile(t, n.disks[0].Path, "/ledger.json"); !strings.Contains(ledger, `"version": "1.0+edit.1"`) {
		t.Errorf("ledger does not hold 1.0+edit.1:\n%s", ledger)
	}

	v = n.powerOn()
	v.Expect(`TESTOS version=1\.0\+edit\.1 build=1\.0 slot=b hostname=edit1`, 3*time.Minute)
	v.Expect(`TESTOS-SHOW /etc/vdsm/vdsm.conf "engine=engine\.example\\n"`, 30*time.Second)
	v.Expect(`TESTOS-SHOW /usr/share/node-agent/agent.txt "agent from the package\\n"`, 30*time.Second)
	waitExit(t, v)
}
