package recorder

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/nodeinit/nodeinit/crash"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/device/linuxdev"
	"github.com/nodeinit/nodeinit/disk"
	"golang.org/x/sys/unix"
)

// Options describe the disk a Recorder serves.
type Options struct {
	// Image is the disk image file to serve. Its contents when New is
	// called are the log's base (copied to Recorder.Base). Its size must be
	// a multiple of SectorSize. The recorder writes it.
	Image string
	// Disk is the name the stages use for the disk, such as "/dev/vda";
	// it and its partition names (disk.PartitionPath) are mapped to the
	// loop device. Empty means the loop device's own name.
	Disk string
	// SectorSize is the loop device's logical sector size; 0 means 512.
	SectorSize int
	// MountRoot, when set, puts every Mount and Unmount target under it,
	// so /run/nodeinit/esp becomes MountRoot/run/nodeinit/esp (created).
	MountRoot string
	// Dir holds the FUSE mount point and the base copy; empty means
	// os.TempDir().
	Dir string
	// EFI is the EFI variable store at the start.
	EFI map[string]crash.EFIVar
}

// Recorder is a device.Machine whose one disk is Options.Image, reached by
// the kernel through a loop device on a FUSE file, so every write and flush
// that reaches the disk is logged. Close it (t.Cleanup) even when a test
// fails: it holds a loop device and a FUSE mount.
type Recorder struct {
	linux linuxdev.Machine
	opts  Options
	j     *journal
	size  int64

	dir    string
	base   string
	server *fuse.Server
	loop   string
	loopF  *os.File
	file   *diskFile

	mu       sync.Mutex
	mounts   []string // targets mounted through the recorder, to undo on Close
	efi      map[string]crash.EFIVar
	reboots  int
	poweroff int
}

var _ device.Machine = (*Recorder)(nil)

// New serves opts.Image through FUSE, attaches a loop device to it and starts
// logging. It needs root and /dev/fuse.
func New(opts Options) (_ *Recorder, err error) {
	if opts.SectorSize == 0 {
		opts.SectorSize = 512
	}
	img, err := os.OpenFile(opts.Image, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	st, err := img.Stat()
	if err != nil {
		img.Close()
		return nil, fmt.Errorf("recorder: %w", err)
	}
	if st.Size() == 0 || st.Size()%int64(opts.SectorSize) != 0 {
		img.Close()
		return nil, fmt.Errorf("recorder: %s is %d bytes, not a positive multiple of %d", opts.Image, st.Size(), opts.SectorSize)
	}
	r := &Recorder{opts: opts, j: &journal{}, size: st.Size(), efi: maps.Clone(opts.EFI)}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.dir, err = os.MkdirTemp(opts.Dir, "recorder-"); err != nil {
		img.Close()
		return nil, fmt.Errorf("recorder: %w", err)
	}
	r.base = filepath.Join(r.dir, "base.img")
	if err := crash.CopySparse(r.base, opts.Image); err != nil {
		img.Close()
		return nil, fmt.Errorf("recorder: keep the base image: %w", err)
	}
	mnt := filepath.Join(r.dir, "fuse")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		img.Close()
		return nil, fmt.Errorf("recorder: %w", err)
	}
	r.file = &diskFile{j: r.j, img: img, size: r.size}
	hour := time.Hour
	r.server, err = gofs.Mount(mnt, &fuseRoot{file: r.file}, &gofs.Options{
		EntryTimeout: &hour,
		AttrTimeout:  &hour,
		MountOptions: fuse.MountOptions{
			DirectMountStrict: true, // root: mount(2) itself, no fusermount binary
			AllowOther:        true,
			FsName:            "nodeinit-recorder",
			Name:              "nodeinit-recorder",
			MaxWrite:          1 << 20,
			DisableXAttrs:     true,
		},
	})
	if err != nil {
		img.Close()
		return nil, fmt.Errorf("recorder: mount FUSE on %s: %w", mnt, err)
	}
	if r.loop, r.loopF, err = attachLoop(filepath.Join(mnt, diskFileName), opts.SectorSize); err != nil {
		return nil, fmt.Errorf("recorder: %w", err)
	}
	if r.opts.Disk == "" {
		r.opts.Disk = r.loop
	}
	return r, nil
}

