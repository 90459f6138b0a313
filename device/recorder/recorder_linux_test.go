package recorder

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeinit/nodeinit/internal/testcmd"

	"github.com/nodeinit/nodeinit/crash"
	"github.com/nodeinit/nodeinit/device"
	"golang.org/x/sys/unix"
)

func needRoot(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (FUSE mount and loop devices)")
	}
	for _, p := range []string{"/dev/fuse", "/dev/loop-control"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("needs %s: %v", p, err)
		}
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
}

// sparseImage makes a sparse image of size bytes.
func sparseImage(t *testing.T, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func newRecorder(t *testing.T, opts Options) *Recorder {
	t.Helper()
	if opts.Disk == "" {
		opts.Disk = "/dev/vda" // a logical name: only the loop device is touched
	}
	opts.Dir = t.TempDir()
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	})
	return r
}

// run is testcmd.Run.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testcmd.Run(t, name, args...)
}

// TestBlockWriteAndFlushAreLogged writes through the mapped disk name and
// checks the write reaches the daemon with its bytes, and fsync as a flush.
func TestBlockWriteAndFlushAreLogged(t *testing.T) {
	needRoot(t)
	r := newRecorder(t, Options{Image: sparseImage(t, 8<<20)})
	b, err := r.OpenBlock("/dev/vda", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.IsBlockDevice() || b.Size() != 8<<20 || b.LogicalSectorSize() != 512 {
		t.Fatalf("opened %s: block=%v size=%d sector=%d", b.Path(), b.IsBlockDevice(), b.Size(), b.LogicalSectorSize())
	}
	data := bytes.Repeat([]byte("nodeinit"), 512) // 4 KiB
	if _, err := b.WriteAt(data, 1<<20); err != nil {
		t.Fatal(err)
	}
	before := len(r.Log().Ops)
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	ops := r.Log().Ops
	var wrote, flushed bool
	for _, op := range ops {
		switch {
		case op.Kind == crash.OpWrite && op.Off <= 1<<20 && op.Off+op.Len >= 1<<20+4096:
			wrote = bytes.Equal(op.Data[1<<20-op.Off:][:4096], data)
		case op.Kind == crash.OpFlush && wrote:
			flushed = true
		}
	}
	t.Logf("%d ops before fsync, %d after: %v", before, len(ops), ops)
	if !wrote || !flushed {
		t.Fatalf("log lacks the write (%v) or a flush after it (%v)", wrote, flushed)
	}
	// The image behind the FUSE file has the bytes too.
	img, _ := os.ReadFile(r.opts.Image)
	if !bytes.Equal(img[1<<20:1<<20+4096], data) {
		t.Error("the image does not hold the written bytes")
	}
}

// TestInjectedWriteError fails the next write and expects fsync to report it.
func TestInjectedWriteError(t *testing.T) {
	needRoot(t)
	r := newRecorder(t, Options{Image: sparseImage(t, 8<<20)})
	b, err := r.OpenBlock("/dev/vda", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	w, _ := r.Counts()
	r.FailWrite(w+1, true)
	if _, err := b.WriteAt(make([]byte, 4096), 0); err != nil {
		t.Fatal(err) // buffered: the error shows at writeback
	}
	if err := b.Flush(); !errors.Is(err, unix.EIO) {
		t.Fatalf("flush after an injected write error = %v, want EIO", err)
	}
	var marked bool
	for _, op := range r.Log().Ops {
		marked = marked || op.Kind == crash.OpMark && strings.HasPrefix(op.Name, "injected EIO")
		if op.Kind == crash.OpWrite && op.Off == 0 {
			t.Errorf("a failed write was logged as reaching the disk: %s", op)
		}
	}
	if !marked {
		t.Error("the injected error is not in the log")
	}
}

func TestEFIVarsLogged(t *testing.T) {
	needRoot(t)
	r := newRecorder(t, Options{Image: sparseImage(t, 1<<20), EFI: map[string]crash.EFIVar{"BootOrder": {Attrs: 7, Data: []byte{1, 0}}}})
	v, _ := r.EFIVars()
	if err := v.Set("Boot0001", 7, []byte("entry")); err != nil {
		t.Fatal(err)
	}
	if err := v.Remove("BootOrder"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := v.Get("BootOrder"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Get after Remove = %v, want ErrNotExist", err)
	}
	if err := r.Reboot(); err != nil || r.Reboots() != 1 {
		t.Errorf("Reboot = %v, %d reboots", err, r.Reboots())
	}
	l := r.Log()
	// Attaching the loop device may flush the empty disk; only the rest counts.
	l.Ops = slices.DeleteFunc(l.Ops, func(op crash.Op) bool { return op.Kind == crash.OpFlush })
	if len(l.Ops) != 3 || l.Ops[0].Kind != crash.OpEFISet || l.Ops[1].Kind != crash.OpEFIRemove || l.Ops[2].Name != "reboot" {
		t.Errorf("log = %v, want efi-set, efi-remove, reboot", l.Ops)
	}
	if l.EFI["BootOrder"].Attrs != 7 {
		t.Errorf("log's starting EFI store = %v", l.EFI)
	}
}

// TestExt4CrashStates is the proof that capture is complete: it records
// mke2fs on partition 2 of a GPT disk, a mount, a file written and fsynced,
// and the unmount; then it asks e2fsck about every crash state of the
// partition. Each must be either what was there before mkfs (nothing) or an
// ext4 that e2fsck finds clean once its journal is replayed.
func TestExt4CrashStates(t *testing.T) {
	needRoot(t, "sgdisk", "mke2fs", "e2fsck", "blkid")
	const size = 64 << 20
	img := sparseImage(t, size)
	run(t, "sgdisk", "-n", "1:2048:+8M", "-n", "2:0:+32M", img)
	// sgdisk's layout: partition 1 at 1 MiB (8 MiB), partition 2 right after.
	p2 := device.Partition{Number: 2, StartByte: 9 << 20, SizeBytes: 32 << 20}
	r := newRecorder(t, Options{Image: img, MountRoot: t.TempDir()})
	parts := []device.Partition{{Number: 1, StartByte: 1 << 20, SizeBytes: 8 << 20}, p2}
	if err := r.SetPartitions("/dev/vda", parts); err != nil {
		t.Fatal(err)
	}
	if err := r.WaitPartitions("/dev/vda", parts); err != nil {
		t.Fatal(err)
	}
	r.Mark("mkfs")
	if err := r.MakeFS(device.Mkfs{Path: "/dev/vda2", FS: "ext4", Label: "node-config", SectorSize: 512}); err != nil {
		t.Fatal(err)
	}
	r.Mark("mount")
	if err := r.Mount("/dev/vda2", "/mnt", "ext4", 0, ""); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(r.opts.MountRoot, "mnt")
	f, err := os.Create(filepath.Join(mnt, "hostname"))
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte("node-1\n"), 1000))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	r.Mark("umount")
	if err := r.Unmount("/mnt"); err != nil {
		t.Fatal(err)
	}
	l := r.Log()
	writes, flushes, _ := l.Counts()
	var bytesWritten int64
	for _, op := range l.Ops {
		if op.Kind == crash.OpWrite {
			bytesWritten += op.Len
		}
	}
	t.Logf("recorded %d ops: %d writes (%d KiB), %d flushes", len(l.Ops), writes, bytesWritten>>10, flushes)
	// Per phase, to show the kernel's ext4 writes are there, not only mke2fs's.
	phase, counts := "attach", map[string][2]int{}
	for _, op := range l.Ops {
		if op.Kind == crash.OpMark {
			phase = op.Name
			continue
		}
		c := counts[phase]
		switch op.Kind {
		case crash.OpWrite:
			c[0]++
		case crash.OpFlush:
			c[1]++
		}
		counts[phase] = c
	}
	t.Logf("writes/flushes by phase: %v", counts)
	for _, ph := range []string{"mkfs", "mount", "umount"} {
		if counts[ph][0] == 0 || counts[ph][1] == 0 {
			t.Errorf("phase %s logged %v writes/flushes, want both", ph, counts[ph])
		}
	}
	if writes == 0 || flushes < 2 {
		t.Fatalf("mkfs, mount, fsync and umount logged %d writes and %d flushes", writes, flushes)
	}
	// The final image must be what the log says: base plus every write.
	checkReplay(t, l, r.Base(), img)

	blank, clean, broken := judgeStates(t, l, r.Base(), p2)
	t.Logf("verdicts: %d blank, %d clean ext4, %d broken", blank, clean, broken)
	if clean == 0 || blank == 0 {
		t.Errorf("expected both pre-mkfs and ext4 states, got %d blank and %d clean", blank, clean)
	}
	if broken > 0 {
		t.Errorf("%d crash states are neither blank nor a clean ext4", broken)
	}

	// Control: without its flushes the same log must give broken states,
	// or the judge above could not tell a bad state from a good one.
	noFlush := *l
	noFlush.Ops = slices.DeleteFunc(slices.Clone(l.Ops), func(op crash.Op) bool { return op.Kind == crash.OpFlush })
	_, _, broken = judgeStates(t, &noFlush, r.Base(), p2)
	t.Logf("control without flushes: %d broken states", broken)
	if broken == 0 {
		t.Error("ignoring the flushes broke no state: the checker cannot see breakage")
	}
}

// judgeStates materializes every crash state of l and sorts partition p: blank
// (blkid finds nothing), clean ext4 (e2fsck -fn passes after the journal is
// replayed on a copy, as a mount would) or broken.
func judgeStates(t *testing.T, l *crash.Log, base string, p device.Partition) (blank, clean, broken int) {
	t.Helper()
	e := crash.New(l, crash.Options{Base: base, Dir: t.TempDir(), DropWindow: 4, MaxTears: 2})
	part := filepath.Join(t.TempDir(), "part.img")
	for st, err := range e.States() {
		if err != nil {
			t.Fatal(err)
		}
		path, err := st.Materialize()
		if err != nil {
			t.Fatal(err)
		}
		if err := crash.CopyRange(part, path, p.StartByte, p.SizeBytes); err != nil {
			t.Fatal(err)
		}
		if exec.Command("blkid", "-p", part).Run() != nil {
			blank++
			continue
		}
		exec.Command("e2fsck", "-E", "journal_only", "-y", part).Run()
		if out, err := exec.Command("e2fsck", "-fn", part).CombinedOutput(); err != nil {
			if broken++; broken <= 2 {
				t.Logf("%s: e2fsck: %v\n%.400s", st, err, out)
			}
			continue
		}
		clean++
	}
	t.Logf("crash points %d, states %d (durable/complete/alone/dropped/torn %v), duplicates %d, omitted by bounds %d, max unflushed %d",
		e.Stats.Points, e.Stats.States, e.Stats.ByKind, e.Stats.Duplicates, e.Stats.Omitted, e.Stats.MaxPending)
	return blank, clean, broken
}

// checkReplay applies every logged write to a copy of base and compares it
// with the final image: any write the log missed would show here.
func checkReplay(t *testing.T, l *crash.Log, base, final string) {
	t.Helper()
	got, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range l.Ops {
		if op.Kind != crash.OpWrite {
			continue
		}
		if op.Data == nil {
			clear(got[op.Off : op.Off+op.Len])
		} else {
			copy(got[op.Off:], op.Data)
		}
	}
	want, err := os.ReadFile(final)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("base + logged writes differs from the final image: the log missed writes")
	}
}
