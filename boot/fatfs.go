package boot

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/nodeinit/nodeinit/device"
	"github.com/nodeinit/nodeinit/device/blockfile"
)

// FAT is an ESP read and written in this process with go-diskfs, on the partition
// opened through the device edge. Every change is flushed to the device before
// the call returns.
//
// go-diskfs quirks handled here, and only here: File.Read can return bytes past
// the file's size; ReadDir, Stat and Remove want
// io/fs names while OpenFile wants a leading slash; Rename does not replace an
// existing target, so a replace removes the target first (the temporary file
// already holds the new content, so a power cut in between leaves one of them:
// readers fall back to the temporary, see ReadFile). Its two write defects are
// worked around in fatfix.go.
type FAT struct {
	fs  *fat32.FileSystem
	dev device.Block
}

// OpenFAT opens the FAT32 filesystem on the partition b (the whole Block).
// The first FAT is the one that counts, as for Linux and the firmware: a power
// cut between the writes of the two copies leaves them different, and the
// filesystem must still open (see firstFAT).
func OpenFAT(b device.Block) (*FAT, error) {
	f := &FAT{dev: b}
	g, err := f.geometry()
	if err != nil {
		return nil, err
	}
	// Only the changed sectors of the FATs are written; see fatShadow.
	if f.dev, err = shadowFAT(b, g); err != nil {
		return nil, err
	}
	dev := f.firstFAT(g)
	// go-diskfs writes a file one cluster at a time; see blockfile.Coalesce.
	f.dev = blockfile.Coalesce(dev, blockfile.DefaultCoalesce)
	if f.fs, err = fat32.Read(blockfile.Storage(f.dev), b.Size(), 0, int64(b.LogicalSectorSize())); err != nil {
		return nil, fmt.Errorf("read FAT32 on %s: %w", b.Path(), err)
	}
	return f, nil
}

func abs(name string) string { return "/" + clean(name) }

// rel is the io/fs form go-diskfs' ReadDir and Remove want: "." for the root.
func rel(name string) string {
	if n := clean(name); n != "" {
		return n
	}
	return "."
}

// ReadFile reads name. When name is missing but its replacement's temporary
// file exists (a power cut between removing the old file and renaming the new
// one), the temporary is the new content and is returned.
func (f *FAT) ReadFile(name string) ([]byte, error) {
	b, err := f.read(name)
	if errors.Is(err, fs.ErrNotExist) {
		if tb, terr := f.read(tmpName(name)); terr == nil {
			return tb, nil
		}
	}
	return b, err
}

func (f *FAT) read(name string) ([]byte, error) {
	st, err := f.Stat(name)
	if err != nil {
		return nil, err
	}
	fh, err := f.fs.OpenFile(abs(name), os.O_RDONLY)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	defer fh.Close()
	// go-diskfs can read past the size in the directory entry, up to the end of
	// a sector; the directory entry is the file's size.
	b, err := io.ReadAll(io.LimitReader(fh, st.Size()))
	if err == nil && int64(len(b)) != st.Size() {
		err = fmt.Errorf("read %s: %d of %d bytes", name, len(b), st.Size())
	}
	return b, err
}

func tmpName(name string) string {
	dir, base := path.Split(clean(name))
	return dir + "~" + base
}

// WriteFile writes data to a temporary file, flushes, then replaces name with it.
func (f *FAT) WriteFile(name string, data []byte) error {
	name = clean(name)
	if err := f.MkdirAll(path.Dir(name)); err != nil {
		return err
	}
	tmp := tmpName(name)
	if err := f.removeIfExists(tmp); err != nil {
		return err
	}
	fh, err := f.fs.OpenFile(abs(tmp), os.O_CREATE|os.O_RDWR)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := fh.Write(data); err != nil {
		fh.Close()
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := f.dev.Flush(); err != nil {
		return fmt.Errorf("flush %s: %w", f.dev.Path(), err)
	}
	if err := f.removeIfExists(name); err != nil {
		return err
	}
	return f.Rename(tmp, name)
}

func (f *FAT) removeIfExists(name string) error {
	if _, err := f.Stat(name); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	chain, err := f.chainOf(name)
	if err != nil {
		return err
	}
	if err := f.fs.Remove(rel(name)); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	if err := f.dev.Flush(); err != nil {
		return fmt.Errorf("flush %s: %w", f.dev.Path(), err)
	}
	// A power cut here leaves the clusters allocated but unreferenced: lost
	// space that fsck reclaims, never a file pointing at freed clusters.
	return f.freeClusters(chain)
}

// Remove removes name; absent is not an error.
func (f *FAT) Remove(name string) error {
	if err := f.removeIfExists(name); err != nil {
		return err
	}
	return f.dev.Flush()
}

// Rename renames oldname to newname, which must not exist.
func (f *FAT) Rename(oldname, newname string) error {
	if err := f.fs.Rename(abs(oldname), abs(newname)); err != nil {
		return fmt.Errorf("rename %s to %s: %w", oldname, newname, err)
	}
	return f.dev.Flush()
}

// ReadDir lists name.
func (f *FAT) ReadDir(name string) ([]fs.DirEntry, error) {
	if _, err := f.Stat(name); err != nil {
		return nil, err
	}
	des, err := f.fs.ReadDir(rel(name))
	if err != nil {
		return nil, fmt.Errorf("read directory %s: %w", name, err)
	}
	return des, nil
}

// MkdirAll makes name and its parents.
func (f *FAT) MkdirAll(name string) error {
	name = clean(name)
	if name == "" || name == "." {
		return nil
	}
	if st, err := f.Stat(name); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("mkdir %s: a file is in the way", name)
		}
		return nil
	}
	if err := f.fs.Mkdir(abs(name)); err != nil {
		return fmt.Errorf("mkdir %s: %w", name, err)
	}
	if err := f.dev.Flush(); err != nil {
		return err
	}
	return f.fixDotDot()
}

// Stat describes name; a missing one wraps fs.ErrNotExist.
func (f *FAT) Stat(name string) (fs.FileInfo, error) {
	name = clean(name)
	if name == "" || name == "." {
		return rootInfo{}, nil
	}
	dir, base := path.Split(name)
	des, err := f.fs.ReadDir(rel(dir))
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
	}
	for _, de := range des {
		if strings.EqualFold(de.Name(), base) {
			return de.Info()
		}
	}
	return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrNotExist}
}

type rootInfo struct{}

func (rootInfo) Name() string       { return "/" }
func (rootInfo) Size() int64        { return 0 }
func (rootInfo) Mode() fs.FileMode  { return fs.ModeDir | 0o755 }
func (rootInfo) ModTime() time.Time { return time.Time{} }
func (rootInfo) IsDir() bool        { return true }
func (rootInfo) Sys() any           { return nil }
