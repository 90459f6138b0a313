package image

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// Source is where a bundle's files come from: a directory, an ISO image, a
// medium found by label or named by its device, a directory in the initramfs
// or an http(s) URL.
type Source interface {
	// Open streams the named bundle file and returns its size as the source
	// reports it (-1 when unknown). A missing file is an error wrapping
	// fs.ErrNotExist. The stream never holds the whole file in memory.
	Open(ctx context.Context, name string) (io.ReadCloser, int64, error)
	// Cleartext reports whether bytes arrive unauthenticated over the
	// network (plain http); Open then demands a signature or a pin.
	Cleartext() bool
	// String names the source for messages (a path or URL).
	String() string
	// Close releases what the source holds (e.g. unmounts a medium).
	Close() error
}

// SourceOptions tunes OpenSource. The zero value gives the defaults below.
type SourceOptions struct {
	// RootCAs verifies https servers; nil means the system pool.
	RootCAs *x509.CertPool
	// Retries is how many failed attempts in a row an http download may
	// make on each mirror before it gives up (default 6). Any progress
	// resets the count.
	Retries int
	// BackoffMin and BackoffMax bound the wait between attempts, doubling
	// from min to max, with jitter (defaults 500ms and 15s; see
	// internal/backoff).
	BackoffMin, BackoffMax time.Duration
	// RetryBudget is the most time an http download waits between attempts
	// since its last progress (default 5 minutes).
	RetryBudget time.Duration
	// Rand draws the backoff's jitter, in [0, 1); nil means math/rand/v2.
	Rand func() float64
	// Notify receives a line about each mirror failover and each server
	// that ignores a Range request; WithNotify on a download's context
	// overrides it. nil drops them.
	Notify func(msg string)
	// ConnectTimeout bounds dialling, the TLS handshake and waiting for
	// response headers (default 20s).
	ConnectTimeout time.Duration
	// StallTimeout aborts an attempt that receives no byte for this long
	// (default 30s); the download then resumes with a Range request.
	StallTimeout time.Duration
	// MinRate (bytes a second, default 16 KiB/s) over each RateWindow (default
	// 60s) is the slowest an http download may go; below it the download
	// fails, so a server that drips bytes cannot hold an install forever.
	MinRate    int64
	RateWindow time.Duration
	// Deadline bounds one file's whole download, retries included (default 4h).
	Deadline time.Duration
	// UserAgent is sent with every http request (default "nodeinit"): /init
	// adds the machine's MAC and the install id, so a mirror's access log
	// tells the nodes of a fleet apart.
	UserAgent string

	// SysRoot and DevRoot are where label: sources look for block devices
	// (defaults /sys and /dev); tests point them at a temp tree. SysRoot
	// also says which of them are physical media (see FindByLabel).
	SysRoot, DevRoot string
	// MountDir is where label: and device sources mount the medium read-only
	// (default /run/nodeinit/media).
	MountDir string
	// Mounter mounts and unmounts; nil means mount(2) on Linux.
	Mounter Mounter

	// InitramfsRoot prefixes initramfs: paths (default "/").
	InitramfsRoot string

	// Stdin is the ISO image the source "-" reads: standard input, received
	// by SpoolISO. Without it "-" is refused.
	Stdin *Spool
}

