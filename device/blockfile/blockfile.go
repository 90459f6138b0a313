// Package blockfile adapts a device.Block to go-diskfs' backend.Storage, so that
// go-diskfs' GPT and FAT32 code reads and writes through the device edge (and,
// in tests, through the recorder). go-diskfs only uses ReadAt and WriteAt on it;
// the sequential and OS-file methods report that they are not supported.
package blockfile

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/nodeinit/nodeinit/device"
)

// Storage returns b as a go-diskfs backend.
func Storage(b device.Block) backend.Storage { return storage{b} }

type storage struct{ b device.Block }

var errSequential = errors.New("go-diskfs backend over a device.Block: only ReadAt and WriteAt are supported")

func (s storage) Stat() (fs.FileInfo, error)               { return info{s.b}, nil }
func (s storage) Read([]byte) (int, error)                 { return 0, errSequential }
func (s storage) Close() error                             { return nil }
func (s storage) ReadAt(p []byte, off int64) (int, error)  { return s.b.ReadAt(p, off) }
func (s storage) WriteAt(p []byte, off int64) (int, error) { return s.b.WriteAt(p, off) }
func (s storage) Seek(int64, int) (int64, error)           { return 0, errSequential }
func (s storage) Sys() (*os.File, error)                   { return nil, device.ErrUnsupported }
func (s storage) Writable() (backend.WritableFile, error)  { return s, nil }
func (s storage) Path() string                             { return s.b.Path() }

type info struct{ b device.Block }

func (i info) Name() string       { return path.Base(i.b.Path()) }
func (i info) Size() int64        { return i.b.Size() }
func (i info) Mode() fs.FileMode  { return 0o600 }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return false }
func (i info) Sys() any           { return nil }

// Writable returns b as a go-diskfs writable file (what gpt.Table.Write takes).
func Writable(b device.Block) backend.WritableFile { return storage{b} }
