package crash

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// image is one scratch disk image.
type image struct {
	path string
	f    *os.File
}

func (img *image) readAt(p []byte, off int64) error {
	_, err := img.f.ReadAt(p, off)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("read %s at %d: past the end of the disk", img.path, off)
	}
	return err
}

func (img *image) writeAt(p []byte, off int64) error {
	_, err := img.f.WriteAt(p, off)
	return err
}

// writeOp writes the first n bytes of a write op.
func (img *image) writeOp(op Op, n int64) error {
	if op.Data != nil {
		return img.writeAt(op.Data[:n], op.Off)
	}
	// Zeroes, in bounded chunks so a large discard does not need its size in memory.
	zero := make([]byte, min(n, chunk))
	for done := int64(0); done < n; {
		m := min(n-done, int64(len(zero)))
		if err := img.writeAt(zero[:m], op.Off+done); err != nil {
			return err
		}
		done += m
	}
	return nil
}

// chunk is the copy unit; an all-zero chunk becomes a hole.
const chunk = 1 << 20

// makeImage creates path as a copy of base, or as size zero bytes (a hole)
// when base is empty.
func makeImage(path, base string, size int64) error {
	if base != "" {
		st, err := os.Stat(base)
		if err != nil {
			return fmt.Errorf("base image: %w", err)
		}
		if st.Size() != size {
			return fmt.Errorf("base image %s is %d bytes, the log's disk %d", base, st.Size(), size)
		}
		return CopySparse(path, base)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// CopySparse copies the file src to dst, leaving holes where src reads zero.
func CopySparse(dst, src string) error {
	st, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return CopyRange(dst, src, 0, st.Size())
}

// CopyRange copies n bytes of src from off into a new file dst (for example
// one partition out of a disk image), leaving holes where src reads zero.
func CopyRange(dst, src string, off, n int64) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := copySparse(out, in, off, n); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return nil
}

func copySparse(out, in *os.File, off, n int64) error {
	if err := out.Truncate(n); err != nil {
		return err
	}
	buf := make([]byte, chunk)
	zero := make([]byte, chunk)
	for done := int64(0); done < n; {
		m := min(n-done, chunk)
		if _, err := in.ReadAt(buf[:m], off+done); err != nil {
			return err
		}
		if !bytes.Equal(buf[:m], zero[:m]) {
			if _, err := out.WriteAt(buf[:m], done); err != nil {
				return err
			}
		}
		done += m
	}
	return nil
}
