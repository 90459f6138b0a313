package blackbox

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/internal/testloop"
	"github.com/nodeinit/nodeinit/stages"
	"golang.org/x/sys/unix"
)

// The oVirt Node 3 disk of issue 20, built with the real LVM tools: a GPT
// with Root, RootBackup and HostVG, a PV of the HostVG volume group on
// HostVG and the LVs Swap, Config, Logging and Data in it. This host has no
// device-mapper, so the LVs are created with activation off and their
// filesystems are written through loop devices set up at the LV offsets on
// the image file, which is exactly where device-mapper would have put them
// (as disk/diskio's TestWipeOVirtNodeHostVG does).

// ovirtIP is the address in the old Config LV's files; nothing else on the
// disk or in the command lines holds it.
const ovirtIP = "192.0.2.77"

// ovirtLV is one LV of the fixture: where it lies on the disk, what blkid
// found there when it was made, and its filesystem UUID.
type ovirtLV struct {
	name      string
	off, size int64
	fsType    string
	uuid      string
}

// ovirtDisk is the fixture: the image file and its LVs.
type ovirtDisk struct {
	img     string
	pvStart int64
	lvs     []ovirtLV
	config  ovirtLV
}

// newOVirtDisk builds the oVirt Node 3 disk in a new sparse image of e.
func newOVirtDisk(t *testing.T, e *env, name string) ovirtDisk {
	t.Helper()
	for _, tool := range []string{"pvcreate", "vgcreate", "lvcreate", "lvs", "pvs", "vgs", "mkswap", "debugfs", "blockdev"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	d := ovirtDisk{img: e.newDisk(name)}
	run(t, "sgdisk", "-n", "1:1M:+256M", "-c", "1:Root", "-n", "2:0:+256M", "-c", "2:RootBackup",
		"-n", "3:0:0", "-c", "3:HostVG", "-t", "3:8e00", d.img)
	var pvSize int64
	d.pvStart, pvSize = gptExtent(t, d.img, 3)
	root, rootSize := gptExtent(t, d.img, 1)
	backup, backupSize := gptExtent(t, d.img, 2)
	for _, p := range []struct {
		label     string
		off, size int64
	}{{"Root", root, rootSize}, {"RootBackup", backup, backupSize}} {
		dev, detach := offsetLoop(t, d.img, p.off, p.size)
		run(t, "mke2fs", "-q", "-t", "ext2", "-L", p.label, dev)
		detach()
	}

	// The PV lies on the HostVG partition: a loop device at its offset stands
	// in for the partition node the host kernel does not create.
	pv, detachPV := offsetLoop(t, d.img, d.pvStart, pvSize)
	lvm := privateLVM(t, pv)
	lvm("pvcreate", "-ff", "-y", pv)
	lvm("vgcreate", "HostVG", pv)
	for _, lv := range []struct {
		name string
		mib  int
	}{{"Swap", 64}, {"Config", 64}, {"Logging", 256}, {"Data", 1024}} {
		lvm("lvcreate", "-y", "--activate", "n", "--zero", "n", "-L", strconv.Itoa(lv.mib)+"M", "-n", lv.name, "HostVG")
	}
	// Where LVM put them, in its own words: pe_start, the extent size and each
	// LV's PE range.
	peStart := lvmBytes(t, lvm("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", pv))
	extent := lvmBytes(t, lvm("vgs", "--noheadings", "--units", "b", "--nosuffix", "-o", "vg_extent_size", "HostVG"))
	for _, line := range strings.Split(strings.TrimSpace(lvm("lvs", "--noheadings", "--separator", ";", "-o", "lv_name,seg_pe_ranges", "HostVG")), "\n") {
		f := strings.Split(strings.TrimSpace(line), ";")
		m := regexp.MustCompile(`:(\d+)-(\d+)$`).FindStringSubmatch(f[len(f)-1])
		if len(f) != 2 || m == nil {
			t.Fatalf("lvs: %q", line)
		}
		a, _ := strconv.ParseInt(m[1], 10, 64)
		b, _ := strconv.ParseInt(m[2], 10, 64)
		d.lvs = append(d.lvs, ovirtLV{name: f[0], off: d.pvStart + peStart + a*extent, size: (b - a + 1) * extent})
	}
	detachPV()
	if len(d.lvs) != 4 || peStart == 0 || extent == 0 {
		t.Fatalf("seed: lvs found %+v, pe_start %d, extent %d", d.lvs, peStart, extent)
	}

	// The Config LV's files, as oVirt Node 3 kept them.
	files := filepath.Join(t.TempDir(), "config")
	for name, body := range map[string]string{
		"etc/default/ovirt":                        "OVIRT_BOOTIF=eth0\nOVIRT_IP_ADDRESS=" + ovirtIP + "\nOVIRT_IP_GATEWAY=192.0.2.1\n",
		"etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nBOOTPROTO=static\nIPADDR=" + ovirtIP + "\n",
	} {
		p := filepath.Join(files, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := range d.lvs {
		lv := &d.lvs[i]
		dev, detach := offsetLoop(t, d.img, lv.off, lv.size)
		switch lv.name {
		case "Swap":
			run(t, "mkswap", "-L", "SWAP", dev)
		case "Config":
			// -d writes the files in without a mount.
			run(t, "mke2fs", "-q", "-t", "ext4", "-b", "1024", "-L", "CONFIG", "-d", files, dev)
			if out := run(t, "debugfs", "-R", "cat /etc/default/ovirt", dev); !strings.Contains(out, ovirtIP) {
				t.Fatalf("seed: debugfs cannot read the config file: %s", out)
			}
		default:
			run(t, "mke2fs", "-q", "-t", "ext4", "-L", strings.ToUpper(lv.name), dev)
		}
		kv := blkidAt(t, dev, 0, 0)
		lv.fsType, lv.uuid = kv["TYPE"], kv["UUID"]
		detach()
		if lv.name == "Config" {
			d.config = *lv
		}
	}
	// Not vacuous: blkid finds each filesystem at its LV offset on the disk,
	// and the address is in the image's bytes.
	for _, lv := range d.lvs {
		want := "ext4"
		if lv.name == "Swap" {
			want = "swap"
		}
		if kv := blkidAt(t, d.img, lv.off, lv.size); kv["TYPE"] != want || kv["UUID"] != lv.uuid || lv.uuid == "" {
			t.Fatalf("seed: blkid at %s (offset %d) finds %v, want %s %s", lv.name, lv.off, kv, want, lv.uuid)
		}
	}
	if kv := blkidAt(t, d.img, d.pvStart, pvSize); kv["TYPE"] != "LVM2_member" {
		t.Fatalf("seed: blkid at the HostVG partition finds %v", kv)
	}
	if at := findInImage(t, d.img, []byte(ovirtIP)); at < 0 {
		t.Fatal("seed: the address is not in the image")
	}
	return d
}

// gptExtent returns partition n's byte offset and size as sgdisk reads them
// (512-byte sectors).
func gptExtent(t *testing.T, img string, n int) (int64, int64) {
	t.Helper()
	out := run(t, "sgdisk", "-i", strconv.Itoa(n), img)
	m := regexp.MustCompile(`First sector: (\d+).*\nLast sector: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("sgdisk -i %d: no extent:\n%s", n, out)
	}
	first, _ := strconv.ParseInt(m[1], 10, 64)
	last, _ := strconv.ParseInt(m[2], 10, 64)
	return first * 512, (last - first + 1) * 512
}

// lvmBytes parses a byte count that LVM printed with --units b --nosuffix.
func lvmBytes(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(s), "B"), 10, 64)
	if err != nil {
		t.Fatalf("lvm printed %q: %v", s, err)
	}
	return n
}

// privateLVM returns a runner for LVM commands confined to devs, with its
// own LVM_SYSTEM_DIR so that the host's lvm.conf, backups and archives are
// neither read nor written, and activation off (no device-mapper here).
func privateLVM(t *testing.T, devs ...string) func(args ...string) string {
	t.Helper()
	dir := t.TempDir()
	conf := "global { activation = 0 }\nbackup { backup = 0 archive = 0 }\ndevices { obtain_device_list_from_udev = 0 use_devicesfile = 0 }\n"
	if err := os.WriteFile(filepath.Join(dir, "lvm.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) string {
		t.Helper()
		full := append([]string{args[0], "--devices", strings.Join(devs, ",")}, args[1:]...)
		c := exec.Command(full[0], full[1:]...)
		c.Env = append(os.Environ(), "LVM_SYSTEM_DIR="+dir, "LVM_SUPPRESS_FD_WARNINGS=1")
		var stderr bytes.Buffer
		c.Stderr = &stderr
		out, err := c.Output() // stdout only: stderr has the "activation disabled" warnings
		if err != nil {
			t.Fatalf("%v: %v\n%s%s", full, err, out, stderr.Bytes())
		}
		return string(out)
	}
}

// offsetLoop attaches [off, off+size) of file to a new loop device. The
// returned detach flushes the device's cached blocks (so that what was
// written through it is in the file for every later reader) and detaches
// it; it may be called early and is idempotent, and t.Cleanup calls it in
// any case.
func offsetLoop(t *testing.T, file string, off, size int64) (string, func()) {
	t.Helper()
	l := testloop.Attach(t, file, "-o", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(size, 10))
	return l.Dev, func() {
		if err := l.Detach(); err != nil {
			t.Error(err)
		}
	}
}

// blkidAt returns blkid -p's export of path at [off, off+size) (the whole of
// path when size is 0), or nil when blkid finds nothing.
func blkidAt(t *testing.T, path string, off, size int64) map[string]string {
	t.Helper()
	args := []string{"-p", "-o", "export"}
	if size > 0 {
		args = append(args, "-O", strconv.FormatInt(off, 10), "-S", strconv.FormatInt(size, 10))
	}
	out, err := exec.Command("blkid", append(args, path)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 2 {
		return nil // nothing found
	}
	if err != nil {
		t.Fatalf("blkid %s: %v: %s", path, err, out)
	}
	kv := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			kv[k] = v
		}
	}
	return kv
}

// findInImage returns the first offset of needle in the image file, or -1.
// It reads only the file's data extents (SEEK_DATA): holes read as zeroes.
func findInImage(t *testing.T, img string, needle []byte) int64 {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	buf := make([]byte, 4<<20+len(needle))
	for off := int64(0); off < st.Size(); {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return -1 // no data after off
		}
		if err != nil {
			t.Fatalf("seek data in %s: %v", img, err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			t.Fatalf("seek hole in %s: %v", img, err)
		}
		for at := data; at < hole; at += int64(len(buf) - len(needle)) {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), hole-at)], at)
			if err != nil && err != io.EOF {
				t.Fatalf("read %s at %d: %v", img, at, err)
			}
			if i := bytes.Index(buf[:n], needle); i >= 0 {
				return at + int64(i)
			}
		}
		off = hole
	}
	return -1
}

// checkOVirtGone asserts that nothing of the old LVs is left: blkid finds no
// filesystem at any former LV offset (unless a partition of the new install
// starts exactly there, and then not the old one), and debugfs cannot read
// the old config file through a loop device at the Config LV's offset.
func checkOVirtGone(t *testing.T, d ovirtDisk, newStarts map[int64]bool) {
	t.Helper()
	for _, lv := range d.lvs {
		kv := blkidAt(t, d.img, lv.off, lv.size)
		switch {
		case kv == nil:
			t.Logf("%s at offset %d (%d MiB): blkid finds nothing", lv.name, lv.off, lv.size>>20)
		case kv["UUID"] == lv.uuid:
			t.Errorf("%s at offset %d: blkid still finds the old %s %s", lv.name, lv.off, lv.fsType, lv.uuid)
		case newStarts[lv.off]:
			t.Logf("%s at offset %d: a new partition starts there; blkid finds its %s", lv.name, lv.off, kv["TYPE"])
		default:
			t.Errorf("%s at offset %d: blkid finds %v", lv.name, lv.off, kv)
		}
	}
	dev := testloop.Attach(t, d.img, "-r", "-o", strconv.FormatInt(d.config.off, 10),
		"--sizelimit", strconv.FormatInt(d.config.size, 10)).Dev
	out, _ := exec.Command("debugfs", "-R", "cat /etc/default/ovirt", dev).CombinedOutput()
	if strings.Contains(string(out), ovirtIP) {
		t.Errorf("debugfs still reads the old /etc/default/ovirt from the Config LV:\n%s", out)
	}
	out, _ = exec.Command("debugfs", "-R", "cat /etc/sysconfig/network-scripts/ifcfg-eth0", dev).CombinedOutput()
	if strings.Contains(string(out), ovirtIP) {
		t.Errorf("debugfs still reads the old ifcfg-eth0 from the Config LV:\n%s", out)
	}
}

// newPartitionStarts returns the byte offsets at which the image's GPT (as
// sgdisk reads it) starts a partition; nil when it has no table.
func newPartitionStarts(t *testing.T, img string) map[int64]bool {
	t.Helper()
	out, err := exec.Command("sgdisk", "-p", img).CombinedOutput()
	if err != nil {
		return nil
	}
	starts := map[int64]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+\d+\s+(\d+)\s+\d+`).FindAllStringSubmatch(string(out), -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		starts[n*512] = true
	}
	return starts
}

// TestOVirtNodeLVsThroughApply runs reinstall (in the default erase mode and
// with nodeinit.erase=zero) and uninstall, through the engine and linuxdev
// on a loop device, over an oVirt Node 3 disk whose HostVG holds real LVs
// with filesystems: afterwards blkid finds none of the old filesystems at
// the LV offsets, debugfs cannot read the old config files, a reinstalled
// disk boots the new image from slot a, an uninstalled one has nothing left
// for blkid or wipefs, and after erase=zero the old address appears nowhere
// on the disk.
func TestOVirtNodeLVsThroughApply(t *testing.T) {
	for _, c := range []struct {
		name, line string
		reinstall  bool
		zero       bool
	}{
		{name: "reinstall", line: "reinstall storage_init={dev} nodeinit.image={bundle} " + vols + " hostname=exovirt.example.com", reinstall: true},
		{name: "reinstall-erase-zero", line: "reinstall storage_init={dev} nodeinit.image={bundle} " + vols + " hostname=exovirt.example.com nodeinit.erase=zero", reinstall: true, zero: true},
		{name: "uninstall", line: "uninstall storage_init={dev}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			b := ""
			if c.reinstall {
				b = e.bundle(release{version: "1.0", fillerMiB: 1})
			}
			d := newOVirtDisk(t, e, "ovirt.img")
			for _, lv := range d.lvs {
				t.Logf("seed: %s %s at offset %d, %d MiB, uuid %s", lv.name, lv.fsType, lv.off, lv.size>>20, lv.uuid)
			}
			dev, detach := loop(t, d.img)
			line := strings.NewReplacer("{dev}", dev, "{bundle}", b).Replace(c.line)
			res := e.apply(&linuxdev.Machine{}, filepath.Base(dev), line)
			if res.err != nil {
				t.Fatalf("%s: %v\n%s", line, res.err, res.out)
			}
			if !strings.Contains(res.out, "old oVirt Node install") {
				t.Errorf("the plan does not call the disk an old oVirt Node install:\n%s", res.out)
			}
			// The wipe stage's info events say which mode ran, and for zero
			// that the whole disk was zeroed.
			var wipeInfo []string
			for _, ev := range res.events.Events() {
				if ev.Stage == "wipe" && ev.Kind == stages.EventInfo {
					wipeInfo = append(wipeInfo, ev.Message)
				}
			}
			t.Logf("wipe: %q", wipeInfo)
			want := []string{"signatures: cleared "}
			if c.zero {
				want = []string{"zero: cleared ", "erased " + strconv.Itoa(diskSize>>20) + " MiB;"}
			}
			for _, w := range want {
				if !slices.ContainsFunc(wipeInfo, func(m string) bool { return strings.HasPrefix(m, w) }) {
					t.Errorf("the wipe stage did not report %q: %q", w, wipeInfo)
				}
			}
			detach()

			var starts map[int64]bool
			if c.reinstall {
				starts = newPartitionStarts(t, d.img)
				in, err := newInspector(512, t.TempDir(), b)
				if err != nil {
					t.Fatal(err)
				}
				v, err := in.inspect(d.img)
				if err != nil {
					t.Fatal(err)
				}
				if v.boots != "a" || v.version != "1.0" {
					t.Errorf("after %s: the disk does not boot the new image from slot a: %s", c.name, v)
				}
				t.Logf("after %s: %s", c.name, v)
			} else {
				if kv := blkidAt(t, d.img, 0, 0); kv != nil {
					t.Errorf("after uninstall: blkid finds %v on the disk", kv)
				}
				if out := strings.TrimSpace(run(t, "wipefs", "-n", d.img)); out != "" {
					t.Errorf("after uninstall: wipefs -n lists\n%s", out)
				}
				if kv := blkidAt(t, d.img, d.pvStart, diskSize-d.pvStart-1<<20); kv != nil {
					t.Errorf("after uninstall: blkid finds %v at the old HostVG partition", kv)
				}
			}
			checkOVirtGone(t, d, starts)
			if c.zero {
				if at := findInImage(t, d.img, []byte(ovirtIP)); at >= 0 {
					t.Errorf("after erase=zero: the old address %s is still on the disk at offset %d", ovirtIP, at)
				}
			}
		})
	}
}
