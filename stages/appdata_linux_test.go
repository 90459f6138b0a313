package stages

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nodeinit/nodeinit/internal/testcmd"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/cmdline"
	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/internal/testloop"
	"github.com/nodeinit/nodeinit/plan"
	"golang.org/x/sys/unix"
)

// TestAppDataDiskOnALoopDevice plans `install storage_init=<install disk>,<loop>`
// with a Swap2 size, where the loop device holds foreign ext4 and the line gives
// consent to erase it, and runs the plan's steps for the loop device (wipe,
// partition, filesystems) through linuxdev. sgdisk, blkid and e2fsck then judge
// the GPT names, the labels and the ext4; the PARTUUID that add-boot-entry
// writes into the ledger is the one sgdisk reads; and the boot's mountAppData mounts that
// partition, found by PARTUUID among freshly discovered facts, on
// /data/app1, while reporting a recorded disk that is not there. Last, a
// reinstall keeping data writes the table again in place and makes only the
// swap: the file written on node-app1 is still there under the new PARTUUID.
func TestAppDataDiskOnALoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices")
	}
	for _, tool := range []string{"losetup", "partx", "sgdisk", "blkid", "e2fsck", "mke2fs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	for _, ss := range []int{512, 4096} {
		t.Run(fmt.Sprintf("sector-%d", ss), func(t *testing.T) { appDataOnLoop(t, ss) })
	}
}

