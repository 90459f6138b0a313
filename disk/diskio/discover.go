// Discovery, probing, selection and guard rails.
//
// Discover reads sysfs, /proc/self/mountinfo and /proc/swaps below a Root
// (there is no udev in an initramfs), computes the /dev/disk/by-id and
// /dev/disk/by-path names udev would create so operators can paste them,
// probes each disk's bytes for signatures in pure Go (Probe; no blkid), and
// classifies the content (Classify). Select resolves storage_init to exactly
// one target disk with the exclusions of DESIGN.md, and CheckConsent applies
// the consent rules (foreign content needs nodeinit.wipe=<serial or WWN>).
//
// u-root's pkg/mount/block reads the fixed /sys and /dev paths of the running
// machine and opens every device, so discovery reads sysfs through Root
// itself; it still uses block.ComposePartName for partition names.
package diskio

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/internal/lazyre"
	"github.com/u-root/u-root/pkg/mount/block"
)

// Root is the directory discovery reads from: "/" on a machine, a fake tree
// (sys/, proc/, dev/) in tests.
type Root struct {
	Dir string
	// SkipProbe does not read the devices under Dir/dev (fake sysfs trees
	// have none): Signatures stay empty and ProbeError says "not probed", so
	// the content counts as foreign. A disk that cannot be read is treated
	// the same way: unknown content is never taken for blank.
	SkipProbe bool
	// Only, when set, limits discovery to these kernel names (tests name the
	// loop devices they made, so nothing reads this machine's own disks).
	Only []string
}

func (r Root) path(elem ...string) string {
	return filepath.Join(append([]string{r.Dir}, elem...)...)
}

