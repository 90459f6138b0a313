package diskio

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/internal/testloop"
)

// The tests here build nested volumes with the real tools on loop devices,
// without device-mapper or md (this host kernel has neither): LVs are made
// with activation disabled, and their filesystems are written through loop
// devices set up at the LV's offset on the image file, which is exactly where
// device-mapper would have put them.

// nwLVM returns a runner for LVM commands confined to devs: its own
// LVM_SYSTEM_DIR (so the host's lvm.conf, backups and archives are neither
// read nor written), activation off (no device-mapper here).
func nwLVM(t *testing.T, devs ...string) func(args ...string) string {
	t.Helper()
	dwNeedTool(t, "pvcreate", "vgcreate", "lvcreate", "lvs", "pvs")
	dir := t.TempDir()
	conf := `global { activation = 0 }
backup { backup = 0 archive = 0 }
devices { obtain_device_list_from_udev = 0 use_devicesfile = 0 }
`
	if err := os.WriteFile(filepath.Join(dir, "lvm.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(args ...string) string {
		t.Helper()
		full := append([]string{args[0]}, "--devices", strings.Join(devs, ","))
		full = append(full, args[1:]...)
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

// nwBackFile is the image file behind a loop device.
func nwBackFile(t *testing.T, dev string) string {
	t.Helper()
	return strings.TrimSpace(dwRun(t, "losetup", "-n", "-O", "BACK-FILE", dev))
}

// nwOffsetLoop attaches file at [off, off+size) to a new loop device. The
// returned detach may be called early (it is idempotent); t.Cleanup calls it
// in any case.
func nwOffsetLoop(t *testing.T, file string, off, size int64) (string, func()) {
	t.Helper()
	l := testloop.Attach(t, file, "-o", strconv.FormatInt(off, 10), "--sizelimit", strconv.FormatInt(size, 10))
	return l.Dev, func() {
		if err := l.Detach(); err != nil {
			t.Error(err)
		}
	}
}

// nwFlush drops the loop device's cached blocks, so that tools read what
// other loop devices wrote to the same file.
func nwFlush(t *testing.T, dev string) { t.Helper(); dwRun(t, "blockdev", "--flushbufs", dev) }

// nwExtBackups returns the backup superblock block numbers dumpe2fs lists, and the block size.
func nwExtBackups(t *testing.T, dev string) ([]int64, int64) {
	t.Helper()
	out := dwRun(t, "dumpe2fs", dev)
	var blocks []int64
	for _, m := range regexp.MustCompile(`Backup superblock at (\d+)`).FindAllStringSubmatch(out, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		blocks = append(blocks, n)
	}
	bs := regexp.MustCompile(`Block size:\s+(\d+)`).FindStringSubmatch(out)
	if bs == nil {
		t.Fatalf("dumpe2fs %s: no block size", dev)
	}
	n, _ := strconv.ParseInt(bs[1], 10, 64)
	return blocks, n
}

// nwE2fsckBackup reports whether e2fsck can open the filesystem through the
// backup superblock at block. With -n it exits 4 on a good backup (the
// group summaries it would fix differ from the backup's) and 8 when there is
// no superblock there.
func nwE2fsckBackup(dev string, block, bs int64) bool {
	err := exec.Command("e2fsck", "-n", "-b", strconv.FormatInt(block, 10), "-B", strconv.FormatInt(bs, 10), dev).Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode() < 8
	}
	return err == nil
}

// nwUUIDBytes parses a UUID string to its 16 on-disk bytes.
func nwUUIDBytes(t *testing.T, u string) []byte {
	t.Helper()
	h := strings.ReplaceAll(u, "-", "")
	if len(h) != 32 {
		t.Fatalf("uuid %q", u)
	}
	b := make([]byte, 16)
	for i := range b {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			t.Fatal(err)
		}
		b[i] = byte(v)
	}
	return b
}

// nwContains reports whether [off, off+n) of path contains needle.
// A nil t makes an unreadable path count as not containing it.
func nwContains(t *testing.T, path string, off, n int64, needle []byte) bool {
	f, err := os.Open(path)
	if err != nil {
		if t != nil {
			t.Fatal(err)
		}
		return false
	}
	defer f.Close()
	b := make([]byte, n)
	got, _ := f.ReadAt(b, off)
	return bytes.Contains(b[:got], needle)
}

// TestWipeOVirtNodeHostVG builds an oVirt Node 3 disk (Root, RootBackup,
// and a HostVG PV with the LVs Swap, Config, Logging and Data made by the
// LVM tools, each formatted at its LV offset, Config holding
// /etc/default/ovirt), wipes the whole disk, and asks blkid, debugfs and
// e2fsck whether anything of the LVs survived.
func TestWipeOVirtNodeHostVG(t *testing.T) {
	dwNeedTool(t, "sgdisk", "blkid", "mke2fs", "mkswap", "debugfs", "dumpe2fs", "e2fsck", "blockdev", "wipefs")
	for _, mode := range []disk.EraseMode{disk.EraseSignatures, disk.EraseZero} {
		t.Run(string(mode), func(t *testing.T) {
			const size = 2 << 30
			dev := dwLoop(t, size, 512)
			img := nwBackFile(t, dev)
			dwRun(t, "sgdisk", "-n", "1:1M:+256M", "-c", "1:Root", "-n", "2:0:+256M", "-c", "2:RootBackup",
				"-n", "3:0:0", "-c", "3:HostVG", "-t", "3:8e00", dev)
			dwRun(t, "partx", "-a", dev)
			pv := disk.PartitionPath(dev, 3)
			pvStart := int64(513 << 20)
			lvm := nwLVM(t, pv)
			lvm("pvcreate", "-ff", "-y", pv)
			lvm("vgcreate", "HostVG", pv)
			lvSizes := []struct {
				name string
				mib  int
			}{{"Swap", 64}, {"Config", 64}, {"Logging", 256}, {"Data", 1024}}
			for _, lv := range lvSizes {
				lvm("lvcreate", "-y", "--activate", "n", "--zero", "n", "-L", strconv.Itoa(lv.mib)+"M", "-n", lv.name, "HostVG")
			}
			// Where LVM put them, in its own words: pe_start and each LV's PE range.
			peStart, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(lvm("pvs", "--noheadings", "--units", "b", "--nosuffix", "-o", "pe_start", pv)), "B")), 10, 64)
			extent := int64(4 << 20)
			type lvAt struct {
				name      string
				off, size int64
			}
			var lvs []lvAt
			for _, line := range strings.Split(strings.TrimSpace(lvm("lvs", "--noheadings", "--separator", ";", "-o", "lv_name,seg_pe_ranges", "HostVG")), "\n") {
				f := strings.Split(strings.TrimSpace(line), ";")
				m := regexp.MustCompile(`:(\d+)-(\d+)$`).FindStringSubmatch(f[1])
				if m == nil {
					t.Fatalf("lvs: %q", line)
				}
				a, _ := strconv.ParseInt(m[1], 10, 64)
				b, _ := strconv.ParseInt(m[2], 10, 64)
				lvs = append(lvs, lvAt{f[0], pvStart + peStart + a*extent, (b - a + 1) * extent})
			}
			if len(lvs) != 4 || peStart == 0 {
				t.Fatalf("lvs found %+v, pe_start %d", lvs, peStart)
			}
			exec.Command("partx", "-d", dev).Run() // the wipe must find partitions in the GPT alone

			var configAt lvAt
			var backups []int64
			var bs int64
			for _, lv := range lvs {
				ldev, detach := nwOffsetLoop(t, img, lv.off, lv.size)
				switch lv.name {
				case "Swap":
					dwRun(t, "mkswap", "-L", "SWAP", ldev)
				case "Config":
					configAt = lv
					dwRun(t, "mke2fs", "-q", "-t", "ext4", "-b", "1024", "-L", "CONFIG", ldev)
					dwWithMount(t, ldev, "ext4", func(dir string) {
						for name, body := range map[string]string{
							"etc/default/ovirt":                        "OVIRT_BOOTIF=eth0\nOVIRT_IP_ADDRESS=192.0.2.77\nOVIRT_IP_GATEWAY=192.0.2.1\n",
							"etc/sysconfig/network-scripts/ifcfg-eth0": "DEVICE=eth0\nIPADDR=192.0.2.77\n",
						} {
							p := filepath.Join(dir, name)
							if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
								t.Fatal(err)
							}
							if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
								t.Fatal(err)
							}
						}
					})
					if out := dwRun(t, "debugfs", "-R", "cat /etc/default/ovirt", ldev); !strings.Contains(out, "192.0.2.77") {
						t.Fatalf("seed: debugfs cannot read the config file: %s", out)
					}
					backups, bs = nwExtBackups(t, ldev)
					if len(backups) < 3 || !nwE2fsckBackup(ldev, backups[len(backups)-1], bs) {
						t.Fatalf("seed: Config backups %v (block %d) not usable by e2fsck", backups, bs)
					}
				default:
					dwRun(t, "mke2fs", "-q", "-t", "ext4", "-L", strings.ToUpper(lv.name), ldev)
				}
				detach()
			}
			nwFlush(t, dev)
			for _, lv := range lvs {
				want := "ext4"
				if lv.name == "Swap" {
					want = "swap"
				}
				if kv := dwBlkid(t, dev, lv.off, lv.size); kv["TYPE"] != want {
					t.Fatalf("seed: blkid at %s (offset %d) finds %v, want %s", lv.name, lv.off, kv, want)
				}
			}

			rep, err := WipeContext(context.Background(), dev, disk.WipeOptions{Mode: mode})
			if err != nil {
				t.Fatalf("wipe: %v", err)
			}
			t.Logf("%s: %d regions, %d KiB, erased %d MiB, method %s", mode, rep.Regions, rep.Bytes>>10, rep.Erased>>20, rep.Method)
			foundLV := map[string]int64{}
			for _, f := range rep.Found {
				if f.Kind == "lv" {
					foundLV[f.Name] = f.Offset
				}
			}
			for _, lv := range lvs {
				if got, ok := foundLV["HostVG/"+lv.name]; !ok || got != lv.off {
					t.Errorf("report: LV %s at %d, want %d (found %v)", lv.name, got, lv.off, foundLV)
				}
			}
			if rep.Mode != mode {
				t.Errorf("report mode %q, want %q", rep.Mode, mode)
			}
			nwFlush(t, dev)
			for _, lv := range lvs {
				if kv := dwBlkid(t, dev, lv.off, lv.size); kv != nil {
					t.Errorf("after wipe: blkid at %s (offset %d) finds %v", lv.name, lv.off, kv)
				}
			}
			if kv := dwBlkid(t, dev, pvStart, size-pvStart-disk.MiB); kv != nil {
				t.Errorf("after wipe: blkid at the PV finds %v", kv)
			}
			if out := dwWipefs(t, dev); out != "" {
				t.Errorf("wipefs -n after wipe:\n%s", out)
			}
			ldev, _ := nwOffsetLoop(t, img, configAt.off, configAt.size)
			out, _ := exec.Command("debugfs", "-R", "cat /etc/default/ovirt", ldev).CombinedOutput()
			if strings.Contains(string(out), "192.0.2.77") {
				t.Errorf("after wipe: debugfs still reads the old config: %s", out)
			}
			for _, b := range backups {
				if nwE2fsckBackup(ldev, b, bs) {
					t.Errorf("after wipe: e2fsck -b %d brings the Config filesystem back", b)
				}
			}
			if mode == disk.EraseZero && nwContains(t, img, pvStart, size-pvStart, []byte("192.0.2.77")) {
				t.Error("erase=zero left the config file's bytes on the disk")
			}
		})
	}
}

