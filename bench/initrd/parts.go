package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/nodeinit/nodeinit/initramfs"
	"github.com/u-root/mkuimage/cpio"
)

// shippedCompression is how initramfs.Build compresses by default; the parts
// are measured compressed the same way (initramfs.CompressZstd), and the bench
// proves the shipped initrd.img is that compression of its cpio, byte for byte.
const shippedCompression = initramfs.Zstd

// Part indexes, in the order the table prints them.
const (
	partNodeinit = iota
	partModules
	partFirmware
	partHostFiles
	partEtc
	partRest
	numParts
)

// partNames label the table's rows.
var partNames = [numParts]string{
	partNodeinit:  "nodeinit binary (bin/nodeinit + links to it)",
	partModules:   "kernel modules (lib/modules)",
	partFirmware:  "firmware (lib/firmware)",
	partHostFiles: "host programs + libs (usr/, lib/x86_64-linux-gnu, lib64)",
	partEtc:       "keys and config (etc/)",
	partRest:      "everything else",
}

// hostPaths are where host programs given with --files and their shared
// libraries go (Debian's merged /usr puts the libraries under
// lib/x86_64-linux-gnu, the dynamic loader's link under lib64). The default
// initramfs has none: it carried mke2fs and its libraries until ext4 was made
// in-process (disk/mkext4), 1.49 MB compressed.
var hostPaths = []string{"usr", "lib/x86_64-linux-gnu", "lib64"}

// under tells whether name is dir or inside it.
func under(name, dir string) bool {
	return name == dir || strings.HasPrefix(name, dir+"/")
}

// entry is one cpio record with its bytes read.
type entry struct {
	rec  cpio.Record
	data []byte // file content, or a symlink's target
}

func (e entry) isLink() bool { return e.rec.Mode&cpio.S_IFMT == cpio.S_IFLNK }

// linksTo tells whether e is a symlink that resolves, inside the archive, to
// target (relative links resolve from the link's directory).
func (e entry) linksTo(target string) bool {
	if !e.isLink() {
		return false
	}
	t := string(e.data)
	if !path.IsAbs(t) {
		t = path.Join("/", path.Dir(e.rec.Name), t)
	}
	return strings.TrimPrefix(path.Clean(t), "/") == target
}

// partOf says which part of the table a record belongs to.
func partOf(e entry) int {
	name := e.rec.Name
	switch {
	case name == binaryPath || e.linksTo(binaryPath):
		return partNodeinit
	case under(name, "lib/modules"):
		return partModules
	case under(name, "lib/firmware"):
		return partFirmware
	case under(name, "etc"):
		return partEtc
	}
	for _, p := range hostPaths {
		if under(name, p) {
			return partHostFiles
		}
	}
	return partRest
}

// binaryPath is initramfs.BinaryPath: every rescue command links to it.
const binaryPath = "bin/nodeinit"

// readEntries reads every record of a newc cpio, in order, with its bytes.
func readEntries(raw []byte) ([]entry, error) {
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		return nil, fmt.Errorf("read cpio: %w", err)
	}
	out := make([]entry, 0, len(recs))
	for _, r := range recs {
		data, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		if err != nil {
			return nil, fmt.Errorf("read cpio record %s: %w", r.Name, err)
		}
		out = append(out, entry{rec: r, data: data})
	}
	return out, nil
}

// encode writes entries as a newc stream in their order; with trailer it
// ends the stream with the TRAILER!!! record, as a whole archive does.
func encode(entries []entry, trailer bool) ([]byte, error) {
	var buf bytes.Buffer
	w := cpio.Newc.Writer(&buf)
	for _, e := range entries {
		r := e.rec
		r.ReaderAt = bytes.NewReader(e.data)
		if err := w.WriteRecord(r); err != nil {
			return nil, fmt.Errorf("write cpio record %s: %w", r.Name, err)
		}
	}
	if trailer {
		if err := cpio.WriteTrailer(w); err != nil {
			return nil, fmt.Errorf("write cpio trailer: %w", err)
		}
	}
	return buf.Bytes(), nil
}