// attachLoop attaches a free loop device to file with buffered I/O (not
// direct I/O, so the loop goes through the FUSE file's write-through path),
// partitions allowed (BLKPG) and autoclear, so the device goes away with its
// last opener even when the test process dies.
func attachLoop(file string, sectorSize int) (string, *os.File, error) {
	backing, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open the FUSE disk: %w", err)
	}
	defer backing.Close()
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, fmt.Errorf("attach loop device: %w", err)
	}
	defer ctl.Close()
	var lastErr error
	// Another process may take the free device between GET_FREE and
	// CONFIGURE (EBUSY), so try a few times.
	for range 10 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("attach loop device: LOOP_CTL_GET_FREE: %w", err)
		}
		path := fmt.Sprintf("/dev/loop%d", n)
		f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			lastErr = err
			continue
		}
		cfg := unix.LoopConfig{Fd: uint32(backing.Fd())}
		cfg.Info.Flags = unix.LO_FLAGS_PARTSCAN | unix.LO_FLAGS_AUTOCLEAR
		cfg.Size = uint32(sectorSize) // LOOP_CONFIGURE's block_size
		if err := unix.IoctlLoopConfigure(int(f.Fd()), &cfg); err != nil {
			f.Close()
			lastErr = fmt.Errorf("LOOP_CONFIGURE %s: %w", path, err)
			continue
		}
		return path, f, nil
	}
	return "", nil, fmt.Errorf("attach loop device: %w", lastErr)
}

// Loop is the loop device serving the disk (/dev/loopN).
func (r *Recorder) Loop() string { return r.loop }

// Base is a copy of the image as it was before anything was logged.
func (r *Recorder) Base() string { return r.base }

// Log returns the log so far (the ops' data is shared and must not be
// modified).
func (r *Recorder) Log() *crash.Log {
	r.j.mu.Lock()
	defer r.j.mu.Unlock()
	return &crash.Log{Size: r.size, EFI: maps.Clone(r.opts.EFI), Ops: slices.Clone(r.j.ops)}
}

// Mark adds a note to the log (a stage boundary, say); it is not a crash point.
func (r *Recorder) Mark(text string) { r.j.add(crash.Op{Kind: crash.OpMark, Name: text}) }

// FailWrite makes the n-th write (1-based, counted from New, discards and
// failed writes included) fail with EIO, and every later one too when sticky.
// 0 turns it off.
func (r *Recorder) FailWrite(n int, sticky bool) {
	r.j.mu.Lock()
	r.j.failWrite, r.j.failSticky = n, sticky
	r.j.mu.Unlock()
}

// FailFlush makes each flush for which fail(n) is true (n 1-based, counted
// from New) fail with EIO; nil turns it off.
func (r *Recorder) FailFlush(fail func(n int) bool) {
	r.j.mu.Lock()
	r.j.failFlush = fail
	r.j.mu.Unlock()
}

// Counts returns how many writes and flushes reached the disk, failed ones
// included.
func (r *Recorder) Counts() (writes, flushes int) {
	r.j.mu.Lock()
	defer r.j.mu.Unlock()
	return r.j.writes, r.j.flushes
}

// Reboots and PowerOffs count the calls to Reboot and PowerOff.
func (r *Recorder) Reboots() int   { r.mu.Lock(); defer r.mu.Unlock(); return r.reboots }
func (r *Recorder) PowerOffs() int { r.mu.Lock(); defer r.mu.Unlock(); return r.poweroff }

// devPath maps the stages' name for the disk or one of its partitions to the
// loop device; any other path is returned as is.
func (r *Recorder) devPath(path string) string {
	if path == r.opts.Disk {
		return r.loop
	}
	for n := 1; n <= 128; n++ {
		if path == disk.PartitionPath(r.opts.Disk, n) {
			return disk.PartitionPath(r.loop, n)
		}
	}
	return path
}

func (r *Recorder) target(path string) (string, error) {
	if r.opts.MountRoot == "" {
		return path, nil
	}
	t := filepath.Join(r.opts.MountRoot, path)
	if err := os.MkdirAll(t, 0o755); err != nil {
		return "", fmt.Errorf("mount target %s: %w", path, err)
	}
	return t, nil
}

// OpenBlock opens the mapped path through linuxdev.
func (r *Recorder) OpenBlock(path string, sectorSize int) (device.Block, error) {
	return r.linux.OpenBlock(r.devPath(path), sectorSize)
}

// OpenBlockReadOnly opens the mapped path through linuxdev.
func (r *Recorder) OpenBlockReadOnly(path string, sectorSize int) (device.Block, error) {
	return r.linux.OpenBlockReadOnly(r.devPath(path), sectorSize)
}

// Lock flocks the loop device.
func (r *Recorder) Lock(path string) (func() error, error) { return r.linux.Lock(r.devPath(path)) }

// SetPartitions adds the partitions to the loop device (BLKPG).
func (r *Recorder) SetPartitions(path string, parts []device.Partition) error {
	return r.linux.SetPartitions(r.devPath(path), parts)
}

// WaitPartitions waits for the loop device's partition nodes.
func (r *Recorder) WaitPartitions(path string, parts []device.Partition) error {
	return r.linux.WaitPartitions(r.devPath(path), parts)
}

// MakeFS runs the real mkfs on the mapped path, so its writes are logged.
func (r *Recorder) MakeFS(req device.Mkfs) error {
	req.Path = r.devPath(req.Path)
	return r.linux.MakeFS(req)
}

