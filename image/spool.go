package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
)

// spoolReserve is the free space a spool leaves on its filesystem: /var/tmp
// shares it with the node's logs and services, which must keep working.
const spoolReserve = 16 << 20

// spoolChunk is how much a spool writes between free-space checks.
const spoolChunk = 4 << 20

// Spool is an ISO image received on a stream (`nodeinit upgrade --image -`),
// held in a temporary file until Close. The file has no name: it is removed
// as soon as it is created, so nothing is left behind however the program
// ends (a failure, Ctrl-C, a kill, a power cut), in a directory such as
// /var/tmp that survives reboots. OpenSource reads it as the source "-"
// (SourceOptions.Stdin).
type Spool struct {
	f    *os.File
	size int64
	from string
	own  bool // f is the spool's temporary file, not the caller's
}

// SpoolOptions tunes SpoolISO.
type SpoolOptions struct {
	// Dir holds the temporary file (default /var/tmp).
	Dir string
	// From names the stream in messages (default "standard input").
	From string
	// Progress, when set, is called as bytes arrive, with the size the
	// image's header announces (0 when it does not say).
	Progress func(done, total int64)
	// FreeBytes reports the space left for the spool on f's filesystem, or
	// -1 when unknown; nil asks statfs(2). Tests inject a small limit.
	FreeBytes func(f *os.File) (int64, error)
}

func (o SpoolOptions) withDefaults() SpoolOptions {
	if o.Dir == "" {
		o.Dir = "/var/tmp"
	}
	if o.From == "" {
		o.From = "standard input"
	}
	if o.Progress == nil {
		o.Progress = func(done, total int64) {}
	}
	if o.FreeBytes == nil {
		o.FreeBytes = statfsFree
	}
	return o
}

// SpoolISO receives an ISO 9660 image from r into a temporary file in o.Dir.
// It refuses a stream that is not an ISO before writing anything, checks the
// free space before each write so that it never fills the filesystem, and
// refuses a stream that ends before the image does. On any error, or when ctx
// ends, nothing is left in o.Dir. When r is a regular file (standard input
// redirected from one), it is read in place and nothing is copied.
func SpoolISO(ctx context.Context, r io.Reader, o SpoolOptions) (*Spool, error) {
	o = o.withDefaults()
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if _, err := sniffISO(f, o.From); err != nil {
				return nil, err
			}
			return &Spool{f: f, size: st.Size(), from: o.From}, nil
		}
	}
	head := make([]byte, isoHeaderSize)
	n, err := io.ReadFull(r, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, newError("receive ISO from", o.From, err, "check the program that sends the ISO")
	}
	h, ok := parseISOHeader(head[:n])
	if !ok {
		return nil, notISOError(o.From, n)
	}
	f, err := os.CreateTemp(o.Dir, ".nodeinit-upgrade-*.iso")
	if err != nil {
		return nil, newError("receive ISO from "+o.From+" into", o.Dir, err,
			"pass --tmpdir DIR, a writable directory on a filesystem with room for the ISO")
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, newError("receive ISO from "+o.From+" into", o.Dir, err, "pass --tmpdir DIR, a writable directory")
	}
	s := &Spool{f: f, from: o.From, own: true}
	done := make(chan error, 1)
	go func() { done <- s.fill(ctx, r, head, h.size, o) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// A read from a pipe cannot be interrupted; the file goes now, and
		// the copy ends with an error on its next write.
		err = ctx.Err()
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// fill writes head, then the rest of r, into the spool file, until r ends or
// ctx does; total is the size the header announced. The free space is
// checked for the whole image first, then before every chunk, as other
// writers may take some meanwhile.
func (s *Spool) fill(ctx context.Context, r io.Reader, head []byte, total int64, o SpoolOptions) error {
	if err := s.checkSpace(o, total); err != nil {
		return err
	}
	buf := make([]byte, spoolChunk)
	for chunk := head; len(chunk) > 0; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.checkSpace(o, int64(len(chunk))); err != nil {
			return err
		}
		if _, err := s.f.Write(chunk); err != nil {
			return newError("receive ISO from "+o.From+" into", o.Dir, err,
				"free space there, or pass --tmpdir DIR on a filesystem with room for the whole ISO")
		}
		s.size += int64(len(chunk))
		o.Progress(s.size, total)
		n, err := io.ReadFull(r, buf)
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return newError("receive ISO from", o.From, err, "check the program that sends the ISO")
		}
		chunk = buf[:n]
	}
	if s.size < total {
		return newError("receive ISO from", o.From,
			fmt.Errorf("truncated ISO: the stream ended after %d bytes, but the image's header announces %d", s.size, total),
			"send the whole ISO again; check the program that sends it")
	}
	return nil
}

// checkSpace refuses to write need more bytes when that would leave less than
// spoolReserve free.
func (s *Spool) checkSpace(o SpoolOptions, need int64) error {
	free, err := o.FreeBytes(s.f)
	if err != nil {
		return newError("receive ISO from "+o.From+" into", o.Dir, fmt.Errorf("free space: %w", err),
			"pass --tmpdir DIR on another filesystem")
	}
	if free < 0 || free >= need+spoolReserve {
		return nil
	}
	return newError("receive ISO from "+o.From+" into", o.Dir,
		fmt.Errorf("not enough free space: %d MiB free, %d MiB needed (%d MiB to write, %d MiB kept free), after %d MiB received",
			free>>20, (need+spoolReserve+1<<20-1)>>20, (need+1<<20-1)>>20, spoolReserve>>20, s.size>>20),
		"free space in "+o.Dir+", or pass --tmpdir DIR on a filesystem with room for the whole ISO, "+
			"or copy the ISO to the node and pass its path: --image FILE.iso")
}

// Size is the number of bytes received.
func (s *Spool) Size() int64 { return s.size }

// Close releases the temporary file, and with it the space it took.
func (s *Spool) Close() error {
	if !s.own {
		return nil
	}
	return s.f.Close()
}

// source is the ISO source reading the spool; closing it leaves the spool open.
func (s *Spool) source() (Source, error) {
	return newISOSource(s.f, s.size, s.from, "", "-")
}
