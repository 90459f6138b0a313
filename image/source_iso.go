package image

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// ISO 9660 geometry. Every image made by `nodeinit mkmedia iso`, and every
// other CD image, has 2048-byte logical blocks; its first volume descriptor
// is at block 16, with the standard identifier "CD001" at byte 1.
const (
	isoBlock      = 2048
	isoVDOffset   = 16 * isoBlock
	isoHeaderSize = isoVDOffset + isoBlock // enough to recognise and size an image
)

// isoHeader is what the first volume descriptor of an image says.
type isoHeader struct {
	// size is the volume's size in bytes from the primary volume descriptor,
	// 0 when the first descriptor is not the primary one. An isohybrid image
	// may be longer (padding), never shorter.
	size int64
}

// parseISOHeader recognises an ISO 9660 image by its first isoHeaderSize
// bytes (fewer when the file is shorter); ok is false when it is not one.
func parseISOHeader(head []byte) (h isoHeader, ok bool) {
	if len(head) < isoHeaderSize || string(head[isoVDOffset+1:isoVDOffset+6]) != "CD001" {
		return h, false
	}
	vd := head[isoVDOffset:]
	if vd[0] == 1 { // primary: volume space size at 80, logical block size at 128 (little-endian halves)
		h.size = int64(binary.LittleEndian.Uint32(vd[80:])) * int64(binary.LittleEndian.Uint16(vd[128:]))
	}
	return h, true
}

// sniffISO reads the header of the image in r, named iso in messages, and
// refuses anything that is not an ISO 9660 image.
func sniffISO(r io.ReaderAt, iso string) (isoHeader, error) {
	head := make([]byte, isoHeaderSize)
	n, err := r.ReadAt(head, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return isoHeader{}, newError("open image source", iso, err, "check that the ISO file is readable")
	}
	h, ok := parseISOHeader(head[:n])
	if !ok {
		return h, notISOError(iso, n)
	}
	return h, nil
}

// isoSource reads a bundle straight out of an ISO 9660 image: a file such as
// the one `nodeinit mkmedia iso` writes, or one received on standard input
// (Spool). Nothing is mounted, so it works where the kernel has no iso9660
// driver and in tests; go-diskfs reads the directories.
type isoSource struct {
	name   string // the source as the operator wrote it, for messages
	iso    string // the image: its path, or "standard input"
	f      *os.File
	size   int64
	dir    string // the bundle's directory inside the image, "" for its root
	closer func() error

	mu   sync.Mutex // go-diskfs' reader is not documented as safe for concurrent use
	fsys *iso9660.FileSystem
}

// openISOFileSource handles a path that is, or lies below, a regular file:
// "node.iso" or "node.iso/sub/dir", the second naming the bundle's directory
// inside the image as label:NAME/sub/dir names it on a medium. ok is false
// when no part of spec is a regular file, and spec is then a directory path.
func openISOFileSource(spec string) (src Source, ok bool, err error) {
	p := filepath.Clean(spec)
	for {
		st, err := os.Stat(p)
		if err == nil {
			if !st.Mode().IsRegular() {
				return nil, false, nil
			}
			break
		}
		parent := filepath.Dir(p)
		if parent == p {
			return nil, false, nil
		}
		p = parent
	}
	sub, _ := filepath.Rel(p, filepath.Clean(spec))
	f, err := os.Open(p)
	if err != nil {
		return nil, true, newError("open image source", p, err, "check that the ISO file is readable")
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, true, newError("open image source", p, err, "check that the ISO file is readable")
	}
	s, err := newISOSource(f, st.Size(), p, filepath.ToSlash(sub), spec)
	if err != nil {
		f.Close()
		return nil, true, err
	}
	s.closer = f.Close
	return s, true, nil
}

// newISOSource opens the bundle in directory sub ("." or "" for the root) of
// the size-byte ISO image in f; iso names the image and name the source in
// messages. Closing the source leaves f open.
func newISOSource(f *os.File, size int64, iso, sub, name string) (*isoSource, error) {
	h, err := sniffISO(f, iso)
	if err != nil {
		return nil, err
	}
	if h.size > size {
		return nil, truncatedISOError(iso, size, h.size)
	}
	fsys, err := iso9660.Read(file.New(f, true), size, 0, isoBlock)
	if err != nil {
		return nil, newError("open image source", iso, fmt.Errorf("unreadable ISO 9660 filesystem: %w", err),
			"the image is damaged: copy or download it again, or rebuild it with `nodeinit mkmedia iso`")
	}
	s := &isoSource{name: name, iso: iso, f: f, size: size, fsys: fsys}
	if sub = path.Clean("/" + sub)[1:]; sub != "" {
		st, err := fsys.Stat(sub)
		if err != nil || !st.IsDir() {
			return nil, newError("open image source", name, fmt.Errorf("%s holds no directory /%s", iso, sub),
				"name a directory inside the ISO that holds manifest.json, or just the ISO for the bundle at its root")
		}
		s.dir = sub
	}
	if _, err := fsys.Stat(s.path(ManifestName)); err != nil {
		return nil, s.noBundleError()
	}
	return s, nil
}