// zstdCompress compresses raw as initramfs.Build does by default.
func zstdCompress(raw []byte) ([]byte, error) {
	z, _, err := initramfs.CompressZstd(raw, shippedCompression)
	return z, err
}

// zstdDecompress undoes zstdCompress.
func zstdDecompress(comp []byte) ([]byte, error) {
	dec, err := zstd.NewReader(bytes.NewReader(comp), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("zstd reader: %w", err)
	}
	defer dec.Close()
	raw, err := io.ReadAll(dec)
	if err != nil {
		return nil, fmt.Errorf("zstd decompress: %w", err)
	}
	return raw, nil
}

// partSize is one row of the parts table.
type partSize struct {
	records int
	raw     int64 // bytes of its records in the cpio: headers, names, contents, padding
	zstd    int64 // those bytes compressed on their own; 0 when the part is empty
}

// partsReport is what the archive is made of.
type partsReport struct {
	parts [numParts]partSize
	// trailer is the bytes after the last record: the TRAILER!!! record.
	trailer int64
	// rescueLinks are the bbin/ entries that link to bin/nodeinit, and
	// rescueOther those that do not.
	rescueLinks int
	rescueOther []string
	// coreZstd is every part but modules and firmware, compressed together.
	coreZstd int64
}

// measureParts splits the cpio into its parts, encodes and compresses each on
// its own, and checks that the parts add up to the archive byte for byte and
// that each compressed part decompresses to its bytes.
func measureParts(raw []byte) (partsReport, error) {
	var r partsReport
	entries, err := readEntries(raw)
	if err != nil {
		return r, err
	}
	var byPart [numParts][]entry
	var core []entry
	for _, e := range entries {
		p := partOf(e)
		byPart[p] = append(byPart[p], e)
		if p != partModules && p != partFirmware {
			core = append(core, e)
		}
		if under(e.rec.Name, "bbin") && e.rec.Name != "bbin" {
			if e.linksTo(binaryPath) {
				r.rescueLinks++
			} else {
				r.rescueOther = append(r.rescueOther, e.rec.Name)
			}
		}
	}
	if !hasName(byPart[partNodeinit], binaryPath) {
		return r, fmt.Errorf("the archive has no %s: not a nodeinit initramfs", binaryPath)
	}
	var joined []byte
	for p, es := range byPart {
		if len(es) == 0 {
			continue
		}
		b, err := encode(es, false)
		if err != nil {
			return r, err
		}
		z, err := checkedZstd(b)
		if err != nil {
			return r, fmt.Errorf("%s: %w", partNames[p], err)
		}
		r.parts[p] = partSize{records: len(es), raw: int64(len(b)), zstd: int64(len(z))}
		joined = append(joined, b...)
	}
	whole, err := encode(entries, true)
	if err != nil {
		return r, err
	}
	r.trailer = int64(len(whole) - len(joined))
	// The archive re-encoded from its records must be the archive: then the
	// parts' bytes are the archive's bytes, regrouped.
	if !bytes.Equal(whole, raw) {
		return r, fmt.Errorf("re-encoding the %d records gives %d bytes, not the archive's %d: the part sizes would not be the archive's",
			len(entries), len(whole), len(raw))
	}
	b, err := encode(core, false)
	if err != nil {
		return r, err
	}
	z, err := checkedZstd(b)
	if err != nil {
		return r, fmt.Errorf("non-module, non-firmware part: %w", err)
	}
	r.coreZstd = int64(len(z))
	return r, nil
}

func hasName(es []entry, name string) bool {
	for _, e := range es {
		if e.rec.Name == name {
			return true
		}
	}
	return false
}

// checkedZstd compresses b and proves the result decompresses to b.
func checkedZstd(b []byte) ([]byte, error) {
	z, err := zstdCompress(b)
	if err != nil {
		return nil, err
	}
	back, err := zstdDecompress(z)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(back, b) {
		return nil, errors.New("zstd round trip changed the bytes")
	}
	return z, nil
}

// records counts the archive's records, the trailer left out.
func (r partsReport) records() int {
	n := 0
	for _, p := range r.parts {
		n += p.records
	}
	return n
}
