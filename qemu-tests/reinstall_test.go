package qemutests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/plan"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// brokenBundle copies the signed bundle of version and breaks the copy with
// breakIt; the manifest and its signature stay as they were.
func brokenBundle(t *testing.T, n *node, version string, breakIt func(dir string) error) string {
	t.Helper()
	src := n.f.Bundles[version]
	dst := filepath.Join(t.TempDir(), "bundle")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range des {
		b, err := os.ReadFile(filepath.Join(src, d.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, d.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := breakIt(dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestReinstallFromABrokenSourceKeepsTheOldNode installs 1.0, then reinstalls
// 2.0 over HTTP from two broken copies of its signed bundle: one whose rootfs
// is cut in half (a truncated medium), one whose server answers 404 for the
// boot loader. Each reinstall fails with an error naming the file, and after
// each the machine, powered on, boots the old 1.0 node with its own hostname.
func TestReinstallFromABrokenSourceKeepsTheOldNode(t *testing.T) {
	longTest(t)
	n := newNode(t, vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "BROKEN01"})
	v := n.installer("1.0", "install storage_init=serial:BROKEN01 hostname=old-node testos.action=poweroff")
	expectStages(v, 4*time.Minute, plan.StageWriteSlot, plan.StageAddBootEntry, plan.StageReport)
	waitExit(t, v)

	cases := []struct {
		name      string
		breakIt   func(dir string) error
		failStage string
		mentions  string
	}{
		{"truncated-rootfs", func(dir string) error {
			p := filepath.Join(dir, image.RootfsName)
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()/2)
		}, plan.StageWriteSlot, image.RootfsName},
		{"loader-404", func(dir string) error {
			return os.Remove(filepath.Join(dir, image.LoaderName))
		}, plan.StageFetch, image.LoaderName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := serveBundle(t, brokenBundle(t, n, "2.0", c.breakIt), pxeMAC)
			line := fmt.Sprintf("reinstall storage_init=serial:BROKEN01 hostname=new-node nodeinit.onfail=poweroff nodeinit.image=http://10.0.2.2:%d/nodes/%s/bundle/ BOOTIF=01-%s",
				srv.port, pxeMAC, strings.ReplaceAll(pxeMAC, ":", "-"))
			v := installerOnNet(n, "1.0", line, pxeMAC)
			ev := v.ExpectEvent(c.failStage+" failed", vm.StageIs(c.failStage, stages.EventFailed), 6*time.Minute)
			if !strings.Contains(ev.Error, c.mentions) {
				t.Errorf("the %s failure does not name %s: %q", c.failStage, c.mentions, ev.Error)
			}
			t.Logf("refused: %s (fix: %s)", ev.Error, ev.Hint)
			waitExit(t, v)

			v = n.powerOn()
			v.Expect(`TESTOS version=1\.0 build=1\.0 slot=a hostname=old-node `, 3*time.Minute)
			waitExit(t, v)
		})
	}
}
