// Package initramfs builds the nodeinit initramfs: a compressed newc cpio holding the
// nodeinit binary as /init, the rescue shell's commands as links to that same binary, the
// trusted image keys, chosen host files with their shared libraries, and the kernel modules
// for storage, filesystems and network with their dependencies.
//
// Nothing is compiled: the nodeinit binary is multi-call (it runs as PID 1 when started as
// /init, as a rescue command when started by one of rescue.Names, and as the CLI
// otherwise), so the CLI builds an initramfs from its own executable, with no Go toolchain
// and no source checkout. u-root's mkuimage writes the archive and pulls in shared
// libraries.
//
// The output is reproducible: records are written in sorted order with mtime, uid, gid and
// inode numbers zeroed, and the compressor runs single-threaded with fixed settings.
package initramfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/nodeinit/nodeinit/modalias"
	"github.com/nodeinit/nodeinit/rescue"
	"github.com/u-root/mkuimage/cpio"
	uinitramfs "github.com/u-root/mkuimage/uimage/initramfs"
	"github.com/u-root/uio/llog"
)

// BinaryPackage is the Go package a nodeinit binary must be built from to serve as /init.
const BinaryPackage = "github.com/nodeinit/nodeinit/cmd/nodeinit"

// BinaryPath is where the nodeinit binary goes in the archive; /init and every rescue
// command link to it.
const BinaryPath = "bin/nodeinit"

// Compression names the cpio compression.
type Compression string

// Compressions the Debian kernel can unpack (CONFIG_RD_ZSTD and CONFIG_RD_GZIP are set).
// Zstd and ZstdFast unpack equally fast; see compress.go for the levels.
const (
	Zstd     Compression = "zstd"      // the smallest: zstd -19
	ZstdFast Compression = "zstd-fast" // in-process at zstd's default level: 25 % larger, 80 times faster to build
	Gzip     Compression = "gzip"
	None     Compression = "none"
)

// Options say what goes into the initramfs.
type Options struct {
	Output      string      // path to write; required
	Compression Compression // default Zstd
	// ModulesDir is a kernel's lib/modules/<version> with modules.dep; "" adds no modules.
	ModulesDir string
	// FirmwareDir is a firmware tree (normally /lib/firmware, from Debian's firmware
	// packages): the firmware files the included modules declare go in from there,
	// where it has them. "" adds no firmware.
	FirmwareDir string
	// Modules are the names to include with their dependencies; nil means DefaultModules.
	Modules []string
	// Keys are minisign public key files, placed in /etc/nodeinit/keys/.
	Keys []string
	// Files are HOST[:DEST] pairs; ELF files bring their shared libraries (found with ldd).
	Files []string
	// Dirs are HOST:DEST directories copied whole (for example an image bundle).
	Dirs []string
	// Binary is the nodeinit binary (built from BinaryPackage for linux/amd64) that becomes
	// /init; "" means the running executable, so the CLI puts itself in.
	Binary string
	// Commands are the rescue shell's commands (names from rescue.Names), each a link in
	// /bbin to the binary; nil means all of them.
	Commands []string
	// Log receives mkuimage's progress; nil discards it.
	Log *slog.Logger
}

// Result describes the written initramfs.
type Result struct {
	Path          string
	Binary        string // the nodeinit binary put in as /init
	BinaryVersion string // its module version, "(devel)" for a build from a checkout
	// Warnings are what the operator should know about the archive (a
	// dynamically linked binary, for one).
	Size           int64  // compressed bytes on disk
	Compressor     string // what compressed it: the zstd program and its level, or klauspost/compress
	CPIOSize       int64  // uncompressed cpio bytes
	Records        int    // cpio records, trailer excluded
	SHA256         string
	KernelVersion  string
	Modules        []string // module files included, dependencies too
	BuiltinModules []string // asked-for names the kernel has built in
	MissingModules []string // asked-for names this kernel does not have
	// OnDemandModules are included but not loaded at boot: the kernel asks for them
	// (through /bbin/modprobe) when a mount or a device needs one.
	OnDemandModules []string
	// Firmware are the firmware files included (under lib/firmware), and
	// MissingFirmware the ones the modules declare that FirmwareDir lacks.
	Firmware, MissingFirmware []string
	Warnings                  []string
}