// TestWipeBackupSuperblocks makes ext4, xfs and btrfs, in a partition and
// at the start of the disk, checks that their backups are where the tools
// say and usable, wipes, and checks them gone: e2fsck -b fails, and no old
// UUID is left at any backup offset.
func TestWipeBackupSuperblocks(t *testing.T) {
	type backup struct{ off, n int64 }
	cases := []struct {
		name  string
		tools []string
		mkfs  func(t *testing.T, dev string)
		// backups returns the backup locations (relative to the filesystem)
		// as the filesystem's own tools report them, and the UUID.
		backups func(t *testing.T, dev string) ([]backup, []byte)
		// usable reports whether the tools can still use the backup at b.
		usable func(dev string, b backup) bool
	}{
		{name: "ext4", tools: []string{"mke2fs", "dumpe2fs", "e2fsck"},
			mkfs: func(t *testing.T, dev string) { dwRun(t, "mke2fs", "-q", "-t", "ext4", dev) },
			backups: func(t *testing.T, dev string) ([]backup, []byte) {
				blocks, bs := nwExtBackups(t, dev)
				var out []backup
				for _, b := range blocks {
					out = append(out, backup{b * bs, bs})
				}
				return out, nwUUIDBytes(t, dwBlkid(t, dev, 0, 0)["UUID"])
			},
			usable: func(dev string, b backup) bool { return nwE2fsckBackup(dev, b.off/b.n, b.n) }},
		{name: "xfs", tools: []string{"mkfs.xfs", "xfs_db"},
			mkfs: func(t *testing.T, dev string) { dwRun(t, "mkfs.xfs", "-q", "-f", "-d", "agcount=6", dev) },
			backups: func(t *testing.T, dev string) ([]backup, []byte) {
				out := dwRun(t, "xfs_db", "-r", "-c", "sb 0", "-c", "p agcount agblocks blocksize", dev)
				get := func(k string) int64 {
					m := regexp.MustCompile(k + ` = (\d+)`).FindStringSubmatch(out)
					if m == nil {
						t.Fatalf("xfs_db: no %s in %s", k, out)
					}
					n, _ := strconv.ParseInt(m[1], 10, 64)
					return n
				}
				var bs []backup
				for ag := int64(1); ag < get("agcount"); ag++ {
					bs = append(bs, backup{ag * get("agblocks") * get("blocksize"), 4096})
				}
				return bs, nwUUIDBytes(t, dwBlkid(t, dev, 0, 0)["UUID"])
			},
			usable: func(dev string, b backup) bool {
				return nwContains(nil, dev, b.off, 4, []byte("XFSB"))
			}},
		{name: "btrfs", tools: []string{"mkfs.btrfs"},
			mkfs: func(t *testing.T, dev string) { dwRun(t, "mkfs.btrfs", "-q", "-f", dev) },
			backups: func(t *testing.T, dev string) ([]backup, []byte) {
				return []backup{{64 << 20, 4096}}, nwUUIDBytes(t, dwBlkid(t, dev, 0, 0)["UUID"])
			},
			usable: func(dev string, b backup) bool { return nwContains(nil, dev, b.off+64, 8, []byte("_BHRfS_M")) }},
	}
	for _, c := range cases {
		for _, inPart := range []bool{false, true} {
			name := c.name + "/disk"
			if inPart {
				name = c.name + "/partition"
			}
			t.Run(name, func(t *testing.T) {
				dwNeedTool(t, append(c.tools, "sgdisk", "blkid")...)
				dev := dwLoop(t, 2<<30, 512)
				fsDev, base := dev, int64(0)
				if inPart {
					dwRun(t, "sgdisk", "-n", "1:1M:0", dev)
					dwRun(t, "partx", "-a", dev)
					fsDev, base = disk.PartitionPath(dev, 1), 1<<20
				}
				c.mkfs(t, fsDev)
				bks, uuid := c.backups(t, fsDev)
				if len(bks) == 0 {
					t.Fatal("seed: no backups listed")
				}
				for _, b := range bks {
					if !c.usable(fsDev, b) || !nwContains(t, fsDev, b.off, max(b.n, 4096), uuid) {
						t.Fatalf("seed: backup at %d not usable or without the UUID", b.off)
					}
				}
				if inPart {
					exec.Command("partx", "-d", dev).Run()
				}
				rep, err := Wipe(dev, disk.WipeOptions{})
				if err != nil {
					t.Fatal(err)
				}
				var fsFound *disk.Found
				for i := range rep.Found {
					if rep.Found[i].Kind == "fs" {
						fsFound = &rep.Found[i]
					}
				}
				if fsFound == nil || fsFound.Backups < len(bks) {
					t.Errorf("report: filesystem %+v, want %d backups", fsFound, len(bks))
				}
				t.Logf("%d regions, %d KiB; %d backups", rep.Regions, rep.Bytes>>10, len(bks))
				for _, b := range bks {
					if c.usable(dev, backup{base + b.off, b.n}) {
						t.Errorf("after wipe: backup at %d still usable", base+b.off)
					}
					if nwContains(t, dev, base+b.off, max(b.n, 4096), uuid) {
						t.Errorf("after wipe: old UUID at backup %d", base+b.off)
					}
				}
			})
		}
	}
}

