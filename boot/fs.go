package boot

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// FS is the ESP's filesystem as this package uses it. Names are slash-separated
// and relative to the ESP's root ("loader/entries/node-a.conf").
//
// There are two: DirFS, a mounted ESP (a running node has it at
// /run/nodeinit/esp), and OpenFAT, the partition itself read and written in this
// process through the device edge. The initramfs uses the second, so installing
// needs no vfat driver and no mount, and every write it makes reaches the disk
// through device.Block, where the crash-point harness records it.
type FS interface {
	ReadFile(name string) ([]byte, error)
	// WriteFile replaces name with data so that a power cut leaves the old or the
	// new content: a temporary file renamed over it, then flushed.
	WriteFile(name string, data []byte) error
	// Remove removes a file; one that is absent is not an error.
	Remove(name string) error
	Rename(oldname, newname string) error
	ReadDir(name string) ([]fs.DirEntry, error)
	MkdirAll(name string) error
	Stat(name string) (fs.FileInfo, error)
}

// DirFS is an ESP mounted at a directory.
type DirFS string

func (d DirFS) path(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

// ReadFile reads name.
func (d DirFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(d.path(name)) }

// WriteFile replaces name with data: temp file, fsync, rename, fsync the directory.
func (d DirFS) WriteFile(name string, data []byte) error {
	return writeFileAtomic(d.path(name), data, 0o644)
}

// Remove removes name; absent is not an error.
func (d DirFS) Remove(name string) error {
	if err := os.Remove(d.path(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return syncDir(filepath.Dir(d.path(name)))
}

// Rename renames oldname to newname and makes it durable.
func (d DirFS) Rename(oldname, newname string) error {
	if err := os.Rename(d.path(oldname), d.path(newname)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(d.path(newname)))
}

// ReadDir lists name.
func (d DirFS) ReadDir(name string) ([]fs.DirEntry, error) { return os.ReadDir(d.path(name)) }

// MkdirAll makes name and its parents.
func (d DirFS) MkdirAll(name string) error { return os.MkdirAll(d.path(name), 0o755) }

// Stat describes name.
func (d DirFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(d.path(name)) }

// clean makes a name relative and slash-separated.
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(name)), "/")
}

// copyInto copies the local file src onto the ESP as name.
func copyInto(esp FS, src, name string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if old, err := esp.ReadFile(name); err == nil && string(old) == string(data) {
		return nil
	}
	if err := esp.MkdirAll(path.Dir(name)); err != nil {
		return err
	}
	return esp.WriteFile(name, data)
}
