package diskio

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/disk"
)

// dwMDSuperblock writes an md 1.2 superblock (4 KiB into dev) by hand: md
// arrays cannot be created on this host kernel, but the bytes are what mdadm
// writes, checksum included, and blkid judges them.
func dwMDSuperblock(t *testing.T, dev string) {
	t.Helper()
	const maxDev = 2
	sb := make([]byte, 256+2*maxDev)
	le := binary.LittleEndian
	le.PutUint32(sb[0:], 0xa92b4efc) // magic
	le.PutUint32(sb[4:], 1)          // major_version
	copy(sb[16:32], "nodeinit-md-test")
	copy(sb[32:64], "node:0")
	le.PutUint32(sb[72:], 1)      // level: raid1
	le.PutUint32(sb[92:], 2)      // raid_disks
	le.PutUint64(sb[128:], 2048)  // data_offset (sectors)
	le.PutUint64(sb[136:], 65536) // data_size
	le.PutUint64(sb[144:], 8)     // super_offset: 4 KiB in 512-byte sectors
	copy(sb[168:184], "device-uuid-0001")
	le.PutUint64(sb[200:], 1)      // events
	le.PutUint32(sb[220:], maxDev) // max_dev
	le.PutUint16(sb[258:], 1)      // dev_roles[1]
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

func dwReadAt(t *testing.T, dev string, off int64, n int) []byte {
	t.Helper()
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWipePreseeded seeds loop devices with the real tools and checks that
// after Wipe neither wipefs nor blkid finds anything, at both sector sizes.
func TestWipePreseeded(t *testing.T) {
	dwNeedTool(t, "wipefs", "blkid", "mke2fs", "mkfs.xfs", "mkfs.btrfs", "pvcreate", "vgcreate", "cryptsetup", "sgdisk")
	keyfile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyfile, []byte("not-a-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	// LVM gets a system dir of its own, so the host's /etc/lvm is neither
	// read nor written (no backups or archives of test VGs left behind).
	lvmDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(lvmDir, "lvm.conf"), []byte("backup { backup = 0 archive = 0 }\ndevices { use_devicesfile = 0 }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	lvmEnv := func(cmd string, args ...string) {
		t.Helper()
		c := exec.Command(cmd, args...)
		c.Env = append(os.Environ(), "LVM_SUPPRESS_FD_WARNINGS=1", "LVM_SYSTEM_DIR="+lvmDir)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", cmd, args, err, out)
		}
	}
	cases := []struct {
		name string
		size int64
		want string // TYPE blkid reports before the wipe
		seed func(t *testing.T, dev string)
		// extra checks that the seed really wrote what we wipe (mirrors, partitions)
		check func(t *testing.T, dev string, present bool)
	}{
		{name: "ext4", size: 1 << 30, want: "ext4", seed: func(t *testing.T, dev string) { dwRun(t, "mke2fs", "-q", "-t", "ext4", "-F", dev) }},
		{name: "xfs", size: 1 << 30, want: "xfs", seed: func(t *testing.T, dev string) { dwRun(t, "mkfs.xfs", "-q", "-f", dev) }},
		{name: "lvm", size: 1 << 30, want: "LVM2_member", seed: func(t *testing.T, dev string) {
			lvmEnv("pvcreate", "-ff", "-y", "--devices", dev, dev)
			lvmEnv("vgcreate", "--devices", dev, "dwtestvg", dev)
		}},
		{name: "md", size: 1 << 30, want: "linux_raid_member", seed: func(t *testing.T, dev string) { dwMDSuperblock(t, dev) }},
		{name: "luks2", size: 1 << 30, want: "crypto_LUKS", seed: func(t *testing.T, dev string) {
			dwRun(t, "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000", "--key-file", keyfile, dev)
		}},
		{name: "luks1", size: 1 << 30, want: "crypto_LUKS", seed: func(t *testing.T, dev string) {
			dwRun(t, "cryptsetup", "luksFormat", "--batch-mode", "--type", "luks1", "--pbkdf-force-iterations", "1000", "--key-file", keyfile, dev)
		}},
		{name: "btrfs with both mirrors", size: 300 << 30, want: "btrfs",
			seed: func(t *testing.T, dev string) { dwRun(t, "mkfs.btrfs", "-q", "-f", dev) },
			check: func(t *testing.T, dev string, present bool) {
				for _, off := range []int64{64 << 10, 64 << 20, 256 << 30} {
					got := bytes.Equal(dwReadAt(t, dev, off+64, 8), []byte("_BHRfS_M"))
					if got != present {
						t.Errorf("btrfs superblock at %d present=%v, want %v", off, got, present)
					}
				}
			}},
		{name: "old oVirt Node layout", size: 8 << 30, want: "gpt",
			seed: func(t *testing.T, dev string) {
				dwRun(t, "sgdisk", "-n", "1:1M:+256M", "-c", "1:Root", "-n", "2:0:+256M", "-c", "2:RootBackup",
					"-n", "3:0:0", "-c", "3:HostVG", "-t", "3:8e00", dev)
				dwRun(t, "partx", "-a", dev)
				dwRun(t, "mke2fs", "-q", "-t", "ext2", "-L", "Root", disk.PartitionPath(dev, 1))
				dwRun(t, "mke2fs", "-q", "-t", "ext2", "-L", "RootBackup", disk.PartitionPath(dev, 2))
				pv := disk.PartitionPath(dev, 3)
				lvmEnv("pvcreate", "-ff", "-y", "--devices", pv, pv)
				lvmEnv("vgcreate", "--devices", pv, "HostVG", pv)
			},
			check: func(t *testing.T, dev string, present bool) {
				parts := []struct {
					start, size int64
					typ         string
				}{{1 << 20, 256 << 20, "ext2"}, {257 << 20, 256 << 20, "ext2"}, {513 << 20, (8 << 30) - (513 << 20) - (1 << 20), "LVM2_member"}}
				for _, p := range parts {
					kv := dwBlkid(t, dev, p.start, p.size)
					if present && kv["TYPE"] != p.typ {
						t.Errorf("seed: blkid at %d finds %v, want %s", p.start, kv, p.typ)
					}
					if !present && kv != nil {
						t.Errorf("after wipe: blkid at %d finds %v", p.start, kv)
					}
				}
			}},
	}
	for _, ss := range []int{512, 4096} {
		for _, c := range cases {
			t.Run(strconv.Itoa(ss)+"/"+c.name, func(t *testing.T) {
				dev := dwLoop(t, c.size, ss)
				c.seed(t, dev)
				kv := dwBlkid(t, dev, 0, 0)
				if kv["TYPE"] != c.want && kv["PTTYPE"] != c.want {
					t.Fatalf("seed: blkid -p finds %v, want %s", kv, c.want)
				}
				if dwWipefs(t, dev) == "" {
					t.Fatal("seed: wipefs -n finds nothing")
				}
				if c.check != nil {
					c.check(t, dev, true)
				}
				rep, err := Wipe(dev, disk.WipeOptions{})
				if err != nil {
					t.Fatalf("wipe: %v", err)
				}
				if out := dwWipefs(t, dev); out != "" {
					t.Errorf("wipefs -n after wipe:\n%s", out)
				}
				if kv := dwBlkid(t, dev, 0, 0); kv != nil {
					t.Errorf("blkid -p after wipe: %v", kv)
				}
				if c.check != nil {
					c.check(t, dev, false)
				}
				if rep.Method != "zeroout" {
					t.Errorf("loop device wiped by %q, want zeroout", rep.Method)
				}
			})
		}
	}
}

// TestLock checks that a second Lock on the same disk is refused and names us.
func TestLock(t *testing.T) {
	dev := dwLoop(t, 64<<20, 512)
	unlock, err := Lock(dev)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Lock(dev)
	if err == nil {
		t.Fatal("second lock succeeded")
	}
	if !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Errorf("error does not name the holder: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	unlock, err = Lock(dev)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock()
}
