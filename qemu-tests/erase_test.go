package qemutests

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/qemu-tests/vm"
	"github.com/nodeinit/nodeinit/stages"
)

// eraseDiskSize is small, so that zeroing it is quick even if the guest had
// to write the zeroes itself; the storage_vol below makes the layout fit.
const eraseDiskSize = 4 << 30

// eraseVols shrinks the layout to fit eraseDiskSize (swap, root, config,
// logging, data in MiB).
const eraseVols = "storage_vol=:16:256:16:64:-1"

// discardDrive returns the QEMU arguments for img as a virtio-blk disk that
// passes discards through to the image file (discard=unmap: QEMU punches
// holes in it) and advertises a 4 KiB discard granularity to the guest.
// vm.Disk has no discard options, so the disk goes in Config.ExtraArgs.
func discardDrive(img, serial string) []string {
	return []string{
		"-drive", "file=" + img + ",if=none,id=erasedisk,format=raw,cache=writeback,discard=unmap",
		"-device", "virtio-blk-pci,serial=" + serial + ",drive=erasedisk,discard_granularity=4096",
	}
}

// bootInstaller boots the installer initrd of version with args, with the
// node's firmware variables and the disk given by extra (QEMU arguments).
func (n *node) bootInstaller(version, args string, extra []string) *vm.VM {
	n.t.Helper()
	initrd, err := n.f.Installer(version)
	if err != nil {
		n.t.Fatal(err)
	}
	return vm.Start(n.t, vm.Config{Kernel: n.f.Debian.Vmlinuz, Initramfs: initrd,
		Append:   "console=ttyS0 panic=5 nodeinit.events=ttyS1 " + args,
		OVMFCode: n.f.Debian.OVMFCode, OVMFVars: n.vars, NoReboot: true, MemoryMiB: 1536,
		Events: n.eventsFile(), ExtraArgs: extra})
}

// wipeInfo is what the wipe stage reported in its info events.
type wipeInfo struct {
	mode       string // the mode that ran (the "<mode>: cleared …" line)
	clearedKiB int64  // the signature regions zeroed (after the discard)
	erasedMiB  int64  // discarded or zeroed over the whole disk
	discarded  bool
	method     string // BLKDISCARD or BLKSECDISCARD
	zeroes     string // what the device guarantees about discarded blocks
	messages   []string
}

var (
	wipeModeRe   = regexp.MustCompile(`^(signatures|discard|zero): cleared \d+ regions \((\d+) KiB\)`)
	wipeErasedRe = regexp.MustCompile(`^erased (\d+) MiB; discarded=(true|false) (\S*) ?; discarded blocks read back as zeroes: (.*)$`)
)

// wipeEvents collects the wipe stage's info events of v.
func wipeEvents(t *testing.T, v *vm.VM) wipeInfo {
	t.Helper()
	var w wipeInfo
	for _, e := range v.Events() {
		if e.Stage != "wipe" || e.Kind != stages.EventInfo {
			continue
		}
		w.messages = append(w.messages, e.Message)
		if m := wipeModeRe.FindStringSubmatch(e.Message); m != nil {
			w.mode = m[1]
			w.clearedKiB, _ = strconv.ParseInt(m[2], 10, 64)
		}
		if m := wipeErasedRe.FindStringSubmatch(e.Message); m != nil {
			w.erasedMiB, _ = strconv.ParseInt(m[1], 10, 64)
			w.discarded, w.method, w.zeroes = m[2] == "true", m[3], m[4]
		}
	}
	return w
}

// region is a byte range of a disk image.
type region struct {
	name      string
	off, size int64
}

// installRegions are the partitions of the install on img, as sgdisk reads
// them, plus the primary and backup GPT.
func installRegions(t *testing.T, img string) []region {
	t.Helper()
	rs := []region{{"primary GPT", 0, 1 << 20}, {"backup GPT", eraseDiskSize - 1<<20, 1 << 20}}
	for _, name := range []string{"NODE-ESP", "node-root-a", "node-root-b", "node-config", "node-logging", "node-swap", "node-data"} {
		off, size := partExtent(t, img, name)
		rs = append(rs, region{name, off, size})
	}
	return rs
}

// samples are the offsets the read-back checks: every 64 MiB across the
// disk, and the first, middle and last MiB of each region of the old install.
func samples(rs []region) []int64 {
	var offs []int64
	for off := int64(0); off < eraseDiskSize; off += 64 << 20 {
		offs = append(offs, off)
	}
	for _, r := range rs {
		offs = append(offs, r.off, r.off+(r.size/2)&^4095, r.off+r.size-1<<20)
	}
	return offs
}

// nonZeroAt returns the offsets among offs whose MiB of img is not all zero.
func nonZeroAt(t *testing.T, img string, offs []int64) []int64 {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, 1<<20)
	var bad []int64
	for _, off := range offs {
		n, err := f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			t.Fatalf("read %s at %d: %v", img, off, err)
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			bad = append(bad, off)
		}
	}
	return bad
}