// Discover returns every block device under Root's sys/block, sorted by name,
// each with its partitions, holders, mounts, swap, signatures and content class.
// Virtual devices (loop, ram, zram, dm, md) are listed too, with their
// transport set, so that a selection error can show them; Select never
// picks them.
func Discover(root Root) ([]disk.Disk, error) {
	entries, err := os.ReadDir(root.path("sys", "block"))
	if err != nil {
		return nil, fmt.Errorf("discover disks: %w (is sysfs mounted at %s?)", err, root.path("sys"))
	}
	mounts, err := readMountinfo(root.path("proc", "self", "mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("discover disks: %w", err)
	}
	swaps, err := readSwaps(root.path("proc", "swaps"))
	if err != nil {
		return nil, fmt.Errorf("discover disks: %w", err)
	}
	var disks []disk.Disk
	for _, e := range entries {
		if len(root.Only) > 0 && !slices.Contains(root.Only, e.Name()) {
			continue
		}
		d, err := discoverOne(root, e.Name(), mounts, swaps)
		if err != nil {
			return nil, fmt.Errorf("discover %s: %w", e.Name(), err)
		}
		disks = append(disks, d)
	}
	sort.Slice(disks, func(i, j int) bool { return disks[i].Name < disks[j].Name })
	return disks, nil
}

// sysDev is one sysfs block device directory, resolved through its symlink.
type sysDev struct {
	root    Root
	sysRoot string // Root's sys/, symlinks resolved
	name    string
	dir     string // resolved directory under Root
	rel     string // dir relative to Root's sys/, e.g. devices/pci0000:00/…/block/sda
}

func (s sysDev) attr(elem ...string) string {
	b, err := os.ReadFile(filepath.Join(append([]string{s.dir}, elem...)...))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func (s sysDev) raw(elem ...string) []byte {
	b, _ := os.ReadFile(filepath.Join(append([]string{s.dir}, elem...)...))
	return b
}

func (s sysDev) int(elem ...string) int64 {
	n, _ := strconv.ParseInt(s.attr(elem...), 10, 64)
	return n
}

func discoverOne(root Root, name string, mounts map[string][]string, swaps map[string]bool) (disk.Disk, error) {
	link := root.path("sys", "block", name)
	dir, err := filepath.EvalSymlinks(link)
	if err != nil {
		return disk.Disk{}, fmt.Errorf("resolve %s: %w", link, err)
	}
	sysRoot, err := filepath.EvalSymlinks(root.path("sys"))
	if err != nil {
		return disk.Disk{}, fmt.Errorf("resolve %s: %w", root.path("sys"), err)
	}
	rel, err := filepath.Rel(sysRoot, dir)
	if err != nil {
		return disk.Disk{}, fmt.Errorf("resolve %s: %w", link, err)
	}
	s := sysDev{root: root, sysRoot: sysRoot, name: name, dir: dir, rel: filepath.ToSlash(rel)}
	d := disk.Disk{
		Name:               name,
		Path:               "/dev/" + name,
		SizeBytes:          s.int("size") * 512, // sysfs counts 512-byte units whatever the sector size
		LogicalSectorSize:  int(s.int("queue", "logical_block_size")),
		PhysicalSectorSize: int(s.int("queue", "physical_block_size")),
		Rotational:         s.attr("queue", "rotational") == "1",
		Removable:          s.attr("removable") == "1",
		ReadOnly:           s.attr("ro") == "1",
		Transport:          transportOf(name, s.rel),
	}
	if d.LogicalSectorSize == 0 {
		d.LogicalSectorSize = 512
	}
	if d.PhysicalSectorSize == 0 {
		d.PhysicalSectorSize = d.LogicalSectorSize
	}
	identify(s, &d)
	d.ByID = byIDNames(s, &d)
	d.ByPath = byPathName(s, &d)

	d.Holders = listDir(filepath.Join(dir, "holders"))
	d.Mounts = append(d.Mounts, mounts[s.attr("dev")]...)
	d.Mounts = append(d.Mounts, mounts["/dev/"+name]...)
	d.Swap = swaps[name]
	for _, p := range sysPartitions(s) {
		ps := sysDev{root: root, name: p.Name, dir: filepath.Join(dir, p.Name)}
		d.Holders = append(d.Holders, listDir(filepath.Join(ps.dir, "holders"))...)
		p.Mounts = disk.Dedup(append(append([]string(nil), mounts[ps.attr("dev")]...), mounts["/dev/"+p.Name]...))
		d.Mounts = append(d.Mounts, p.Mounts...)
		d.Swap = d.Swap || swaps[p.Name]
		d.Partitions = append(d.Partitions, p)
	}
	d.Mounts = disk.Dedup(d.Mounts)

	switch {
	case root.SkipProbe:
		d.ProbeError = "not probed" // unknown content is never taken for blank
	case d.SizeBytes > 0:
		if err := probeInto(root, &d); err != nil {
			d.ProbeError = err.Error()
		}
	}
	disk.Classify(&d)
	return d, nil
}

// sysPartitions lists the partitions the kernel knows (directories with a
// "partition" file), with start and size from sysfs.
func sysPartitions(s sysDev) []disk.Partition {
	var parts []disk.Partition
	for _, n := range listDir(s.dir) {
		ps := sysDev{dir: filepath.Join(s.dir, n)}
		num := ps.int("partition")
		if num == 0 {
			continue
		}
		parts = append(parts, disk.Partition{
			Number:    int(num),
			Name:      n,
			Path:      "/dev/" + n,
			StartByte: ps.int("start") * 512,
			SizeBytes: ps.int("size") * 512,
		})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Number < parts[j].Number })
	return parts
}

// probeInto reads the device node and merges what the bytes say into d:
// signatures, and the partition table (names, type GUIDs, filesystems) even
// where the kernel parsed none.
func probeInto(root Root, d *disk.Disk) error {
	f, err := os.Open(root.path("dev", d.Name))
	if err != nil {
		return fmt.Errorf("probe %s: %w", d.Path, err)
	}
	defer f.Close()
	// Each 64 KiB block is read once, whichever probe asks first.
	r := disk.NewReadCache(f, d.SizeBytes)
	res, err := disk.ProbeDevice(r, d.SizeBytes, d.LogicalSectorSize)
	if err != nil {
		return fmt.Errorf("probe %s: %w", d.Path, err)
	}
	// LVM physical volumes, with their VG metadata: the planner refuses to wipe
	// a disk holding part of an LV that also lives on a disk it leaves alone.
	d.PVs = disk.PVsIn(r, d.SizeBytes, res.Partitions)
	names := map[string]string{} // "partition N" → kernel name
	for _, tp := range res.Partitions {
		i := indexPartition(d.Partitions, tp)
		if i < 0 {
			tp.Name = block.ComposePartName(d.Name, tp.Number)
			tp.Path = "/dev/" + tp.Name
			d.Partitions = append(d.Partitions, tp)
			i = len(d.Partitions) - 1
		} else {
			p := &d.Partitions[i]
			p.PartLabel, p.TypeGUID, p.PartUUID = tp.PartLabel, tp.TypeGUID, tp.PartUUID
			p.FSType, p.FSLabel, p.FSUUID = tp.FSType, tp.FSLabel, tp.FSUUID
		}
		names[fmt.Sprintf("partition %d", tp.Number)] = d.Partitions[i].Name
	}
	for _, s := range res.Signatures {
		if n, ok := names[s.Where]; ok {
			s.Where = n
		}
		d.Signatures = append(d.Signatures, s)
	}
	return nil
}

func indexPartition(parts []disk.Partition, p disk.Partition) int {
	for i := range parts {
		if parts[i].Number == p.Number && parts[i].StartByte == p.StartByte {
			return i
		}
	}
	return -1
}

// Transport patterns, compiled on first use.
var ataPort = lazyre.New(`/ata(\d+)/`)
var virtioBlock = lazyre.New(`/virtio\d+/block/`)

// transportOf names the bus from the kernel name and the sysfs device path.
func transportOf(name, rel string) string {
	for _, prefix := range []string{"loop", "zram", "ram", "dm-", "md", "nbd"} {
		if strings.HasPrefix(name, prefix) {
			return strings.TrimSuffix(prefix, "-")
		}
	}
	switch {
	case strings.Contains(rel, "/nvme/") || strings.HasPrefix(name, "nvme"):
		return "nvme"
	case strings.Contains(rel, "/usb"):
		return "usb"
	case ataPort().MatchString(rel):
		return "ata"
	case strings.Contains(rel, "/mmc_host/"):
		return "mmc"
	case virtioBlock().MatchString(rel):
		return "virtio"
	case strings.Contains(rel, "/host") || strings.Contains(rel, "/target"):
		return "scsi"
	}
	return "unknown"
}

// identify fills model, vendor, serial and WWN from the attributes each
// driver exposes: nvme and virtio-blk have serial files; SCSI-attached disks
// have the VPD pages 0x80 (serial), 0x83 (NAA WWN) and, behind libata, 0x89
// (the ATA IDENTIFY data that udev's ata_id reads the full model from).
func identify(s sysDev, d *disk.Disk) {
	switch d.Transport {
	case "nvme":
		d.Model = s.attr("device", "model")
		d.Serial = s.attr("device", "serial")
		d.WWN = normWWID(s.attr("wwid"))
		if d.WWN == "" {
			d.WWN = normWWID(s.attr("device", "wwid"))
		}
	case "virtio":
		d.Serial = s.attr("serial")
		d.Vendor = vendorOfVirtio(s.attr("device", "vendor"))
	case "mmc":
		d.Model = s.attr("device", "name")
		d.Serial = s.attr("device", "serial")
	case "ata", "scsi", "usb":
		d.Vendor = s.attr("device", "vendor")
		d.Model = s.attr("device", "model")
		d.Serial = vpdSerial(s.raw("device", "vpd_pg80"))
		if model, serial, ok := ataIdentify(s.raw("device", "vpd_pg89")); ok {
			d.Model, d.Serial = model, serial
		}
		d.WWN = normWWID(s.attr("device", "wwid"))
		if d.WWN == "" {
			d.WWN = vpdNAA(s.raw("device", "vpd_pg83"))
		}
		if d.Transport == "usb" {
			if serial := usbSerial(s); serial != "" {
				d.Serial = serial
			}
		}
	}
}

func vendorOfVirtio(id string) string {
	if id == "0x1af4" {
		return "Red Hat"
	}
	return ""
}

// normWWID turns a sysfs wwid ("naa.5000c500a1b2c3d4", "eui.0025…",
// "0x5000…") into the WWN udev reports: 0x<hex> for NAA, the eui./nvme. form
// for NVMe. T10 vendor IDs are not world-wide names and give "".
func normWWID(w string) string {
	w = strings.TrimSpace(w)
	switch {
	case strings.HasPrefix(w, "naa."):
		return "0x" + strings.ToLower(w[4:])
	case strings.HasPrefix(w, "0x"):
		return strings.ToLower(w)
	case strings.HasPrefix(w, "eui.") || strings.HasPrefix(w, "nvme."):
		return strings.ToLower(w)
	}
	return ""
}

// vpdSerial reads the unit serial number page (0x80).
func vpdSerial(b []byte) string {
	if len(b) < 4 || b[1] != 0x80 {
		return ""
	}
	n := int(b[2])<<8 | int(b[3])
	if 4+n > len(b) {
		n = len(b) - 4
	}
	return strings.TrimSpace(strings.TrimRight(string(b[4:4+n]), "\x00"))
}

// vpdNAA reads the first NAA designator of the device identification page (0x83).
func vpdNAA(b []byte) string {
	if len(b) < 4 || b[1] != 0x83 {
		return ""
	}
	end := 4 + (int(b[2])<<8 | int(b[3]))
	if end > len(b) {
		end = len(b)
	}
	for i := 4; i+4 <= end; {
		typ := b[i+1] & 0x0f
		assoc := (b[i+1] >> 4) & 0x3
		n := int(b[i+3])
		if i+4+n > end {
			break
		}
		if typ == 3 && assoc == 0 {
			return fmt.Sprintf("0x%x", b[i+4:i+4+n])
		}
		i += 4 + n
	}
	return ""
}

// ataIdentify reads model and serial from the ATA information page (0x89),
// which carries the 512-byte IDENTIFY DEVICE data at offset 60. Strings there
// are byte-swapped 16-bit words.
func ataIdentify(b []byte) (model, serial string, ok bool) {
	if len(b) < 60+512 || b[1] != 0x89 {
		return "", "", false
	}
	id := b[60 : 60+512]
	swap := func(x []byte) string {
		out := make([]byte, len(x))
		for i := 0; i+1 < len(x); i += 2 {
			out[i], out[i+1] = x[i+1], x[i]
		}
		return strings.TrimSpace(strings.TrimRight(string(out), "\x00"))
	}
	serial, model = swap(id[20:40]), swap(id[54:94])
	return model, serial, model != "" || serial != ""
}

// usbSerial walks up from the disk to the USB device and reads its iSerial.
func usbSerial(s sysDev) string {
	for dir := s.dir; strings.HasPrefix(dir, s.sysRoot) && len(dir) > len(s.sysRoot); dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "idVendor")); err == nil {
			b, _ := os.ReadFile(filepath.Join(dir, "serial"))
			return strings.TrimSpace(string(b))
		}
	}
	return ""
}

