package qemutests

import (
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/internal/testloop"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// TestInstallOverTwoDisks is oVirt's HostVG list, storage_init=DISK,DISK: the first disk
// gets the node, the second becomes app-data disk 1 (64 MiB of swap2, the rest ext4) and the
// node finds it at /data/app1. A file written there survives a boot without the disk (the
// boot goes on and says the disk is missing) and is back when the disk is.
func TestInstallOverTwoDisks(t *testing.T) {
	longTest(t)
	app := vm.NewDisk(t, "app.img", 2<<30)
	node := vm.Disk{Path: vm.NewDisk(t, "nvme.img", 16<<30), Interface: vm.NVMe, Serial: "HOSTVG01"}
	appDisk := vm.Disk{Path: app, Interface: vm.Virtio, Serial: "HOSTVG02"}
	n := newNode(t, node, appDisk)
	v := n.installer("1.0", "install storage_init=serial:HOSTVG01,serial:HOSTVG02 storage_vol=::::::64 "+
		"testos.action=show:/data/app1/keep,put:/data/app1/keep:yes,poweroff")
	p := v.ExpectPlan(3 * time.Minute)
	if p.TargetPath() != "/dev/nvme0n1" {
		t.Errorf("the install disk is %q, not /dev/nvme0n1", p.TargetPath())
	}
	part := v.ExpectEvent("app-data disk 1", vm.InfoHas("partition", "app-data disk 1 on /dev/vda: node-app1 PARTUUID "), 3*time.Minute)
	partUUID := part.Message[strings.LastIndex(part.Message, " ")+1:]
	v.ExpectEvent("its filesystem", vm.InfoHas("filesystems", "ext4 on /dev/vda2 (node-app1)"), time.Minute)
	v.ExpectEvent("install finished", vm.Finished, 3*time.Minute)
	waitExit(t, v)
	checkInstalledDisk(t, node.Path)
	checkAppDisk(t, app, partUUID)

	v = n.powerOn()
	v.ExpectEvent("the mount", vm.InfoHas("", "app-data disk 1: /dev/vda2 (node-app1) mounted on /data/app1"), 3*time.Minute)
	v.Expect(`TESTOS version=1\.0 .*mounts=[^\n]*/data/app1:ext4`, 2*time.Minute)
	v.Expect(`TESTOS-SHOW /data/app1/keep missing`, time.Minute)
	waitExit(t, v)

	n.disks = []vm.Disk{node} // the app-data disk is taken out
	v = n.powerOn()
	v.ExpectEvent("the missing disk", vm.InfoHas("", "app-data disk 1 is missing"), 3*time.Minute)
	v.Expect(`TESTOS version=1\.0 `, 2*time.Minute)
	v.Expect(`TESTOS-SHOW /data/app1/keep missing`, time.Minute)
	waitExit(t, v)

	n.disks = []vm.Disk{node, appDisk}
	v = n.powerOn()
	v.Expect(`TESTOS-SHOW /data/app1/keep "yes\\n"`, 3*time.Minute)
	waitExit(t, v)
}

// checkAppDisk checks an app-data disk image with the standard tools: a valid GPT holding
// node-swap2 and node-app1 (whose PARTUUID the install reported), swap and a clean ext4
// labelled node-app1.
func checkAppDisk(t *testing.T, img, partUUID string) {
	t.Helper()
	out, err := exec.Command("sgdisk", "-v", img).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No problems found") {
		t.Errorf("sgdisk -v %s: %v\n%s", img, err, out)
	}
	want := map[string]string{"1": "node-swap2", "2": "node-app1"}
	for part, name := range want {
		info, err := exec.Command("sgdisk", "-i", part, img).CombinedOutput()
		if err != nil || !strings.Contains(string(info), "Partition name: '"+name+"'") {
			t.Fatalf("sgdisk -i %s: partition %s is not %s: %v\n%s", part, part, name, err, info)
		}
		if part == "2" && !strings.Contains(strings.ToLower(string(info)), "partition unique guid: "+strings.ToLower(partUUID)) {
			t.Errorf("node-app1's PARTUUID is not the %s the install reported:\n%s", partUUID, info)
		}
		m := regexp.MustCompile(`First sector: (\d+).*\nLast sector: (\d+)`).FindStringSubmatch(string(info))
		var first, last int64
		fmt.Sscan(m[1], &first)
		fmt.Sscan(m[2], &last)
		l := testloop.Attach(t, img, "-r", "-o", fmt.Sprint(first*512), "--sizelimit", fmt.Sprint((last-first+1)*512))
		blk, _ := exec.Command("blkid", "-p", "-o", "export", l.Dev).CombinedOutput()
		fsck := []byte("not run")
		var ferr error
		if part == "2" {
			fsck, ferr = exec.Command("e2fsck", "-fn", l.Dev).CombinedOutput()
		}
		if err := l.Detach(); err != nil {
			t.Error(err)
		}
		fstype := map[string]string{"1": "swap", "2": "ext4"}[part]
		if !strings.Contains(string(blk), "TYPE="+fstype) || !strings.Contains(string(blk), "LABEL="+name) {
			t.Errorf("partition %s: blkid finds no %s labelled %s:\n%s", part, fstype, name, blk)
		}
		if ferr != nil {
			t.Errorf("e2fsck -fn node-app1: %v\n%s", ferr, fsck)
		}
	}
}