func (o SourceOptions) withDefaults() SourceOptions {
	if o.UserAgent == "" {
		o.UserAgent = "nodeinit"
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if o.Retries <= 0 {
		o.Retries = 6
	}
	def(&o.BackoffMin, 500*time.Millisecond)
	def(&o.BackoffMax, 15*time.Second)
	def(&o.RetryBudget, 5*time.Minute)
	def(&o.ConnectTimeout, 20*time.Second)
	def(&o.StallTimeout, 30*time.Second)
	def(&o.RateWindow, time.Minute)
	def(&o.Deadline, 4*time.Hour)
	if o.MinRate <= 0 {
		o.MinRate = 16 << 10
	}
	if o.SysRoot == "" {
		o.SysRoot = "/sys"
	}
	if o.DevRoot == "" {
		o.DevRoot = "/dev"
	}
	if o.MountDir == "" {
		o.MountDir = "/run/nodeinit/media"
	}
	if o.InitramfsRoot == "" {
		o.InitramfsRoot = "/"
	}
	if o.Mounter == nil {
		o.Mounter = defaultMounter()
	}
	return o
}

// Mounter mounts a block device read-only and unmounts it; the Linux
// implementation calls mount(2), tests may substitute their own.
type Mounter interface {
	MountReadOnly(device, target, fstype string) error
	Unmount(target string) error
}

// OpenSource opens the bundle source that spec names:
//
//	/path/to/dir           a local directory
//	/path/FILE[/sub/dir]   a regular file that is an ISO 9660 image (by its
//	                       content, whatever its name), read in place
//	                       without mounting: the bundle at its root, as
//	                       `nodeinit mkmedia iso` puts it, or in sub/dir
//	-                      the ISO image in SourceOptions.Stdin
//	/dev/NAME[/sub/dir]    that block device's iso9660, vfat or ext
//	                       filesystem, mounted read-only (any block device:
//	                       the operator named it)
//	label:NAME[/sub/dir]   the physical medium (a disk on a bus, or a
//	                       partition of one; see FindByLabel) whose iso9660,
//	                       vfat or ext filesystem is labelled NAME, mounted
//	                       read-only
//	initramfs:/path        a directory inside the initramfs
//	http://… or https://…  a URL prefix; files are fetched below it.
//	                       Several, joined by commas
//	                       (http://a/b/,https://c/d/), are mirrors tried in
//	                       order (see ParseMirrors): a download that fails
//	                       on one resumes on the next at the same byte
func OpenSource(spec string, opts SourceOptions) (Source, error) {
	opts = opts.withDefaults()
	switch {
	case spec == "":
		return nil, newError("open image source", `""`, fmt.Errorf("empty source"),
			"set nodeinit.image= to a URL, label:NAME or a directory")
	case spec == "-":
		if opts.Stdin == nil {
			return nil, newError("open image source", `"-"`, fmt.Errorf("standard input was not received"),
				"only `nodeinit upgrade --image -` reads an ISO from standard input; name a file, directory, label:NAME or URL")
		}
		return opts.Stdin.source()
	case strings.HasPrefix(spec, "http://"), strings.HasPrefix(spec, "https://"):
		return newHTTPSource(spec, opts)
	case strings.HasPrefix(spec, "label:"):
		return openLabelSource(strings.TrimPrefix(spec, "label:"), opts)
	case strings.HasPrefix(spec, "initramfs:"):
		p := strings.TrimPrefix(spec, "initramfs:")
		if !strings.HasPrefix(p, "/") {
			return nil, newError("open image source", spec, fmt.Errorf("path must be absolute"),
				"write it as initramfs:/path/to/bundle")
		}
		return newDirSource(filepath.Join(opts.InitramfsRoot, p), spec)
	case strings.Contains(spec, "://"):
		return nil, newError("open image source", spec, fmt.Errorf("unsupported scheme"),
			"use http://, https://, label:NAME, initramfs:/path or a directory path")
	default:
		if src, ok, err := openDeviceSource(spec, opts); ok {
			return src, err
		}
		if src, ok, err := openISOFileSource(spec); ok {
			return src, err
		}
		return newDirSource(spec, spec)
	}
}

// dirSource reads a bundle from a directory.
type dirSource struct {
	dir  string
	name string
}

func newDirSource(dir, name string) (*dirSource, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, newError("open image source", name, err, "check the path to the bundle directory")
	}
	if !st.IsDir() {
		return nil, newError("open image source", name, fmt.Errorf("not a directory"),
			"point at the directory holding manifest.json")
	}
	return &dirSource{dir: dir, name: name}, nil
}

func (d *dirSource) Open(ctx context.Context, name string) (io.ReadCloser, int64, error) {
	if err := checkName(name); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(filepath.Join(d.dir, name))
	if err != nil {
		return nil, 0, fmt.Errorf("open %s in %s: %w", name, d.name, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("stat %s in %s: %w", name, d.name, err)
	}
	return f, st.Size(), nil
}

func (d *dirSource) Cleartext() bool { return false }
func (d *dirSource) String() string  { return d.name }
func (d *dirSource) Close() error    { return nil }

// checkName refuses anything but a plain file name, so a manifest can never
// make a source read outside the bundle.
func checkName(name string) error {
	if name == "" || name != path.Base(name) || name == "." || name == ".." || strings.Contains(name, `\`) {
		return fmt.Errorf("bundle file name %q is not a plain file name: %w", name, fs.ErrInvalid)
	}
	return nil
}