func appDataOnLoop(t *testing.T, ss int) {
	const size = 1200 << 20
	img := filepath.Join(t.TempDir(), "app.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-L", "precious", img).CombinedOutput(); err != nil {
		t.Fatalf("mke2fs: %v\n%s", err, out)
	}
	lo := testloop.Attach(t, img, "--sector-size", strconv.Itoa(ss))
	name := filepath.Base(lo.Dev)
	discover := func() []disk.Disk {
		t.Helper()
		ds, err := diskio.Discover(diskio.Root{Dir: "/", Only: []string{name}})
		if err != nil || len(ds) != 1 {
			t.Fatalf("discover %s: %v %+v", name, err, ds)
		}
		return ds
	}
	disks := discover()
	if disks[0].Content != disk.ContentForeign {
		t.Fatalf("the loop device is %s, want foreign (ext4 'precious')", disks[0].Content)
	}
	// The install disk is only planned for; none of its steps runs.
	install := disk.Disk{Name: "vdz", Path: "/dev/vdz", SizeBytes: 16 << 30, LogicalSectorSize: 512, Transport: "virtio", Content: disk.ContentBlank}
	f := &plan.Facts{Disks: append([]disk.Disk{install}, disks...),
		Image: &plan.ImageFacts{Source: "/srv/bundle", Name: "node", Version: "1.0", Signed: true, RootSize: 1 << 20}}
	p, err := cmdline.Parse("install storage_init=/dev/vdz," + lo.Dev + " storage_vol=::::::64 nodeinit.wipe=" + lo.Dev)
	if err != nil {
		t.Fatal(err)
	}
	bp, err := plan.Plan(p, f)
	if err != nil {
		t.Fatal(err)
	}
	var infos []string
	r := &Reporter{stage: "test", now: time.Now, sink: SinkFunc(func(e Event) {
		if e.Kind == EventInfo {
			infos = append(infos, e.Message)
		}
	})}
	j := &Job{Params: p, Facts: f, Plan: bp, Dev: &linuxdev.Machine{}, DevDir: "/dev", RunDir: t.TempDir()}
	defer j.Close()
	var ran []string
	for _, s := range bp.Steps {
		if s.Input.Target() != name {
			continue
		}
		if err := j.RunStep(context.Background(), s, r); err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		ran = append(ran, s.Name)
	}
	if strings.Join(ran, ",") != "wipe,partition,filesystems" {
		t.Fatalf("steps run on the loop device: %v", ran)
	}
	exec.Command("blockdev", "--flushbufs", lo.Dev).Run()

	if out := run(t, "sgdisk", "-v", lo.Dev); !strings.Contains(out, "No problems found") {
		t.Errorf("sgdisk -v:\n%s", out)
	}
	recs, err := j.appDataRecords()
	if err != nil || len(recs) != 1 {
		t.Fatalf("records for the ledger: %+v, %v", recs, err)
	}
	rec := recs[0]
	// add-boot-entry writes them into the new ledger (the ESP is a directory here).
	esp := t.TempDir()
	j.Mounted = map[string]string{disk.LabelESP: esp}
	j.Bundle = &image.Bundle{Manifest: &image.Manifest{Name: "node", Version: "1.0"}}
	for _, s := range bp.Steps {
		if s.Name == plan.StageAddBootEntry {
			if err := j.RunStep(context.Background(), s, r); err != nil {
				t.Fatal(err)
			}
		}
	}
	l, err := boot.ReadLedger(boot.DirFS(esp))
	if err != nil || len(l.AppData) != 1 || l.AppData[0] != rec || rec.Index != 1 || rec.Disk != lo.Dev {
		t.Fatalf("ledger app data %+v (%v), want %+v on %s", l.AppData, err, rec, lo.Dev)
	}
	for _, c := range []struct {
		num                         int
		name, typeGUID, uuid, fs, l string
	}{
		{1, disk.LabelSwap2, disk.TypeSwap, rec.SwapPartUUID, "swap", disk.LabelSwap2},
		{2, "node-app1", disk.TypeLinuxData, rec.DataPartUUID, "ext4", "node-app1"},
	} {
		info := strings.ToLower(run(t, "sgdisk", "-i", strconv.Itoa(c.num), lo.Dev))
		for _, want := range []string{"partition name: '" + c.name + "'", "partition guid code: " + c.typeGUID, "partition unique guid: " + c.uuid} {
			if c.uuid == "" || !strings.Contains(info, want) {
				t.Errorf("partition %d: sgdisk -i lacks %q:\n%s", c.num, want, info)
			}
		}
		part := disk.PartitionPath(lo.Dev, c.num)
		kv := blkid(t, part)
		if kv["TYPE"] != c.fs || kv["LABEL"] != c.l || !strings.EqualFold(kv["PART_ENTRY_UUID"], c.uuid) {
			t.Errorf("blkid %s: %v, want TYPE=%s LABEL=%s PART_ENTRY_UUID=%s", part, kv, c.fs, c.l, c.uuid)
		}
	}
	if out, err := exec.Command("e2fsck", "-fn", disk.PartitionPath(lo.Dev, 2)).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn: %v\n%s", err, out)
	}
	if kv := blkid(t, disk.PartitionPath(lo.Dev, 2)); kv["LABEL"] == "precious" {
		t.Error("the old filesystem survived")
	}
	if s, _ := bp.LayoutOf(name).Find(disk.LabelSwap2); s.Size != 64*disk.MiB {
		t.Errorf("swap2 %d MiB, want 64", s.Size/disk.MiB)
	}

	// The boot: facts as the next boot's probe finds them, the ledger's refs.
	j.Facts = &plan.Facts{Disks: discover()}
	if got := j.Facts.Disks[0].Content; got != disk.ContentAppData {
		t.Errorf("the written disk classifies as %s, want app-data", got)
	}
	j.NewRoot = t.TempDir()
	dir := filepath.Join(j.NewRoot, "/data/app1")
	t.Cleanup(func() { unix.Unmount(dir, 0) })
	infos = nil
	j.mountAppData([]plan.AppDataRef{{Index: 1, DataPartUUID: rec.DataPartUUID, SwapPartUUID: rec.SwapPartUUID},
		{Index: 2, DataPartUUID: "0c0ffee0-0000-4000-8000-0000000000aa"}}, r)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Type != unix.EXT4_SUPER_MAGIC {
		t.Errorf("%s is not an ext4 mount: %v (type %x)", dir, err, st.Type)
	}
	want := []string{
		fmt.Sprintf("app-data disk 1: %s (node-app1) mounted on /data/app1; swap %s (node-swap2) for the node OS", disk.PartitionPath(lo.Dev, 2), disk.PartitionPath(lo.Dev, 1)),
		"app-data disk 2 is missing: no partition has PARTUUID 0c0ffee0-0000-4000-8000-0000000000aa (node-app2); /data/app2 is not mounted, the boot goes on",
	}
	if strings.Join(infos, "\n") != strings.Join(want, "\n") {
		t.Errorf("boot events:\n%s\nwant:\n%s", strings.Join(infos, "\n"), strings.Join(want, "\n"))
	}

	// A reinstall keeping data: the table written again over this one, no
	// wipe, node-app1 kept with its files, node-swap2 made anew.
	if err := os.WriteFile(filepath.Join(dir, "vm.img"), []byte("kept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	kept := bp.AppData[0]
	kept.Keep = "node-app1"
	j.Plan = &plan.Blueprint{AppData: []plan.AppDataDisk{kept}}
	j.appData = nil
	for _, in := range []plan.Input{plan.Partition{Disk: name}, plan.Filesystems{Disk: name, Keep: "node-app1"}} {
		if err := j.RunStep(context.Background(), plan.Step{Name: in.Stage(), Input: in}, r); err != nil {
			t.Fatalf("keep: %s: %v", in.Stage(), err)
		}
	}
	again, err := j.appDataRecords()
	if err != nil || again[0].DataPartUUID == rec.DataPartUUID {
		t.Fatalf("keep: records %+v (%v): want a new PARTUUID for the new table", again, err)
	}
	if out, err := exec.Command("e2fsck", "-fn", disk.PartitionPath(lo.Dev, 2)).CombinedOutput(); err != nil {
		t.Errorf("keep: e2fsck -fn: %v\n%s", err, out)
	}
	j.Facts = &plan.Facts{Disks: discover()}
	infos = nil
	j.mountAppData([]plan.AppDataRef{{Index: 1, DataPartUUID: again[0].DataPartUUID}}, r)
	if b, err := os.ReadFile(filepath.Join(dir, "vm.img")); err != nil || string(b) != "kept\n" {
		t.Errorf("keep: the file on node-app1: %q, %v (events %q)", b, err, infos)
	}
}

// blkid is blkid -p's export of the device, or an empty map.
func blkid(t *testing.T, dev string) map[string]string {
	t.Helper()
	out, _ := exec.Command("blkid", "-p", "-o", "export", dev).Output()
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

// run is testcmd.Run.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testcmd.Run(t, name, args...)
}

// failingMounts records mounts through the device edge and fails those of fail.
type failingMounts struct {
	newFilesystems
	fail string
}

func (m *failingMounts) Mount(source, target, fstype string, flags uintptr, data string) error {
	if source == m.fail {
		return unix.EIO
	}
	return m.newFilesystems.Mount(source, target, fstype, flags, data)
}

// TestMountAppDataOnlyByPartUUID: the boot mounts an app-data partition only
// when its PARTUUID is the ledger's and its name is node-app<N>: another
// machine's disk with the same names is never mounted, and a missing disk, a
// renamed partition or a failed mount is reported while the boot goes on.
func TestMountAppDataOnlyByPartUUID(t *testing.T) {
	part := func(name, label, uuid string) disk.Partition {
		return disk.Partition{Name: name, Path: "/dev/" + name, PartLabel: label, PartUUID: uuid}
	}
	f := &plan.Facts{Disks: []disk.Disk{
		{Name: "vdb", Path: "/dev/vdb", Partitions: []disk.Partition{part("vdb1", disk.LabelSwap2, "aaaa0001"), part("vdb2", "node-app1", "aaaa0002")}},
		{Name: "vdc", Path: "/dev/vdc", Partitions: []disk.Partition{part("vdc2", "node-app1", "bbbb0002")}}, // another machine's
		{Name: "vdd", Path: "/dev/vdd", Partitions: []disk.Partition{part("vdd1", "mine", "cccc0001")}},
		{Name: "vde", Path: "/dev/vde", Partitions: []disk.Partition{part("vde2", "node-app4", "dddd0002")}},
	}}
	dev := &failingMounts{fail: "/dev/vde2"}
	j := &Job{Facts: f, Dev: dev, DevDir: "/dev", NewRoot: t.TempDir()}
	var infos []string
	r := &Reporter{stage: plan.StageMountRoot, now: time.Now, sink: SinkFunc(func(e Event) {
		if e.Kind == EventInfo {
			infos = append(infos, e.Message)
		}
	})}
	j.mountAppData([]plan.AppDataRef{
		{Index: 1, DataPartUUID: "AAAA0002", SwapPartUUID: "aaaa0001"},
		{Index: 2, DataPartUUID: "eeee0002"},
		{Index: 3, DataPartUUID: "cccc0001"},
		{Index: 4, DataPartUUID: "dddd0002"},
	}, r)
	if want := "/dev/vdb2 on " + filepath.Join(j.NewRoot, "/data/app1") + " type ext4"; len(dev.mounts) != 1 || dev.mounts[0] != want {
		t.Errorf("mounts %q, want only %q", dev.mounts, want)
	}
	want := []string{
		"app-data disk 1: /dev/vdb2 (node-app1) mounted on /data/app1; swap /dev/vdb1 (node-swap2) for the node OS",
		"app-data disk 2 is missing: no partition has PARTUUID eeee0002 (node-app2); /data/app2 is not mounted, the boot goes on",
		`app-data disk 3: the partition with PARTUUID cccc0001 on /dev/vdd is named "mine", not node-app3; /data/app3 is not mounted, the boot goes on`,
		"app-data disk 4: mount /dev/vde2 (node-app4) on /data/app4: input/output error; the boot goes on without it",
	}
	if strings.Join(infos, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(infos, "\n"), strings.Join(want, "\n"))
	}
}