// nwMD12 writes an md 1.2 RAID1 member superblock at 4 KiB with the given
// data offset and size (bytes): what mdadm --create writes, which needs the
// md driver this host lacks. The layout is md_p.h's mdp_superblock_1.
func nwMD12(t *testing.T, dev string, dataOff, dataSize int64) {
	t.Helper()
	sb := make([]byte, 256+2*2)
	le := binary.LittleEndian
	le.PutUint32(sb[0:], 0xa92b4efc)
	le.PutUint32(sb[4:], 1)
	copy(sb[16:32], "nodeinit-md-nest")
	copy(sb[32:64], "node:1")
	le.PutUint32(sb[72:], 1) // raid1
	le.PutUint32(sb[92:], 2)
	le.PutUint64(sb[128:], uint64(dataOff/512))
	le.PutUint64(sb[136:], uint64(dataSize/512))
	le.PutUint64(sb[144:], 8)
	copy(sb[168:184], "device-uuid-0002")
	le.PutUint64(sb[200:], 1)
	le.PutUint32(sb[220:], 2)
	var sum uint64
	for i := 0; i+4 <= len(sb); i += 4 {
		sum += uint64(le.Uint32(sb[i:]))
	}
	le.PutUint32(sb[216:], uint32((sum&0xffffffff)+(sum>>32)))
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(sb, 4096); err != nil {
		t.Fatal(err)
	}
}

