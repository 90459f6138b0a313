package blackbox

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/nodeinit/nodeinit/boot"
	"github.com/nodeinit/nodeinit/crash"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/disk"
	"github.com/nodeinit/nodeinit/disk/diskio"
	"github.com/nodeinit/nodeinit/image"
	"github.com/nodeinit/nodeinit/internal/testloop"
	"golang.org/x/sys/unix"
)

// nodeView is what booting a disk would find, worked out the way the firmware,
// systemd-boot and nodeinit's boot step would: the GPT, the loader entries in
// systemd-boot's order with boot counting, the ledger, the image of the slot
// that would boot (checked against its manifest: kernel, initrd and the root
// slot's bytes), and the config partition.
type nodeView struct {
	parts   map[string]disk.Partition // by PARTLABEL
	ledger  *boot.Ledger
	entries []boot.EntryState
	// boots is the slot that ends up booting, and version its image's version;
	// both empty when nothing boots.
	boots, version string
	// why says, for each entry passed over and for a failed boot, the reason.
	why []string
	// config is every regular file of node-config (outside its snapshots),
	// path → content; nil when it could not be read.
	config map[string]string
	// snapshots are the config snapshot names.
	snapshots []string
}

func (v nodeView) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "boots=%q version=%q", v.boots, v.version)
	for _, e := range v.entries {
		fmt.Fprintf(&b, " entry=%s", e.File)
	}
	if v.ledger != nil {
		fmt.Fprintf(&b, " ledger(active=%s seq=%d", v.ledger.Active, v.ledger.Seq)
		if v.ledger.Last != nil {
			fmt.Fprintf(&b, " last=%s", v.ledger.Last.Action)
		}
		b.WriteString(")")
	}
	if len(v.why) > 0 {
		fmt.Fprintf(&b, " why=%q", v.why)
	}
	return b.String()
}

// inspector reads disk images; releases are the manifests of the bundles the
// test built, the only images that may boot.
type inspector struct {
	sector   int
	releases []*image.Manifest
	scratch  string
	// key names the content of a byte range of the image being inspected, or
	// is nil: the crash harness knows it from the write log without reading
	// (see regionKey), and the caches below are keyed by it.
	key     func(off, n int64) string
	configs map[string]configRead
	esps    map[string]espRead
	slots   map[string]slotRead
}

type espRead struct {
	esp     boot.FS
	entries []boot.EntryState
	ledger  *boot.Ledger
	why     []string
}

type slotRead struct {
	version, problem string
}

type configRead struct {
	files     map[string]string
	snapshots []string
	err       error
}

func newInspector(sector int, scratch string, bundles ...string) (*inspector, error) {
	in := &inspector{sector: sector, scratch: scratch, configs: map[string]configRead{}, esps: map[string]espRead{}, slots: map[string]slotRead{}}
	for _, b := range bundles {
		data, err := os.ReadFile(filepath.Join(b, image.ManifestName))
		if err != nil {
			return nil, err
		}
		m, err := image.ParseManifest(data)
		if err != nil {
			return nil, err
		}
		in.releases = append(in.releases, m)
	}
	return in, nil
}

// inspect works out the nodeView of the disk image at img.
func (in *inspector) inspect(img string) (nodeView, error) {
	v := nodeView{parts: map[string]disk.Partition{}}
	f, err := os.Open(img)
	if err != nil {
		return v, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return v, err
	}
	whole := &rangeBlock{f: f, size: st.Size(), sector: in.sector, name: img}
	parts, err := diskio.ReadGPTOf(whole)
	if err != nil {
		v.why = append(v.why, "no GPT: "+err.Error())
		return v, nil
	}
	for _, p := range parts {
		v.parts[p.PartLabel] = p
	}
	espPart, ok := v.parts[disk.LabelESP]
	if !ok {
		v.why = append(v.why, "no NODE-ESP partition")
		return v, nil
	}
	er := in.readESP(whole, espPart)
	v.entries, v.ledger = er.entries, er.ledger
	v.why = append(v.why, er.why...)
	if er.esp == nil {
		return v, nil
	}
	esp := er.esp
	cfg, ok := v.parts[disk.LabelConfig]
	if ok {
		r := in.readConfig(img, cfg)
		v.config, v.snapshots = r.files, r.snapshots
		if r.err != nil {
			v.why = append(v.why, "node-config unreadable: "+r.err.Error())
		}
	}
	if v.ledger == nil || v.config == nil {
		return v, nil
	}
	// systemd-boot boots the first entry in its order. A broken entry with
	// tries left is passed over after its tries run out; any other broken
	// entry first in line is a node that does not boot.
	for _, e := range v.entries {
		version, problem := in.slot(f, esp, espPart, v.parts, e.Slot)
		if problem == "" {
			v.boots, v.version = e.Slot, version
			return v, nil
		}
		v.why = append(v.why, e.File+": "+problem)
		if !e.Counting || e.TriesLeft == 0 {
			return v, nil
		}
	}
	return v, nil
}

