package disk

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/internal/testcmd"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/nodeinit/nodeinit/internal/testloop"
)

// needTools skips the test when a tool the test needs is not installed.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (loop devices)")
	}
}

// sparseFile makes a sparse file of size bytes in the test's temp dir.
func sparseFile(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// run is testcmd.Run.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testcmd.Run(t, name, args...)
}

// loopDevice attaches path to a new loop device, detached in t.Cleanup.
func loopDevice(t *testing.T, path string, sectorSize int) string {
	t.Helper()
	needRoot(t)
	needTools(t, "losetup")
	return testloop.Attach(t, path, "--sector-size", itoa(sectorSize)).Dev
}

func itoa(n int) string { return strconv.Itoa(n) }

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// probeFile probes a file (or device) as a disk with the given sector size.
func probeFile(t *testing.T, path string, sectorSize int) ProbeResult {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	size, err := f.Seek(0, 2)
	if err != nil {
		t.Fatal(err)
	}
	res, err := ProbeDevice(f, size, sectorSize)
	if err != nil {
		t.Fatalf("probe %s: %v", path, err)
	}
	return res
}

// blkidExport runs blkid -p on path at a byte offset and returns its key=value output.
func blkidExport(t *testing.T, path string, offset int64) map[string]string {
	t.Helper()
	out, _ := exec.Command("blkid", "-p", "-o", "export", "-O", itoa64(offset), path).Output()
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			m[k] = v
		}
	}
	return m
}

func findSig(sigs []Signature, typ string) *Signature {
	for i := range sigs {
		if sigs[i].Type == typ {
			return &sigs[i]
		}
	}
	return nil
}

// TestProbeFilesystems makes each filesystem with the real tool and checks
// that Probe finds it with the type, label and UUID blkid -p reports.
func TestProbeFilesystems(t *testing.T) {
	needTools(t, "blkid")
	cases := []struct {
		name, typ, label string
		size             int64
		mk               func(path string) []string
	}{
		{"ext4", SigExt4, "data", 64 << 20, func(p string) []string { return []string{"mkfs.ext4", "-q", "-F", "-L", "data", p} }},
		{"ext3", SigExt3, "old3", 64 << 20, func(p string) []string { return []string{"mkfs.ext3", "-q", "-F", "-L", "old3", p} }},
		{"ext2", SigExt2, "Root", 64 << 20, func(p string) []string { return []string{"mkfs.ext2", "-q", "-F", "-L", "Root", p} }},
		{"xfs", SigXFS, "xdata", 320 << 20, func(p string) []string { return []string{"mkfs.xfs", "-q", "-f", "-L", "xdata", p} }},
		{"btrfs", SigBtrfs, "bdata", 256 << 20, func(p string) []string { return []string{"mkfs.btrfs", "-q", "-f", "-L", "bdata", p} }},
		{"vfat32", SigVFAT, "NODE-ESP", 300 << 20, func(p string) []string { return []string{"mkfs.vfat", "-F", "32", "-n", "NODE-ESP", p} }},
		{"vfat16", SigVFAT, "SMALL", 32 << 20, func(p string) []string { return []string{"mkfs.vfat", "-F", "16", "-n", "SMALL", p} }},
		{"swap", SigSwap, "swappy", 64 << 20, func(p string) []string { return []string{"mkswap", "-L", "swappy", p} }},
		{"luks2", SigLUKS, "secret", 64 << 20, func(p string) []string {
			return []string{"sh", "-c", "echo -n pw | cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --label secret " + p + " -"}
		}},
		{"luks1", SigLUKS, "", 64 << 20, func(p string) []string {
			return []string{"sh", "-c", "echo -n pw | cryptsetup luksFormat -q --type luks1 --pbkdf-force-iterations 1000 " + p + " -"}
		}},
		{"squashfs", SigSquashfs, "", 0, func(p string) []string {
			dir := filepath.Dir(p)
			return []string{"sh", "-c", "mkdir -p " + dir + "/src && echo hi > " + dir + "/src/f && mksquashfs " + dir + "/src " + p + " -noappend -quiet"}
		}},
		{"iso9660", SigISO9660, "NODEINIT", 0, func(p string) []string {
			dir := filepath.Dir(p)
			return []string{"sh", "-c", "mkdir -p " + dir + "/iso && echo hi > " + dir + "/iso/f && xorriso -as mkisofs -quiet -V NODEINIT -o " + p + " " + dir + "/iso"}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := c.mk("x")
			tool := cmd[0]
			if tool == "sh" {
				tool = strings.Fields(cmd[2])[len(strings.Fields(cmd[2]))-1]
				for _, w := range []string{"cryptsetup", "mksquashfs", "xorriso"} {
					if strings.Contains(cmd[2], w) {
						tool = w
					}
				}
			}
			needTools(t, tool)
			var path string
			if c.size > 0 {
				path = sparseFile(t, c.size)
			} else {
				path = filepath.Join(t.TempDir(), "img")
			}
			args := c.mk(path)
			run(t, args[0], args[1:]...)
			res := probeFile(t, path, 512)
			if len(res.Signatures) == 0 {
				t.Fatalf("no signature found on %s", c.name)
			}
			s := res.Signatures[0]
			if s.Type != c.typ || s.Label != c.label || s.Where != "disk" {
				t.Errorf("got %+v, want type %s label %q on disk", s, c.typ, c.label)
			}
			want := blkidExport(t, path, 0)
			if want["TYPE"] != s.Type {
				t.Errorf("blkid -p says TYPE=%q, we say %q", want["TYPE"], s.Type)
			}
			if want["LABEL"] != s.Label {
				t.Errorf("blkid -p says LABEL=%q, we say %q", want["LABEL"], s.Label)
			}
			if u := want["UUID"]; u != "" && !strings.EqualFold(u, s.UUID) {
				t.Errorf("blkid -p says UUID=%q, we say %q", u, s.UUID)
			}
			if len(res.Signatures) != 1 && c.typ != SigBtrfs { // btrfs: primary + 64 MiB mirror
				t.Errorf("want exactly one signature, got %+v", res.Signatures)
			}
		})
	}
}