// Mount mounts the mapped source for real, under MountRoot when set.
func (r *Recorder) Mount(source, target, fstype string, flags uintptr, data string) error {
	t, err := r.target(target)
	if err != nil {
		return err
	}
	if err := r.linux.Mount(r.devPath(source), t, fstype, flags, data); err != nil {
		return err
	}
	r.mu.Lock()
	r.mounts = append(r.mounts, t)
	r.mu.Unlock()
	return nil
}

// Unmount unmounts target (under MountRoot when set).
func (r *Recorder) Unmount(target string) error {
	t := target
	if r.opts.MountRoot != "" {
		t = filepath.Join(r.opts.MountRoot, target)
	}
	if err := r.linux.Unmount(t); err != nil {
		return err
	}
	r.mu.Lock()
	if i := slices.Index(r.mounts, t); i >= 0 {
		r.mounts = slices.Delete(r.mounts, i, i+1)
	}
	r.mu.Unlock()
	return nil
}

// SyncAll is sync(2).
func (r *Recorder) SyncAll() { r.linux.SyncAll() }

// EFIVars is an in-memory store whose every change is logged, in order with
// the disk's writes.
func (r *Recorder) EFIVars() (device.EFIVars, error) { return efiStore{r}, nil }

// Reboot is logged and returns nil.
func (r *Recorder) Reboot() error {
	r.mu.Lock()
	r.reboots++
	r.mu.Unlock()
	r.Mark("reboot")
	return nil
}

// PowerOff is logged and returns nil.
func (r *Recorder) PowerOff() error {
	r.mu.Lock()
	r.poweroff++
	r.mu.Unlock()
	r.Mark("poweroff")
	return nil
}

// Close unmounts what was mounted through the recorder, detaches the loop
// device and unmounts the FUSE filesystem. It is safe to call more than once.
func (r *Recorder) Close() error {
	var errs []error
	r.mu.Lock()
	mounts := r.mounts
	r.mounts = nil
	r.mu.Unlock()
	for i := len(mounts) - 1; i >= 0; i-- {
		if err := unix.Unmount(mounts[i], 0); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mounts[i], err))
		}
	}
	if r.loopF != nil {
		// LOOP_CLR_FD detaches now, or (autoclear) when the last opener closes.
		unix.IoctlSetInt(int(r.loopF.Fd()), unix.LOOP_CLR_FD, 0)
		r.loopF.Close()
		r.loopF = nil
		if err := waitDetached(r.loop); err != nil {
			errs = append(errs, err)
		}
	}
	if r.server != nil {
		var err error
		for range 50 {
			if err = r.server.Unmount(); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			// Still busy: detach it so nothing is left mounted, and say so.
			errs = append(errs, fmt.Errorf("unmount FUSE: %w", err))
			unix.Unmount(filepath.Join(r.dir, "fuse"), unix.MNT_DETACH)
		}
		r.server = nil
	}
	if r.file != nil {
		r.file.img.Close()
		r.file = nil
	}
	if r.dir != "" {
		os.RemoveAll(r.dir)
		r.dir = ""
	}
	if len(errs) > 0 {
		return fmt.Errorf("close recorder: %w", errors.Join(errs...))
	}
	return nil
}

// waitDetached waits for the loop device to lose its backing file.
func waitDetached(loop string) error {
	sys := filepath.Join("/sys/block", filepath.Base(loop), "loop")
	for range 100 {
		if _, err := os.Stat(sys); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("detach %s: still attached (is a partition mounted or open?)", loop)
}

// efiStore is device.EFIVars in memory. A change is durable once it returns,
// as with firmware, so it is logged as its own crash point.
type efiStore struct{ r *Recorder }

func (s efiStore) Get(name string) (uint32, []byte, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	v, ok := s.r.efi[name]
	if !ok {
		return 0, nil, fmt.Errorf("EFI variable %s: %w", name, fs.ErrNotExist)
	}
	return v.Attrs, slices.Clone(v.Data), nil
}

func (s efiStore) Set(name string, attrs uint32, data []byte) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if s.r.efi == nil {
		s.r.efi = map[string]crash.EFIVar{}
	}
	data = slices.Clone(data)
	s.r.efi[name] = crash.EFIVar{Attrs: attrs, Data: data}
	s.r.j.add(crash.Op{Kind: crash.OpEFISet, Name: name, Attrs: attrs, Data: data})
	return nil
}

func (s efiStore) Remove(name string) error {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	if _, ok := s.r.efi[name]; !ok {
		return fmt.Errorf("remove EFI variable %s: %w", name, fs.ErrNotExist)
	}
	delete(s.r.efi, name)
	s.r.j.add(crash.Op{Kind: crash.OpEFIRemove, Name: name})
	return nil
}

func (s efiStore) List() ([]string, error) {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	return slices.Sorted(maps.Keys(s.r.efi)), nil
}
