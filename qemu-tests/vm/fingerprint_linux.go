package vm

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Fingerprint is a SHA-256 over a disk image's size and the offset and bytes of
// every 4 KiB block that is not all zeroes. Only the data extents are read
// (SEEK_DATA and SEEK_HOLE): the tests' disks are sparse files of many GiB of
// which a few MiB hold data, and hashing every byte spent most of a check reading
// holes. Two images have the same fingerprint exactly when they hold the same
// bytes: a block of zeroes counts the same as a hole, because what SEEK_DATA calls
// data is not stable (ext4 reports an unwritten extent as data while its pages
// are cached, as after mkfs, and as a hole once they are evicted).
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
		if err := hashBlocks(h, put, f, start, end); err != nil {
			return "", fmt.Errorf("fingerprint %s: %w", path, err)
		}
		off = end
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// fingerprintBlock is the unit of Fingerprint: a block of zeroes is skipped.
const fingerprintBlock = 4096

// hashBlocks feeds h the offset and bytes of each non-zero block of f in
// [start, end). Blocks are aligned to fingerprintBlock from the start of the
// file, so the same bytes hash the same whatever the extents are.
func hashBlocks(h io.Writer, put func(int64), f *os.File, start, end int64) error {
	zero := make([]byte, fingerprintBlock)
	buf := make([]byte, 1<<20)
	pos := start - start%fingerprintBlock
	for pos < end {
		n := min(int64(len(buf)), end-pos)
		n += (fingerprintBlock - n%fingerprintBlock) % fingerprintBlock // whole blocks; the file may end inside one
		got, err := f.ReadAt(buf[:n], pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		for i := 0; i < got; i += fingerprintBlock {
			b := buf[i:min(i+fingerprintBlock, got)]
			if !bytes.Equal(b, zero[:len(b)]) {
				put(pos + int64(i))
				h.Write(b)
			}
		}
		if got < int(n) {
			break
		}
		pos += n
	}
	return nil
}