// TestProbeBtrfsMirror checks that a btrfs mirror superblock is found even
// after the primary is gone, because it would let btrfs restore the filesystem.
func TestProbeBtrfsMirror(t *testing.T) {
	needTools(t, "mkfs.btrfs")
	path := sparseFile(t, 256<<20)
	run(t, "mkfs.btrfs", "-q", "-f", path)
	res := probeFile(t, path, 512)
	var offs []int64
	for _, s := range res.Signatures {
		if s.Type == SigBtrfs {
			offs = append(offs, s.Offset)
		}
	}
	if len(offs) != 2 || offs[0] != 64<<10+64 || offs[1] != 64<<20+64 {
		t.Fatalf("btrfs superblocks at %v, want primary and 64 MiB mirror", offs)
	}
	zeroAt(t, path, 64<<10, 4096)
	res = probeFile(t, path, 512)
	if s := findSig(res.Signatures, SigBtrfs); s == nil || s.Offset != 64<<20+64 {
		t.Fatalf("mirror not found after zeroing the primary: %+v", res.Signatures)
	}
}

func zeroAt(t *testing.T, path string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, n), off); err != nil {
		t.Fatal(err)
	}
}

// TestProbeGPTPartitions builds a GPT with sgdisk (512-byte sectors), puts
// filesystems inside partitions, and checks names, type GUIDs, PARTUUIDs and
// the filesystems probed at the partition offsets.
func TestProbeGPTPartitions(t *testing.T) {
	needTools(t, "sgdisk", "mkfs.ext4", "mkfs.vfat", "blkid")
	path := sparseFile(t, 256<<20)
	run(t, "sgdisk", "-n1:2048:+64M", "-t1:ef00", "-c1:NODE-ESP", "-n2:0:+64M", "-t2:8300", "-c2:node-config", path)
	res := probeFile(t, path, 512)
	if len(res.Partitions) != 2 {
		t.Fatalf("partitions %+v, want 2", res.Partitions)
	}
	esp := res.Partitions[0]
	if esp.PartLabel != "NODE-ESP" || esp.TypeGUID != "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" || esp.StartByte != 1<<20 || esp.SizeBytes != 64<<20 {
		t.Errorf("ESP %+v", esp)
	}
	info := run(t, "sgdisk", "-i2", path)
	if !strings.Contains(info, res.Partitions[1].PartUUID) {
		t.Errorf("PARTUUID %s not in sgdisk -i2:\n%s", res.Partitions[1].PartUUID, info)
	}
	gpts := 0
	for _, s := range res.Signatures {
		if s.Type == SigGPT {
			gpts++
		}
	}
	if gpts != 2 || findSig(res.Signatures, SigPMBR) == nil {
		t.Errorf("want both GPT headers and the PMBR: %+v", res.Signatures)
	}

	// Filesystems inside the partitions, written through an offset loop-free path:
	// make them in separate files and copy them in.
	esp1 := sparseFile(t, 64<<20)
	run(t, "mkfs.vfat", "-F", "32", "-n", "NODE-ESP", esp1)
	cfg := sparseFile(t, 64<<20)
	run(t, "mkfs.ext4", "-q", "-F", "-L", "config", cfg)
	copyInto(t, esp1, path, esp.StartByte)
	copyInto(t, cfg, path, res.Partitions[1].StartByte)
	res = probeFile(t, path, 512)
	if p := res.Partitions[0]; p.FSType != SigVFAT || p.FSLabel != "NODE-ESP" {
		t.Errorf("partition 1 %+v", p)
	}
	p2 := res.Partitions[1]
	if p2.FSType != SigExt4 || p2.FSLabel != "config" {
		t.Errorf("partition 2 %+v", p2)
	}
	if want := blkidExport(t, path, p2.StartByte); want["UUID"] != p2.FSUUID {
		t.Errorf("blkid UUID %q, we %q", want["UUID"], p2.FSUUID)
	}
	s := findSig(res.Signatures, SigExt4)
	if s == nil || s.Where != "partition 2" || s.Offset != p2.StartByte+0x438 {
		t.Errorf("ext4 signature %+v, want at partition 2 + 0x438", s)
	}

	// The backup header alone still reveals the table.
	zeroAt(t, path, 512, 512)
	res = probeFile(t, path, 512)
	if len(res.Partitions) != 2 || findSig(res.Signatures, SigGPT) == nil {
		t.Errorf("backup GPT not used: %+v", res)
	}
}