// readESP reads the entries and the ledger, cached by the ESP's content.
func (in *inspector) readESP(whole *rangeBlock, p disk.Partition) espRead {
	key := in.cacheKey(p.StartByte, p.SizeBytes)
	if r, ok := in.esps[key]; ok && key != "" {
		return r
	}
	var r espRead
	esp, err := boot.OpenFAT(whole.sub(p))
	if err != nil {
		r.why = append(r.why, "ESP unreadable: "+err.Error())
	} else if r.entries, err = boot.Entries(esp); err != nil {
		r.why = append(r.why, "loader entries unreadable: "+err.Error())
	} else {
		r.esp = preload(esp)
		if r.ledger, err = boot.ReadLedger(esp); err != nil {
			// nodeinit's boot step refuses to boot without the ledger.
			r.why = append(r.why, "ledger unreadable: "+err.Error())
		}
	}
	if key != "" {
		in.esps[key] = r
	}
	return r
}

func (in *inspector) cacheKey(off, n int64) string {
	if in.key == nil {
		return ""
	}
	return in.key(off, n)
}

// slot is checkSlot, cached by the content of the ESP and the root slot.
func (in *inspector) slot(f *os.File, esp boot.FS, espPart disk.Partition, parts map[string]disk.Partition, slot string) (string, string) {
	key := ""
	if root, ok := parts["node-root-"+slot]; ok && in.key != nil {
		key = slot + "|" + in.key(espPart.StartByte, espPart.SizeBytes) + "|" + in.key(root.StartByte, root.SizeBytes)
	}
	if r, ok := in.slots[key]; ok && key != "" {
		return r.version, r.problem
	}
	v, p := in.checkSlot(f, esp, parts, slot)
	if key != "" {
		in.slots[key] = slotRead{v, p}
	}
	return v, p
}

// checkSlot reports the version of the slot's image when its kernel, initrd
// and manifest on the ESP and its root partition are one complete release.
func (in *inspector) checkSlot(disk0 *os.File, esp boot.FS, parts map[string]disk.Partition, slot string) (string, string) {
	dir := boot.SlotDir(slot)
	mb, err := esp.ReadFile(path.Join(dir, image.ManifestName))
	if err != nil {
		return "", "no manifest on the ESP: " + err.Error()
	}
	m, err := image.ParseManifest(mb)
	if err != nil {
		return "", "manifest on the ESP is damaged: " + err.Error()
	}
	if !slices.ContainsFunc(in.releases, func(r *image.Manifest) bool { return sameRelease(r, m) }) {
		return "", "manifest " + m.Version + " is none of the test's releases"
	}
	for _, name := range []string{image.KernelName, image.InitrdName} {
		want, _ := m.File(name)
		b, err := esp.ReadFile(path.Join(dir, name))
		if err != nil {
			return "", name + " missing: " + err.Error()
		}
		if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != want.SHA256 || int64(len(b)) != want.Size {
			return "", fmt.Sprintf("%s is not %s's (%d bytes)", name, m.Version, len(b))
		}
	}
	root, ok := parts["node-root-"+slot]
	rootFile, _ := m.File(image.RootfsName)
	if !ok || root.SizeBytes < rootFile.Size {
		return "", "no root partition for the image"
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(disk0, root.StartByte, rootFile.Size)); err != nil {
		return "", "read root slot: " + err.Error()
	}
	if hex.EncodeToString(h.Sum(nil)) != rootFile.SHA256 {
		return "", "root slot does not hold " + m.Version + "'s rootfs"
	}
	return m.Version, ""
}

func sameRelease(a, b *image.Manifest) bool {
	if a.Version != b.Version || len(a.Files) != len(b.Files) {
		return false
	}
	for i := range a.Files {
		if a.Files[i].Name != b.Files[i].Name || a.Files[i].SHA256 != b.Files[i].SHA256 {
			return false
		}
	}
	return true
}

// readConfig mounts a copy of the config partition, as the boot step would
// (the kernel replays the ext4 journal), and reads every file.
func (in *inspector) readConfig(img string, p disk.Partition) configRead {
	key := in.cacheKey(p.StartByte, p.SizeBytes)
	if r, ok := in.configs[key]; ok && key != "" {
		return r
	}
	r := in.mountConfig(img, p)
	if key != "" {
		in.configs[key] = r
	}
	return r
}

