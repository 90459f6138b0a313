package vm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Fingerprint is a SHA-256 over a disk image's size and its data extents (each
// extent's offset, length and bytes), found with SEEK_DATA and SEEK_HOLE. The
// tests' disks are sparse files of many GiB of which a few MiB hold data, so
// hashing every byte spent most of a check reading holes. Two images with the
// same fingerprint hold the same bytes. The converse is stricter than bytes:
// zeroes written into a hole count as a change, and a test that asserts a disk
// was left alone wants exactly that.
func Fingerprint(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	var word [8]byte
	put := func(v int64) {
		binary.LittleEndian.PutUint64(word[:], uint64(v))
		h.Write(word[:])
	}
	put(st.Size())
	for off := int64(0); off < st.Size(); {
		start, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return "", fmt.Errorf("fingerprint %s: seek data at %d: %w", path, off, err)
		}
		end, err := unix.Seek(int(f.Fd()), start, unix.SEEK_HOLE)
		if err != nil {
			return "", fmt.Errorf("fingerprint %s: seek hole at %d: %w", path, start, err)
		}
		put(start)
		put(end - start)
		if _, err := io.Copy(h, io.NewSectionReader(f, start, end-start)); err != nil {
			return "", fmt.Errorf("fingerprint %s: %w", path, err)
		}
		off = end
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