// String is the one-line summary the CLI prints.
func (r Result) String() string {
	s := fmt.Sprintf("%s: %s (%d bytes), cpio %s, %d records, sha256 %s\n/init: %s, nodeinit %s",
		r.Path, human(r.Size), r.Size, human(r.CPIOSize), r.Records, r.SHA256, r.Binary, r.BinaryVersion)
	if r.Compressor != "" {
		s += "\ncompressed by " + r.Compressor
	}
	for _, w := range r.Warnings {
		s += "\nwarning: " + w
	}
	if r.KernelVersion != "" {
		s += fmt.Sprintf("\nmodules for %s: %d files; built in: %s; not in this kernel: %s",
			r.KernelVersion, len(r.Modules), strings.Join(r.BuiltinModules, " "), strings.Join(r.MissingModules, " "))
		if len(r.OnDemandModules) > 0 {
			s += fmt.Sprintf("; %d loaded only when the kernel asks for them", len(r.OnDemandModules))
		}
		if len(r.Firmware)+len(r.MissingFirmware) > 0 {
			s += fmt.Sprintf("\nfirmware the modules declare: %d files included, %d not in the firmware directory", len(r.Firmware), len(r.MissingFirmware))
		}
	}
	return s
}

func human(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Build writes the initramfs described by opts. Bad options are reported before anything
// is built or written.
func Build(ctx context.Context, opts Options) (Result, error) {
	if err := opts.check(); err != nil {
		return Result{}, err
	}
	res := Result{Path: opts.Output}
	base := cpio.InMemArchive()
	if opts.ModulesDir != "" {
		if err := addModules(base, opts, &res); err != nil {
			return Result{}, err
		}
	}

	extra, err := opts.extraFiles()
	if err != nil {
		return Result{}, err
	}
	b, err := opts.binary()
	if err != nil {
		return Result{}, err
	}
	bin := b.path
	res.Binary, res.BinaryVersion = b.path, b.version
	if !b.initramfsBuild {
		res.Warnings = append(res.Warnings, b.path+" is the full CLI, not its initramfs build: the initramfs also carries the build-host commands "+
			"(mkinitramfs, mkmedia, image) and inlining, about 1.2 MB more compressed; `make build` writes build/"+InitramfsBinary+" beside the CLI, which mkinitramfs then takes, "+
			"or give it with --binary")
	}
	if dynamic(bin) {
		res.Warnings = append(res.Warnings, bin+" is dynamically linked (built with cgo): the initramfs carries its C libraries, "+
			"but the copy it leaves for the node at /run/nodeinit/bin/nodeinit runs only on images with the same C library; "+
			"build it with CGO_ENABLED=0 for one that runs on any image")
	}
	extra = append(extra, bin+":"+BinaryPath)
	links := map[string]string{"init": "/" + BinaryPath, "bin/sh": "/" + BinaryPath}
	for _, c := range opts.commands() {
		links["bbin/"+c] = "/" + BinaryPath
	}
	f, err := os.CreateTemp(filepath.Dir(opts.Output), ".initramfs-*")
	if err != nil {
		return Result{}, fmt.Errorf("build initramfs: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	out := &compressedCPIO{file: f, compression: opts.compression()}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if err := packArchive(logger(opts.Log), base, extra, links, out); err != nil {
		return Result{}, fmt.Errorf("build initramfs: %w", err)
	}
	if out.err != nil {
		return Result{}, fmt.Errorf("build initramfs: write %s: %w", opts.Output, out.err)
	}
	if err := f.Sync(); err != nil {
		return Result{}, fmt.Errorf("build initramfs: %w", err)
	}
	if err := os.Rename(f.Name(), opts.Output); err != nil {
		return Result{}, fmt.Errorf("build initramfs: %w", err)
	}
	fi, err := os.Stat(opts.Output)
	if err != nil {
		return Result{}, fmt.Errorf("build initramfs: %w", err)
	}
	res.Size, res.CPIOSize, res.Records, res.Compressor = fi.Size(), out.raw.n, out.records, out.compressor
	res.SHA256 = hex.EncodeToString(out.sum.Sum(nil))
	return res, nil
}

func (o Options) compression() Compression {
	if o.Compression == "" {
		return Zstd
	}
	return o.Compression
}

// check validates the options; every error names the option and the fix.
func (o Options) check() error {
	if o.Output == "" {
		return errors.New("initramfs: no output path: give -o FILE")
	}
	switch o.compression() {
	case Zstd, ZstdFast, Gzip, None:
	default:
		return fmt.Errorf("initramfs: compression %q: want zstd, zstd-fast, gzip or none", o.Compression)
	}
	if st, err := os.Stat(filepath.Dir(o.Output)); err != nil || !st.IsDir() {
		return fmt.Errorf("initramfs: output %s: directory %s does not exist", o.Output, filepath.Dir(o.Output))
	}
	if o.ModulesDir != "" {
		if _, err := os.Stat(filepath.Join(o.ModulesDir, "modules.dep")); err != nil {
			return fmt.Errorf("initramfs: modules dir %s has no modules.dep: give a kernel's lib/modules/<version> after depmod: %w", o.ModulesDir, err)
		}
	}
	for _, k := range o.Keys {
		if !strings.HasSuffix(k, ".pub") {
			return fmt.Errorf("initramfs: key %s: want a minisign public key file ending in .pub", k)
		}
		if _, err := os.Stat(k); err != nil {
			return fmt.Errorf("initramfs: key %s: %w", k, err)
		}
	}
	for _, s := range o.Files {
		host, _, _ := strings.Cut(s, ":")
		if st, err := os.Stat(host); err != nil || st.IsDir() {
			return fmt.Errorf("initramfs: file %q: %s is not a file (use a directory with Dirs/--dir)", s, host)
		}
	}
	for _, s := range o.Dirs {
		host, dest, ok := strings.Cut(s, ":")
		if !ok || dest == "" {
			return fmt.Errorf("initramfs: dir %q: want HOST:DEST", s)
		}
		if st, err := os.Stat(host); err != nil || !st.IsDir() {
			return fmt.Errorf("initramfs: dir %q: %s is not a directory", s, host)
		}
	}
	for _, c := range o.Commands {
		if !rescue.Has(c) {
			return fmt.Errorf("initramfs: rescue command %q: not one the nodeinit binary has; choose from %s", c, strings.Join(rescue.Names(), " "))
		}
	}
	if _, err := o.binary(); err != nil {
		return err
	}
	return nil
}

// commands are the rescue command names to link.
func (o Options) commands() []string {
	if o.Commands == nil {
		return rescue.Names()
	}
	return o.Commands
}

// dynamic tells whether the ELF file at path asks for a program interpreter
// (the dynamic loader).
func dynamic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// extraFiles turns keys, files and dirs into mkuimage's HOST:DEST list. Symlinked host files
// are resolved so the archive holds the file, not a link to something left behind.
func (o Options) extraFiles() ([]string, error) {
	var out []string
	for _, k := range o.Keys {
		out = append(out, k+":etc/nodeinit/keys/"+filepath.Base(k))
	}
	for _, s := range o.Files {
		host, dest, ok := strings.Cut(s, ":")
		if !ok {
			dest = strings.TrimPrefix(host, "/")
		}
		real, err := filepath.EvalSymlinks(host)
		if err != nil {
			return nil, fmt.Errorf("initramfs: file %s: %w", host, err)
		}
		out = append(out, real+":"+strings.TrimPrefix(dest, "/"))
	}
	for _, s := range o.Dirs {
		host, dest, _ := strings.Cut(s, ":")
		out = append(out, host+":"+strings.TrimPrefix(dest, "/"))
	}
	return out, nil
}

// addModules puts the resolved module files, a modules.dep restricted to them, the matching
// modules.alias lines, modules.builtin, and /etc/nodeinit/modules (the list /init loads)
// into the base archive.
func addModules(base *cpio.Archive, opts Options, res *Result) error {
	names := opts.Modules
	if names == nil {
		names = DefaultModules
	}
	mods, err := ResolveModules(opts.ModulesDir, names)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	res.KernelVersion, res.Modules, res.BuiltinModules, res.MissingModules = mods.Version, mods.Files, mods.Builtin, mods.Missing
	dest := path.Join("lib/modules", mods.Version)
	included := map[string]bool{}
	declared := map[string][]string{}
	for _, rel := range mods.Files {
		data, err := os.ReadFile(filepath.Join(opts.ModulesDir, rel))
		if err != nil {
			return fmt.Errorf("initramfs: module %s: %w", rel, err)
		}
		base.WriteRecord(cpio.StaticRecord(data, cpio.Info{Name: path.Join(dest, ArchivePath(rel)), Mode: cpio.S_IFREG | 0o644}))
		included[moduleName(rel)] = true
		if opts.FirmwareDir != "" && strings.HasSuffix(rel, ".ko") {
			if declared[rel], err = DeclaredFirmware(data); err != nil {
				return fmt.Errorf("initramfs: module %s: %w", rel, err)
			}
		}
	}
	if opts.FirmwareDir != "" {
		if err := addFirmware(base, opts.FirmwareDir, declared, res); err != nil {
			return err
		}
	}
	base.WriteRecord(cpio.StaticFile(path.Join(dest, "modules.dep"), strings.Join(mods.DepLines, "\n")+"\n", 0o644))
	for _, name := range []string{"modules.builtin"} {
		if data, err := os.ReadFile(filepath.Join(opts.ModulesDir, name)); err == nil {
			base.WriteRecord(cpio.StaticRecord(data, cpio.Info{Name: path.Join(dest, name), Mode: cpio.S_IFREG | 0o644}))
		}
	}
	var table *modalias.Table
	if data, err := os.ReadFile(filepath.Join(opts.ModulesDir, "modules.alias")); err == nil {
		base.WriteRecord(cpio.StaticRecord(filterAlias(data, included), cpio.Info{Name: path.Join(dest, "modules.alias"), Mode: cpio.S_IFREG | 0o644}))
		if table, err = modalias.Parse(bytes.NewReader(data)); err != nil {
			return fmt.Errorf("initramfs: %w", err)
		}
	}
	boot, onDemand := bootModules(table, mods.Names)
	res.OnDemandModules = onDemand
	list := "# kernel modules /init loads, with their dependencies, at boot: drivers only when a device\n" +
		"# matches (modules.alias), and the drivers of SCSI, USB and MMC devices. The initramfs' other\n" +
		"# modules load when they are first needed: a filesystem before /init mounts it, loop and\n" +
		"# 8021q before a loop device or a VLAN, and what the kernel asks for through /bbin/modprobe.\n" +
		strings.Join(boot, "\n") + "\n"
	base.WriteRecord(cpio.StaticFile("etc/nodeinit/modules", list, 0o644))
	return nil
}

// bootModules splits names into the ones /init considers at boot and the ones left
// until something asks for them. A driver of a probed bus (modalias.ProbedBuses)
// is considered at boot, where it loads if its device is there, and so is a
// driver of a late bus (modalias.LateBuses: sd_mod, usb_storage), which loads if
// its bus is there. Every other module (filesystems, device-mapper and md,
// loop, VLANs, crypto) drives no device and waits: /init loads a filesystem
// before its first mount, loop and 8021q when it makes a loop device or a VLAN
// (package kmod), and the kernel asks /bbin/modprobe for the rest. Without
// modules.alias (a nil table), every name is considered at boot.
func bootModules(table *modalias.Table, names []string) (boot, onDemand []string) {
	if table == nil {
		return names, nil
	}
	for _, n := range names {
		if table.DeviceBound(n) || len(table.LateBusesOf(n)) > 0 {
			boot = append(boot, n)
		} else {
			onDemand = append(onDemand, n)
		}
	}
	return boot, onDemand
}

// compressedCPIO is mkuimage's output: a newc writer over a compressor over the file. Every
// record is made reproducible on the way through.
type compressedCPIO struct {
	file        *os.File
	compression Compression
	compressor  string // what compressed it, for Result.Compressor
	raw         countingWriter
	sum         hash.Hash
	records     int
	err         error
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type cpioWriter struct {
	c     *compressedCPIO
	rw    cpio.RecordWriter
	close func() error
}

// OpenWriter implements mkuimage's initramfs.WriteOpener.
func (c *compressedCPIO) OpenWriter() (uinitramfs.Writer, error) {
	c.sum = sha256.New()
	sink := io.MultiWriter(c.file, c.sum)
	var zw io.Writer
	closeFn := func() error { return nil }
	switch c.compression {
	case Zstd, ZstdFast:
		enc, name, err := newZstd(sink, c.compression)
		if err != nil {
			return nil, err
		}
		zw, closeFn, c.compressor = enc, enc.Close, name
	case Gzip:
		gz, err := gzip.NewWriterLevel(sink, gzip.BestCompression)
		if err != nil {
			return nil, err
		}
		zw, closeFn = gz, gz.Close
	default:
		zw = sink
	}
	c.raw.w = zw
	return cpioWriter{c: c, rw: cpio.Newc.Writer(&c.raw), close: closeFn}, nil
}

// WriteRecord writes r with its varying metadata zeroed.
func (w cpioWriter) WriteRecord(r cpio.Record) error {
	w.c.records++
	return w.rw.WriteRecord(cpio.MakeReproducible(r))
}

// Finish writes the trailer and flushes the compressor.
func (w cpioWriter) Finish() error {
	if err := cpio.WriteTrailer(w.rw); err != nil {
		w.c.err = err
		return err
	}
	if err := w.close(); err != nil {
		w.c.err = err
		return err
	}
	return nil
}

func logger(l *slog.Logger) *llog.Logger {
	if l == nil {
		return llog.New(slog.LevelError, func(string, ...any) {})
	}
	return llog.New(slog.LevelInfo, func(format string, args ...any) { l.Info(fmt.Sprintf(format, args...)) })
}