func copyInto(t *testing.T, src, dst string, off int64) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestProbeGPT4K writes a GPT for 4096-byte sectors with go-diskfs and
// checks the partitions are found both when the sector size is given and
// when the caller guessed 512.
func TestProbeGPT4K(t *testing.T) {
	path := filepath.Join(t.TempDir(), "4k.img")
	d, err := diskfs.Create(path, 64<<20, diskfs.SectorSize4k)
	if err != nil {
		t.Fatal(err)
	}
	table := &gpt.Table{LogicalSectorSize: 4096, PhysicalSectorSize: 4096, ProtectiveMBR: true, Partitions: []*gpt.Partition{
		{Index: 1, Start: 256, End: 256 + 2560 - 1, Type: gpt.LinuxFilesystem, Name: "node-root-a"},
	}}
	if err := d.Partition(table); err != nil {
		t.Fatal(err)
	}
	d.Close()
	for _, ss := range []int{4096, 512} {
		res := probeFile(t, path, ss)
		if len(res.Partitions) != 1 || res.TableSectorSize != 4096 {
			t.Fatalf("sector size %d: %+v", ss, res)
		}
		p := res.Partitions[0]
		if p.PartLabel != "node-root-a" || p.StartByte != 1<<20 || p.SizeBytes != 10<<20 || p.TypeGUID != "0FC63DAF-8483-4772-8E79-3D69D8477DE4" {
			t.Errorf("sector size %d: partition %+v", ss, p)
		}
	}
}

// TestProbeMBR checks a dos table with an old oVirt-style ext2 'Root' partition.
func TestProbeMBR(t *testing.T) {
	needTools(t, "mkfs.ext2")
	path := sparseFile(t, 64<<20)
	mbr := make([]byte, 512)
	e := mbr[446:]
	e[0], e[4] = 0x80, 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], 32768)
	mbr[510], mbr[511] = 0x55, 0xaa
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt(mbr, 0)
	f.Close()
	root := sparseFile(t, 16<<20)
	run(t, "mkfs.ext2", "-q", "-F", "-L", "Root", root)
	copyInto(t, root, path, 1<<20)
	res := probeFile(t, path, 512)
	if findSig(res.Signatures, SigDOS) == nil || len(res.Partitions) != 1 {
		t.Fatalf("dos table not found: %+v", res)
	}
	if p := res.Partitions[0]; p.FSType != SigExt2 || p.FSLabel != "Root" || p.StartByte != 1<<20 {
		t.Errorf("partition %+v", p)
	}
	if got := blkidExport(t, path, 0)["PTTYPE"]; got != "dos" {
		t.Errorf("blkid PTTYPE=%q, want dos", got)
	}
}