// firstNonZero reads img's data extents (SEEK_DATA; holes read as zeroes)
// in [from, to) and returns the first non-zero byte's offset, or -1.
func firstNonZero(t *testing.T, img string, from, to int64) int64 {
	t.Helper()
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	buf := make([]byte, 4<<20)
	for off := from; off < to; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) || data >= to {
			return -1
		}
		if err != nil {
			t.Fatalf("seek data in %s: %v", img, err)
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			t.Fatalf("seek hole in %s: %v", img, err)
		}
		hole = min(hole, to)
		for at := data; at < hole; at += int64(len(buf)) {
			n, err := f.ReadAt(buf[:min(int64(len(buf)), hole-at)], at)
			if err != nil && err != io.EOF {
				t.Fatalf("read %s at %d: %v", img, at, err)
			}
			for j, b := range buf[:n] {
				if b != 0 {
					return at + int64(j)
				}
			}
		}
		off = hole
	}
	return -1
}

// allocatedBytes is how much of the sparse image file holds blocks.
func allocatedBytes(t *testing.T, img string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(img, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// TestEraseModesVirtioDiscard installs 1.0 onto a virtio disk whose QEMU
// device passes discards through (discard=unmap, discard_granularity=4096),
// then uninstalls it with nodeinit.erase=discard and, on a second disk, with
// nodeinit.erase=zero. The wipe stage's info events must name the mode, the
// whole disk as erased and, for discard, that BLKDISCARD ran and what the
// device guarantees about discarded blocks. Then the image is read on the
// host: after zero, every sampled offset across the disk and in the old
// install's partitions and GPTs reads zero, and so does every data extent
// of the file; after discard, the regions the device reported as discarded
// read back as zeroes where the guest says the device guarantees it, and in
// any case QEMU must have punched the discarded range out of the image (its
// allocation drops to the re-zeroed signature regions and everything reads
// zero); blkid and wipefs find nothing either way.
func TestEraseModesVirtioDiscard(t *testing.T) {
	for _, c := range []struct{ mode, serial string }{{"discard", "ERASEDISC1"}, {"zero", "ERASEZERO1"}} {
		t.Run(c.mode, func(t *testing.T) {
			img := vm.NewDisk(t, "erase-"+c.mode+".img", eraseDiskSize)
			drive := discardDrive(img, c.serial)
			n := newNode(t) // no vm.Disk: the disk is in drive

			v := n.bootInstaller("1.0", "install storage_init=serial:"+c.serial+" "+eraseVols+
				" hostname=erase-"+c.mode+" nodeinit.onfail=poweroff testos.action=poweroff", drive)
			expectStages(v, 5*time.Minute, "partition", "filesystems", "write-slot", "report")
			waitExit(t, v)
			regions := installRegions(t, img)
			offs := samples(regions)
			// Not vacuous: the install left data in each partition and the GPTs.
			for _, r := range regions {
				if r.name == "node-root-b" {
					continue // the second slot is written by the first upgrade
				}
				if firstNonZero(t, img, r.off, r.off+r.size) < 0 {
					t.Fatalf("seed: the install left %s (offset %d) all zero", r.name, r.off)
				}
			}
			before := allocatedBytes(t, img)
			t.Logf("installed: %d MiB of the image allocated; regions %+v", before>>20, regions)

			v = n.bootInstaller("1.0", "uninstall storage_init=serial:"+c.serial+" nodeinit.erase="+c.mode+" nodeinit.onfail=poweroff", drive)
			v.ExpectEvent("wipe done", vm.StageDone("wipe"), 10*time.Minute)
			w := wipeEvents(t, v)
			// The ledger went with the disk: the firmware keeps how it was erased.
			rec := v.ExpectEvent("the erase record", vm.InfoHas("boot-order", "recorded in EFI variable "+boot.UninstallVar), time.Minute)
			if !strings.Contains(rec.Message, "/dev/vda ("+c.serial+") erase="+c.mode) {
				t.Errorf("the uninstall recorded %q, want /dev/vda (%s) erase=%s", rec.Message, c.serial, c.mode)
			}
			waitExit(t, v)
			t.Logf("wipe info: %q", w.messages)
			if w.mode != c.mode {
				t.Fatalf("the wipe ran mode %q, want %q: %q", w.mode, c.mode, w.messages)
			}
			if w.erasedMiB != eraseDiskSize>>20 {
				t.Errorf("the wipe erased %d MiB, want the whole disk, %d MiB", w.erasedMiB, eraseDiskSize>>20)
			}
			for _, tool := range [][]string{{"blkid", "-p", img}, {"wipefs", "-n", img}} {
				out, _ := exec.Command(tool[0], tool[1:]...).CombinedOutput()
				if s := strings.TrimSpace(string(out)); s != "" {
					t.Errorf("after uninstall: %s finds\n%s", strings.Join(tool, " "), s)
				}
			}
			// The signature regions are zeroed in every mode.
			for _, r := range regions {
				if bad := nonZeroAt(t, img, []int64{r.off}); len(bad) > 0 {
					t.Errorf("after %s: the start of %s (offset %d) is not zero", c.mode, r.name, r.off)
				}
			}
			after := allocatedBytes(t, img)
			t.Logf("after %s: %d MiB of the image allocated (was %d MiB)", c.mode, after>>20, before>>20)

			switch c.mode {
			case "zero":
				if bad := nonZeroAt(t, img, offs); len(bad) > 0 {
					t.Errorf("after zero: %d of %d sampled MiB are not zero, first at %d", len(bad), len(offs), bad[0])
				}
				if at := firstNonZero(t, img, 0, eraseDiskSize); at >= 0 {
					t.Errorf("after zero: non-zero byte at offset %d", at)
				}
			case "discard":
				if !w.discarded || w.method != "BLKDISCARD" {
					t.Fatalf("the device was not discarded (discarded=%v %q): %q", w.discarded, w.method, w.messages)
				}
				if w.zeroes == "" {
					t.Fatalf("the wipe did not say whether discarded blocks read back as zeroes: %q", w.messages)
				}
				discarded := w.erasedMiB << 20 // from offset 0: uninstall keeps nothing
				var in []int64
				for _, off := range offs {
					if off < discarded {
						in = append(in, off)
					}
				}
				guaranteed := strings.HasPrefix(w.zeroes, "guaranteed")
				if bad := nonZeroAt(t, img, in); len(bad) > 0 {
					if guaranteed {
						t.Errorf("the device guarantees zeroes after discard (%s), but %d of %d sampled MiB in the discarded range are not zero, first at %d",
							w.zeroes, len(bad), len(in), bad[0])
					} else {
						t.Logf("the device does not guarantee zeroes (%s): %d of %d sampled MiB are not zero", w.zeroes, len(bad), len(in))
					}
				}
				// What this device does, whatever the guest was told: discard=unmap
				// on a raw file punches the discarded range out of the image, so
				// at most the signature regions zeroed after the discard stay
				// allocated (QEMU may allocate those: BLKZEROOUT asks it not to
				// unmap), and everything reads back as zeroes.
				if limit := w.clearedKiB<<10 + 8<<20; after > limit {
					t.Errorf("after discard: %d MiB of the image still allocated (was %d MiB; the wipe re-zeroed %d KiB): the discards did not reach the image",
						after>>20, before>>20, w.clearedKiB)
				}
				if at := firstNonZero(t, img, 0, discarded); at >= 0 {
					t.Errorf("after discard (device says: %s): non-zero byte at offset %d of the discarded range", w.zeroes, at)
				}
			default:
				panic(fmt.Sprintf("mode %s", c.mode))
			}
		})
	}
}

// TestReinstallLedgerRecordsEraseMode reinstalls with nodeinit.erase=zero over an
// install on a discard-capable virtio disk: the new install's ledger on the ESP
// names the erase mode that ran before it, and how much it erased.
func TestReinstallLedgerRecordsEraseMode(t *testing.T) {
	img := vm.NewDisk(t, "erase-reinstall.img", eraseDiskSize)
	drive := discardDrive(img, "ERASELEDG1")
	n := newNode(t)
	v := n.bootInstaller("1.0", "install storage_init=serial:ERASELEDG1 "+eraseVols+" nodeinit.onfail=poweroff testos.action=poweroff", drive)
	expectStages(v, 5*time.Minute, "partition", "filesystems", "write-slot", "report")
	waitExit(t, v)

	v = n.bootInstaller("1.0", "reinstall storage_init=serial:ERASELEDG1 nodeinit.erase=zero "+eraseVols+" nodeinit.onfail=poweroff testos.action=poweroff", drive)
	expectStages(v, 10*time.Minute, "wipe", "partition", "filesystems", "write-slot", "copy-boot-files", "seed-config", "add-boot-entry")
	waitExit(t, v)

	cmd := exec.Command("mtype", "-i", img+"@@1M", "::ledger.json")
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("read the ledger from the ESP: %v", err)
	}
	var l struct {
		Erase *struct {
			Mode        string `json:"mode"`
			ErasedBytes int64  `json:"erased_bytes"`
		} `json:"erase"`
	}
	if err := json.Unmarshal(out, &l); err != nil {
		t.Fatalf("ledger: %v\n%s", err, out)
	}
	if l.Erase == nil || l.Erase.Mode != "zero" || l.Erase.ErasedBytes != eraseDiskSize {
		t.Fatalf("the ledger does not record the zero erase of the whole disk: %s", out)
	}
}