// readMountinfo maps both "major:minor" and the mount source to mount points.
func readMountinfo(path string) (map[string][]string, error) {
	m := map[string][]string{}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		m[fields[2]] = append(m[fields[2]], mp)
		if pf := strings.Fields(post); len(pf) >= 2 && strings.HasPrefix(pf[1], "/dev/") {
			m[pf[1]] = append(m[pf[1]], mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return m, nil
}

// unescapeMount undoes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readSwaps returns the kernel names of active swap devices.
func readSwaps(path string) (map[string]bool, error) {
	m := map[string]bool{}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read swaps: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) == 0 || !strings.HasPrefix(f[0], "/dev/") {
			continue
		}
		m[filepath.Base(f[0])] = true
	}
	return m, nil
}

func listDir(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// MarkBootMedium sets BootMedium on the disk that holds dev (a disk or
// partition name or /dev path, e.g. where the medium labelled NODEINIT was
// found). It reports whether a disk was marked.
func MarkBootMedium(disks []disk.Disk, dev string) bool {
	name := strings.TrimPrefix(dev, "/dev/")
	for i := range disks {
		d := &disks[i]
		if d.Name == name {
			d.BootMedium = true
			return true
		}
		for _, p := range d.Partitions {
			if p.Name == name {
				d.BootMedium = true
				return true
			}
		}
	}
	return false
}