// TestProbeLVM creates a PV and a VG named HostVG on a loop device (the
// metadata is written even though this kernel has no device-mapper).
func TestProbeLVM(t *testing.T) {
	needTools(t, "pvcreate", "vgcreate")
	path := sparseFile(t, 64<<20)
	dev := loopDevice(t, path, 512)
	run(t, "pvcreate", "-q", "-ff", "-y", "--devices", dev, dev)
	res := probeFile(t, path, 512)
	s := findSig(res.Signatures, SigLVM)
	if s == nil || s.Label != "" || s.Offset != 512+24 {
		t.Fatalf("PV without VG: %+v", res.Signatures)
	}
	run(t, "vgcreate", "-q", "--devices", dev, "HostVG", dev)
	res = probeFile(t, path, 512)
	s = findSig(res.Signatures, SigLVM)
	if s == nil || s.Label != "HostVG" {
		t.Fatalf("VG name not read: %+v", res.Signatures)
	}
	if want := blkidExport(t, path, 0)["UUID"]; want != s.UUID {
		t.Errorf("blkid UUID %q, we %q", want, s.UUID)
	}
}

// TestProbeMD checks md superblocks of every version with hand-built bytes
// (this kernel has no md, so mdadm --create cannot run here).
func TestProbeMD(t *testing.T) {
	const size = 64 << 20
	for _, c := range []struct {
		name  string
		off   int64
		major uint32
	}{
		{"0.90", size - 64<<10, 0},
		{"1.0", size - 8<<10, 1},
		{"1.1", 0, 1},
		{"1.2", 4096, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := sparseFile(t, size)
			sb := make([]byte, 256)
			binary.LittleEndian.PutUint32(sb[0:], 0xa92b4efc)
			binary.LittleEndian.PutUint32(sb[4:], c.major)
			if c.major == 1 {
				copy(sb[32:], "node:0")
			}
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt(sb, c.off)
			f.Close()
			res := probeFile(t, path, 512)
			s := findSig(res.Signatures, SigMD)
			if s == nil || s.Offset != c.off {
				t.Fatalf("md %s: %+v", c.name, res.Signatures)
			}
			if c.major == 1 && s.Label != "node:0" {
				t.Errorf("array name %q", s.Label)
			}
		})
	}
}

func TestProbeBlank(t *testing.T) {
	path := sparseFile(t, 8<<20)
	res := probeFile(t, path, 4096)
	if len(res.Signatures) != 0 || len(res.Partitions) != 0 {
		t.Fatalf("blank disk: %+v", res)
	}
	if _, err := Probe(bytes.NewReader(nil), 0, 1000); err == nil {
		t.Fatal("sector size 1000 accepted")
	}
}

// TestProbeUnknownDataIsNotBlank: bytes no signature explains make a disk foreign, at
// either end; an all-zero disk stays blank.
func TestProbeUnknownDataIsNotBlank(t *testing.T) {
	const size = 8 << 20
	for _, c := range []struct {
		name string
		at   int64
		want bool
	}{{"zeros", -1, false}, {"head", 4096, true}, {"tail", size - 100, true}} {
		img := make([]byte, size)
		if c.at >= 0 {
			copy(img[c.at:], "some customer data")
		}
		res, err := ProbeDevice(bytes.NewReader(img), size, 512)
		if err != nil {
			t.Fatal(err)
		}
		d := Disk{Signatures: res.Signatures}
		Classify(&d)
		got := d.Content == ContentForeign
		if got != c.want {
			t.Errorf("%s: content %s, signatures %+v", c.name, d.Content, res.Signatures)
		}
		if c.want && (len(res.Signatures) != 1 || res.Signatures[0].Offset != c.at) {
			t.Errorf("%s: want a data signature at %d, got %+v", c.name, c.at, res.Signatures)
		}
	}
}