func (in *inspector) mountConfig(img string, p disk.Partition) configRead {
	cp := filepath.Join(in.scratch, "config.img")
	defer os.Remove(cp)
	if err := crash.CopyRange(cp, img, p.StartByte, p.SizeBytes); err != nil {
		return configRead{err: err}
	}
	l, err := testloop.New(cp, "-P")
	if err != nil {
		return configRead{err: err}
	}
	defer l.Detach()
	loop := l.Dev
	mnt := filepath.Join(in.scratch, "config")
	os.MkdirAll(mnt, 0o755)
	if err := unix.Mount(loop, mnt, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return configRead{err: fmt.Errorf("mount ext4: %w", err)}
	}
	defer unix.Unmount(mnt, 0)
	r := configRead{files: map[string]string{}}
	err = filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(mnt, p)
		if d.IsDir() {
			if rel == "lost+found" {
				return filepath.SkipDir
			}
			if dir, name := filepath.Split(rel); dir == ".snapshots/" || dir == "snapshots/" {
				r.snapshots = append(r.snapshots, name)
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		r.files[rel] = string(b)
		return nil
	})
	if err != nil {
		return configRead{err: err}
	}
	return r
}

// liveConfig is the config as the node sees it: the files outside snapshots.
func (v nodeView) liveConfig() map[string]string {
	out := map[string]string{}
	for k, val := range v.config {
		if strings.HasPrefix(k, ".snapshots/") || strings.HasPrefix(k, "snapshots/") {
			continue
		}
		out[k] = val
	}
	return out
}

// rangeBlock is a read-only device.Block over part of an image file.
type rangeBlock struct {
	f      *os.File
	off    int64
	size   int64
	sector int
	name   string
}

func (b *rangeBlock) sub(p disk.Partition) *rangeBlock {
	return &rangeBlock{f: b.f, off: b.off + p.StartByte, size: p.SizeBytes, sector: b.sector, name: fmt.Sprintf("%s@%d", b.name, p.StartByte)}
}

var errReadOnly = errors.New("inspector: read-only")

func (b *rangeBlock) ReadAt(p []byte, off int64) (int, error) {
	if off >= b.size {
		return 0, io.EOF
	}
	if rest := b.size - off; int64(len(p)) > rest {
		n, err := b.f.ReadAt(p[:rest], b.off+off)
		if err == nil {
			err = io.EOF
		}
		return n, err
	}
	return b.f.ReadAt(p, b.off+off)
}
func (b *rangeBlock) WriteAt([]byte, int64) (int, error) { return 0, errReadOnly }
func (b *rangeBlock) Size() int64                        { return b.size }
func (b *rangeBlock) LogicalSectorSize() int             { return b.sector }
func (b *rangeBlock) PhysicalSectorSize() int            { return b.sector }
func (b *rangeBlock) IsBlockDevice() bool                { return false }
func (b *rangeBlock) Discard(int64, int64, bool) error   { return errReadOnly }
func (b *rangeBlock) ZeroRange(int64, int64) error       { return errReadOnly }
func (b *rangeBlock) Flush() error                       { return nil }
func (b *rangeBlock) Path() string                       { return b.name }
func (b *rangeBlock) Close() error                       { return nil }

var _ device.Block = (*rangeBlock)(nil)

// preload reads every file the boot check needs from the ESP into memory, so
// that a cached espRead stays valid after its image has changed or closed.
func preload(esp boot.FS) boot.FS {
	m := &memESP{files: map[string]memFile{}}
	for _, slot := range []string{"a", "b"} {
		for _, name := range []string{image.ManifestName, image.KernelName, image.InitrdName} {
			p := path.Join(boot.SlotDir(slot), name)
			b, err := esp.ReadFile(p)
			m.files[p] = memFile{b, err}
		}
	}
	return m
}

type memFile struct {
	data []byte
	err  error
}

// memESP serves the preloaded files; it is read-only.
type memESP struct {
	boot.FS
	files map[string]memFile
}

func (m *memESP) ReadFile(name string) ([]byte, error) {
	if f, ok := m.files[name]; ok {
		return f.data, f.err
	}
	return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
}

// snapshot is the config snapshot name, path → content.
func (v nodeView) snapshot(name string) map[string]string {
	out := map[string]string{}
	for _, dir := range []string{".snapshots/", "snapshots/"} {
		prefix := dir + name + "/"
		for k, val := range v.config {
			if rest, ok := strings.CutPrefix(k, prefix); ok {
				out[rest] = val
			}
		}
	}
	return out
}
