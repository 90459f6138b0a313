package recorder

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/nodeinit/nodeinit/crash"
	"golang.org/x/sys/unix"
)

// journal is the op log and the fault plan, shared by the FUSE file and the
// EFI store so that their ops are ordered as they completed.
type journal struct {
	mu      sync.Mutex
	ops     []crash.Op
	writes  int // writes attempted, failed included
	flushes int // flushes attempted, failed included

	failWrite  int  // 1-based write that fails; 0 none
	failSticky bool // and every later one
	failFlush  func(n int) bool
}

func (j *journal) add(op crash.Op) {
	j.mu.Lock()
	j.ops = append(j.ops, op)
	j.mu.Unlock()
}

// diskFile is the one file of the FUSE filesystem: the disk image. Every
// write is applied to the backing image and logged before it is acknowledged,
// so the log holds exactly the writes the loop device saw complete, in the
// order they completed.
type diskFile struct {
	fs.Inode
	j    *journal
	img  *os.File
	size int64
	// io keeps reads from seeing a write half applied.
	io sync.RWMutex
}

var (
	_ fs.NodeWriter    = (*diskFile)(nil)
	_ fs.NodeFsyncer   = (*diskFile)(nil)
	_ fs.NodeAllocater = (*diskFile)(nil)
	_ fs.NodeOnAdder   = (*fuseRoot)(nil)
)

func (f *diskFile) attr(out *fuse.Attr) {
	out.Mode = syscall.S_IFREG | 0o600
	out.Size = uint64(f.size)
	out.Blocks = uint64(f.size) / 512
	out.Blksize = 4096
	out.Nlink = 1
}

func (f *diskFile) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	f.attr(&out.Attr)
	return 0
}

func (f *diskFile) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	return 0, syscall.ENODATA
}

// Setattr refuses to resize: a disk has a fixed size.
func (f *diskFile) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if sz, ok := in.GetSize(); ok && int64(sz) != f.size {
		return syscall.EPERM
	}
	f.attr(&out.Attr)
	return 0
}

// Open keeps the kernel's page cache across opens (nothing else changes the
// image), and never asks for writeback caching: write-through is what keeps
// the daemon's order the block layer's order.
func (f *diskFile) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_KEEP_CACHE, 0
}

func (f *diskFile) Release(ctx context.Context, fh fs.FileHandle) syscall.Errno { return 0 }

func (f *diskFile) Read(ctx context.Context, fh fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	f.io.RLock()
	defer f.io.RUnlock()
	if off >= f.size {
		return fuse.ReadResultData(nil), 0
	}
	n, err := f.img.ReadAt(dest[:min(int64(len(dest)), f.size-off)], off)
	if err != nil && n == 0 {
		return nil, syscall.EIO
	}
	return fuse.ReadResultData(dest[:n]), 0
}

func (f *diskFile) Write(ctx context.Context, fh fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if off < 0 || off+int64(len(data)) > f.size {
		return 0, syscall.ENOSPC
	}
	f.io.Lock()
	defer f.io.Unlock()
	j := f.j
	j.mu.Lock()
	defer j.mu.Unlock()
	j.writes++
	if j.failWrite > 0 && (j.writes == j.failWrite || j.failSticky && j.writes > j.failWrite) {
		j.ops = append(j.ops, crash.Op{Kind: crash.OpMark, Off: off, Len: int64(len(data)),
			Name: fmt.Sprintf("injected EIO: write %d [%d, +%d)", j.writes, off, len(data))})
		return 0, syscall.EIO
	}
	if _, err := f.img.WriteAt(data, off); err != nil {
		return 0, syscall.EIO
	}
	// go-fuse reuses data's buffer once Write returns.
	j.ops = append(j.ops, crash.Op{Kind: crash.OpWrite, Off: off, Len: int64(len(data)), Data: append([]byte(nil), data...)})
	return uint32(len(data)), 0
}

// Fsync is the loop device's cache flush (REQ_OP_FLUSH, and the flush that
// the block layer adds around a FUA write, which loop does not support).
func (f *diskFile) Fsync(ctx context.Context, fh fs.FileHandle, flags uint32) syscall.Errno {
	j := f.j
	j.mu.Lock()
	defer j.mu.Unlock()
	j.flushes++
	if j.failFlush != nil && j.failFlush(j.flushes) {
		j.ops = append(j.ops, crash.Op{Kind: crash.OpMark, Name: fmt.Sprintf("injected EIO: flush %d", j.flushes)})
		return syscall.EIO
	}
	j.ops = append(j.ops, crash.Op{Kind: crash.OpFlush})
	return 0
}

// Flush is sent on every close(2) of the file. It is not a durability
// barrier (close does not flush a disk's cache), so it is not logged.
func (f *diskFile) Flush(ctx context.Context, fh fs.FileHandle) syscall.Errno { return 0 }

// Allocate serves the loop device's discard (punch hole) and write-zeroes
// (zero range): both make the range read back as zeroes on this disk, so both
// are logged as writes of zeroes. Plain preallocation changes nothing.
func (f *diskFile) Allocate(ctx context.Context, fh fs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	if mode&(unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_ZERO_RANGE) == 0 {
		return 0
	}
	if int64(off+size) > f.size {
		size = uint64(f.size) - off
	}
	f.io.Lock()
	defer f.io.Unlock()
	j := f.j
	j.mu.Lock()
	defer j.mu.Unlock()
	j.writes++
	if j.failWrite > 0 && (j.writes == j.failWrite || j.failSticky && j.writes > j.failWrite) {
		j.ops = append(j.ops, crash.Op{Kind: crash.OpMark, Name: fmt.Sprintf("injected EIO: zero %d [%d, +%d)", j.writes, off, size)})
		return syscall.EIO
	}
	if err := unix.Fallocate(int(f.img.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, int64(off), int64(size)); err != nil {
		return syscall.EIO
	}
	j.ops = append(j.ops, crash.Op{Kind: crash.OpWrite, Off: int64(off), Len: int64(size)})
	return 0
}

// fuseRoot is the filesystem's root directory, holding only the disk file.
type fuseRoot struct {
	fs.Inode
	file *diskFile
}

func (r *fuseRoot) OnAdd(ctx context.Context) {
	ch := r.NewPersistentInode(ctx, r.file, fs.StableAttr{Mode: syscall.S_IFREG, Ino: 2})
	r.AddChild(diskFileName, ch, false)
}

func (r *fuseRoot) Getattr(ctx context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFDIR | 0o700
	return 0
}

func (r *fuseRoot) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno { return 0 }

func (r *fuseRoot) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if ch := r.GetChild(name); ch != nil {
		r.file.attr(&out.Attr)
		return ch, 0
	}
	return nil, syscall.ENOENT
}

func (r *fuseRoot) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	return fs.NewListDirStream([]fuse.DirEntry{{Name: diskFileName, Mode: syscall.S_IFREG, Ino: 2}}), 0
}

func (r *fuseRoot) Opendir(ctx context.Context) syscall.Errno { return 0 }

func (r *fuseRoot) Access(ctx context.Context, mask uint32) syscall.Errno { return 0 }

const diskFileName = "disk.img"