// TestWipeMDMemberWithGPTAndExt4 crafts an md 1.2 RAID1 member whose array
// data (at 16 MiB) holds a GPT with an ext4 partition, as an array
// partitioned inside would: the wipe must follow the data offset, the table
// and the filesystem's backups.
func TestWipeMDMemberWithGPTAndExt4(t *testing.T) {
	dwNeedTool(t, "sgdisk", "blkid", "mke2fs", "dumpe2fs", "e2fsck")
	const size, dataOff = 2 << 30, 16 << 20
	dataSize := int64(size - dataOff - 8<<20)
	dev := dwLoop(t, size, 512)
	img := nwBackFile(t, dev)
	nwMD12(t, dev, dataOff, dataSize)
	arr, detachArr := nwOffsetLoop(t, img, dataOff, dataSize)
	dwRun(t, "sgdisk", "-n", "1:1M:0", arr)
	detachArr()
	partOff := int64(dataOff + 1<<20)
	part, detach := nwOffsetLoop(t, img, partOff, dataSize-(1<<20)-(1<<20))
	dwRun(t, "mke2fs", "-q", "-t", "ext4", part)
	blocks, bs := nwExtBackups(t, part)
	if len(blocks) < 3 || !nwE2fsckBackup(part, blocks[2], bs) {
		t.Fatalf("seed: backups %v not usable", blocks)
	}
	detach()
	nwFlush(t, dev)
	if kv := dwBlkid(t, dev, 0, 0); kv["TYPE"] != "linux_raid_member" {
		t.Fatalf("seed: blkid finds %v, want linux_raid_member", kv)
	}
	if kv := dwBlkid(t, dev, dataOff, dataSize); kv["PTTYPE"] != "gpt" {
		t.Fatalf("seed: blkid at the array data finds %v, want a GPT", kv)
	}
	if kv := dwBlkid(t, dev, partOff, 512<<20); kv["TYPE"] != "ext4" {
		t.Fatalf("seed: blkid at the partition in the array finds %v", kv)
	}
	rep, err := Wipe(dev, disk.WipeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, f := range rep.Found {
		kinds[f.Kind]++
	}
	if kinds["md"] != 1 || kinds["table"] != 1 || kinds["fs"] != 1 {
		t.Errorf("report found %v (%+v), want one md, one table, one fs", kinds, rep.Found)
	}
	nwFlush(t, dev)
	for _, at := range []struct{ off, n int64 }{{0, 0}, {dataOff, dataSize}, {partOff, 512 << 20}} {
		if kv := dwBlkid(t, dev, at.off, at.n); kv != nil {
			t.Errorf("after wipe: blkid at %d finds %v", at.off, kv)
		}
	}
	part, _ = nwOffsetLoop(t, img, partOff, dataSize-(2<<20))
	for _, b := range blocks {
		if nwE2fsckBackup(part, b, bs) {
			t.Errorf("after wipe: e2fsck -b %d finds the filesystem in the array", b)
		}
	}
}

// TestWipeLUKS2BothHeaders formats LUKS2 with cryptsetup (no dm needed to
// format), checks that cryptsetup still opens the header from the secondary
// copy alone, then wipes: neither copy nor any keyslot area survives.
func TestWipeLUKS2BothHeaders(t *testing.T) {
	dwNeedTool(t, "cryptsetup", "blkid")
	dev := dwLoop(t, 256<<20, 512)
	key := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(key, []byte("not-a-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	dwRun(t, "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000",
		// 4 MiB of metadata per header: the secondary copy sits at 4 MiB and the
		// keyslots from 8 MiB, beyond what a plain head-and-tail wipe clears.
		"--luks2-metadata-size", "4M", "--key-file", key, dev)
	dwRun(t, "cryptsetup", "luksAddKey", "--batch-mode", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", key, dev, key)
	dump := dwRun(t, "cryptsetup", "luksDump", dev)
	var areas []int64
	for _, m := range regexp.MustCompile(`Area offset:\s*(\d+) \[bytes\]`).FindAllStringSubmatch(dump, -1) {
		n, _ := strconv.ParseInt(m[1], 10, 64)
		areas = append(areas, n)
	}
	if len(areas) != 2 {
		t.Fatalf("seed: luksDump lists keyslot areas %v, want 2:\n%s", areas, dump)
	}
	// Destroy the primary binary header: cryptsetup and the wipe must find the secondary.
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 4096), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if !nwContains(t, dev, 4<<20, 8, []byte("SKUL\xba\xbe")) {
		t.Fatal("seed: no secondary LUKS2 header at 4 MiB")
	}
	if areas[0] < 8<<20 {
		t.Fatalf("seed: keyslot area at %d, want past the 8 MiB head", areas[0])
	}
	for _, a := range areas {
		if bytes.Equal(dwReadAt(t, dev, a, 4096), make([]byte, 4096)) {
			t.Fatalf("seed: keyslot area at %d is zero", a)
		}
	}
	rep, err := Wipe(dev, disk.WipeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var luks *disk.Found
	for i := range rep.Found {
		if rep.Found[i].Kind == "luks" {
			luks = &rep.Found[i]
		}
	}
	if luks == nil || luks.Backups != 1+len(areas) {
		t.Errorf("report: LUKS %+v, want headers + %d keyslot areas", luks, len(areas))
	}
	if exec.Command("cryptsetup", "isLuks", dev).Run() == nil {
		t.Error("after wipe: cryptsetup isLuks still finds a header")
	}
	if kv := dwBlkid(t, dev, 0, 0); kv != nil {
		t.Errorf("after wipe: blkid finds %v", kv)
	}
	if nwContains(t, dev, 0, 16<<20, []byte("SKUL\xba\xbe")) || nwContains(t, dev, 0, 16<<20, []byte("LUKS\xba\xbe")) {
		t.Error("after wipe: a LUKS header magic is left in the first 16 MiB")
	}
	for _, a := range areas {
		if !bytes.Equal(dwReadAt(t, dev, a, 64<<10), make([]byte, 64<<10)) {
			t.Errorf("after wipe: keyslot area at %d not zero", a)
		}
	}
}