// path is name's path inside the image.
func (s *isoSource) path(name string) string {
	if s.dir == "" {
		return name
	}
	return s.dir + "/" + name
}

// Open streams name from the image. go-diskfs finds the file's directory
// record, but its File.Read is not used for the bytes: when the image is
// shorter than the record says (a truncated download), Read ignores the short
// read and returns stale buffer bytes as data. An ISO 9660 file is one
// contiguous extent, so an io.SectionReader over the image at the extent's
// block reads the same bytes, streams them without holding the file in memory,
// and reports a short image as io.ErrUnexpectedEOF; the extent is checked
// against the image's size first, so that a truncated image is named as such.
// (A file of 4 GiB or more spans several extents, ISO level 3; go-diskfs shows
// only the first, and the bundle refuses the size that differs from the manifest.)
func (s *isoSource) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	f, err := s.fsys.Open(s.path(name))
	s.mu.Unlock()
	if err != nil {
		return nil, 0, fmt.Errorf("open %s in %s: %w", name, s.name, err)
	}
	defer f.Close()
	extent, isFile := f.(interface{ Location() uint32 })
	st, err := f.Stat()
	if err != nil || !isFile || st.IsDir() {
		return nil, 0, fmt.Errorf("open %s in %s: not a regular file: %w", name, s.name, fs.ErrInvalid)
	}
	start, size := int64(extent.Location())*isoBlock, st.Size()
	if start+size > s.size {
		return nil, 0, truncatedISOError(s.iso, s.size, start+size)
	}
	return io.NopCloser(io.NewSectionReader(s.f, start, size)), size, nil
}

func (s *isoSource) Cleartext() bool { return false }
func (s *isoSource) String() string  { return s.name }

func (s *isoSource) Close() error {
	if s.closer == nil {
		return nil
	}
	return s.closer()
}

// noBundleError says that the bundle directory has no manifest.json, and
// names the directories one level below that do, if any.
func (s *isoSource) noBundleError() error {
	where := "at its root"
	if s.dir != "" {
		where = "in /" + s.dir
	}
	fix := "use an ISO made by `nodeinit mkmedia iso` (the bundle is at its root), or name the bundle's directory inside the ISO: " +
		s.iso + "/path/to/bundle"
	dir := s.dir
	if dir == "" {
		dir = "."
	}
	entries, _ := s.fsys.ReadDir(dir)
	var found []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := s.fsys.Stat(s.path(e.Name() + "/" + ManifestName)); err == nil {
			found = append(found, s.iso+"/"+s.path(e.Name()))
		}
	}
	if len(found) > 0 {
		fix = "name the bundle's directory inside the ISO: " + strings.Join(found, " or ")
	}
	return newError("open image source", s.name, fmt.Errorf("no bundle in %s: no %s %s", s.iso, ManifestName, where), fix)
}

// notISOError refuses a file or stream that is not an ISO 9660 image; n is how
// many bytes of its header could be read.
func notISOError(iso string, n int) error {
	why := fmt.Sprintf("not an ISO 9660 image (no CD001 at byte %d)", isoVDOffset+1)
	if n < isoHeaderSize {
		why = fmt.Sprintf("not an ISO 9660 image: only %d bytes, an image has at least %d", n, isoHeaderSize)
	}
	return newError("open image source", iso, errors.New(why),
		"pass an ISO made by `nodeinit mkmedia iso`, a bundle directory (the one holding manifest.json), label:NAME or an http(s) URL")
}

// truncatedISOError refuses an image of have bytes whose own records need need.
func truncatedISOError(iso string, have, need int64) error {
	return newError("open image source", iso,
		fmt.Errorf("truncated ISO: %d bytes, but its filesystem runs to byte %d", have, need),
		"the copy or download was cut short: fetch the whole ISO again and compare its size and checksum with the original")
}
