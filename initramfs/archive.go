package initramfs

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/u-root/mkuimage/cpio"
	"github.com/u-root/mkuimage/ldd"
	uinitramfs "github.com/u-root/mkuimage/uimage/initramfs"
	"github.com/u-root/uio/llog"
)

// packArchive writes base's records, the extra files (HOST:DEST; an ELF file
// brings the shared libraries ldd lists, at their host paths) and the symlinks
// (archive path to absolute target, stored relative to the link's directory)
// to out, in the sorted order of mkuimage's initramfs.Write.
//
// It is what mkuimage's uimage.CreateInitramfs does for an archive with no Go
// commands to compile, made from the same pieces (uimage/initramfs, ldd, cpio).
// Calling uimage itself would link its Go builder (go/types, golang.org/x/tools,
// gobusybox) into the multi-call binary, which is also /init: about 1 MiB of
// the initramfs for code that never runs in it.
func packArchive(l *llog.Logger, base *cpio.Archive, extra []string, links map[string]string, out uinitramfs.WriteOpener) error {
	files := uinitramfs.NewFiles()
	for _, e := range extra {
		host, dest, ok := strings.Cut(e, ":")
		if !ok || host == "" || dest == "" {
			return fmt.Errorf("extra file %q: want HOST:DEST", e)
		}
		host, dest = filepath.Clean(host), path.Clean(dest)
		if err := files.AddFileNoFollow(host, dest); err != nil {
			return fmt.Errorf("add %s: %w", host, err)
		}
		libs, err := sharedLibraries(host)
		if err != nil {
			return err
		}
		for _, lib := range libs {
			if files.Contains(lib[1:]) {
				continue
			}
			if err := files.AddFileNoFollow(lib, lib[1:]); err != nil {
				l.Warnf("shared library %s of %s: %v", lib, host, err)
			}
		}
	}
	names := make([]string, 0, len(links))
	for p := range links {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, p := range names {
		p = strings.TrimPrefix(path.Clean(p), "/")
		rel, err := filepath.Rel(path.Join("/", path.Dir(p)), links[p])
		if err != nil {
			return fmt.Errorf("symlink %s: %w", p, err)
		}
		if err := files.AddRecord(cpio.Symlink(p, rel)); err != nil {
			return fmt.Errorf("symlink %s: %w", p, err)
		}
	}
	return uinitramfs.Write(&uinitramfs.Opts{Files: files, OutputFile: out, BaseArchive: &uinitramfs.Archive{Archive: base}})
}

// sharedLibraries lists what the ELF files at or under host load (ldd.FList),
// as absolute host paths; nothing for other files and static executables.
func sharedLibraries(host string) ([]string, error) {
	var libs []string
	err := filepath.WalkDir(host, func(name string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := elf.Open(name)
		if err != nil {
			return nil // not an ELF file: it goes in as it is
		}
		f.Close()
		found, err := ldd.FList(name)
		if err != nil {
			return fmt.Errorf("shared libraries of %s: %w", name, err)
		}
		libs = append(libs, found...)
		return nil
	})
	return libs, err
}
