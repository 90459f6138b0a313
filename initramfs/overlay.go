package initramfs

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"
)

// WriteDirArchive writes an uncompressed newc cpio to w holding hostDir's regular files and
// directories under dest (for example an image bundle under /bundle). The kernel unpacks
// concatenated archives in order, so appending it to a built initramfs adds the files
// without rebuilding: that is how an installer initrd carries a bundle. Files are streamed,
// not held in memory; order, times and owners are fixed so the output is reproducible.
func WriteDirArchive(w io.Writer, hostDir, dest string) error {
	dest = strings.Trim(path.Clean("/"+dest), "/")
	var names []string
	err := filepath.WalkDir(hostDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return fmt.Errorf("archive %s: %s is not a regular file or directory", hostDir, p)
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	rw := cpio.Newc.Writer(w)
	// Parent directories of dest first, so the archive unpacks on its own.
	var parents []string
	for d := path.Dir(dest); d != "." && d != "/"; d = path.Dir(d) {
		parents = append([]string{d}, parents...)
	}
	for _, d := range parents {
		if err := rw.WriteRecord(cpio.Directory(d, 0o755)); err != nil {
			return err
		}
	}
	var open []*os.File
	defer func() {
		for _, f := range open {
			f.Close()
		}
	}()
	for _, p := range names {
		rel, err := filepath.Rel(hostDir, p)
		if err != nil {
			return err
		}
		name := path.Join(dest, filepath.ToSlash(rel))
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		if info.IsDir() {
			if err := rw.WriteRecord(cpio.Directory(name, 0o755)); err != nil {
				return err
			}
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		open = append(open, f)
		rec := cpio.Record{ReaderAt: f, Info: cpio.Info{Name: name, Mode: cpio.S_IFREG | 0o644, FileSize: uint64(info.Size())}}
		if err := rw.WriteRecord(rec); err != nil {
			return fmt.Errorf("archive %s: %w", p, err)
		}
	}
	return cpio.WriteTrailer(rw)
}
