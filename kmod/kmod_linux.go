package kmod

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nodeinit/nodeinit/modalias"
	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// Loader loads the modules of one root's lib/modules/<running kernel>
// (modules.dep, modules.builtin, modules.alias) through u-root's kmodule,
// which loads each dependency once and counts built-in and already loaded
// modules as loaded. It is safe for concurrent use.
type Loader struct {
	Prober *kmodule.Prober
	// Table is the root's modules.alias, or nil when it could not be read
	// (NoAlias says why); names are then taken as module names only.
	Table   *modalias.Table
	NoAlias error
	// Codepages are the NLS modules the root carries (kernel/fs/nls/), which
	// FAT and ISO 9660 mounts ask the kernel for by name.
	Codepages []string
}

var loaders = struct {
	sync.Mutex
	byRoot map[string]*Loader
}{byRoot: map[string]*Loader{}}

// Open returns the Loader of root ("/" at run time), reading its module
// tables the first time and sharing them afterwards.
func Open(root string) (*Loader, error) {
	loaders.Lock()
	defer loaders.Unlock()
	if l := loaders.byRoot[root]; l != nil {
		return l, nil
	}
	prober, err := kmodule.NewProber(kmodule.ProbeOpts{RootDir: root})
	if err != nil {
		return nil, fmt.Errorf("kernel modules under %s: %w", root, err)
	}
	l := &Loader{Prober: prober}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		l.NoAlias = fmt.Errorf("uname: %w", err)
	} else {
		dir := filepath.Join(root, "lib/modules", unix.ByteSliceToString(uts.Release[:]))
		if l.Table, err = modalias.ReadFile(filepath.Join(dir, "modules.alias")); err != nil {
			l.Table, l.NoAlias = nil, err
		}
		if dep, err := os.ReadFile(filepath.Join(dir, "modules.dep")); err == nil {
			l.Codepages = Codepages(dep)
		}
	}
	loaders.byRoot[root] = l
	return l, nil
}

// Load loads each name (a module or an alias) with its dependencies. The
// error names every module that did not load.
func (l *Loader) Load(names ...string) error {
	var errs []error
	for _, name := range names {
		for _, m := range Resolve(l.Table, name) {
			if err := l.Prober.Probe(m, ""); err != nil {
				errs = append(errs, fmt.Errorf("module %s: %w", m, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Load loads names through the Loader of "/".
func Load(names ...string) error {
	l, err := Open("/")
	if err != nil {
		return err
	}
	return l.Load(names...)
}

// Filesystem makes sure the running kernel can mount fstype: when
// /proc/filesystems does not list it, the module that provides it
// (FilesystemAlias) is loaded, and for a filesystem that names its codepages
// when mounted (UsesCodepages) the root's codepage modules with it, so that
// the mount does not wait for the kernel to run /bbin/modprobe for each. A type
// nothing provides is an error that says so, for the mount's own error to
// carry.
//
// Callers at once for the same type share one load: a mount that comes while
// Preload is still loading its driver waits for that load instead of starting
// its own.
func Filesystem(fstype string) error {
	if fstype == "" || strings.ContainsAny(fstype, "/ \t\n") {
		return nil // a bind or move mount, or a type the mount itself will refuse
	}
	if b, err := os.ReadFile("/proc/filesystems"); err == nil && Registered(b, fstype) {
		return nil
	}
	inFlight.Lock()
	f := inFlight.byType[fstype]
	if f == nil {
		f = &fsLoad{done: make(chan struct{})}
		inFlight.byType[fstype] = f
		inFlight.Unlock()
		f.err = loadDriver(fstype)
		inFlight.Lock()
		delete(inFlight.byType, fstype) // a later call checks /proc/filesystems again
		inFlight.Unlock()
		close(f.done)
		return f.err
	}
	inFlight.Unlock()
	<-f.done
	return f.err
}

// Preload starts loading the drivers of fstypes in the background, each as
// Filesystem does, and returns at once: the boot calls it for the types it is
// about to mount, so that the kernel links those modules on the other CPU
// while this one probes the disks. Errors are not reported here; the mount that
// needs the type calls Filesystem, which waits for the load and returns its
// error.
func Preload(fstypes ...string) {
	for _, t := range fstypes {
		go Filesystem(t) // the mount that needs t reports the error
	}
}

// fsLoad is one load of a filesystem's driver that other callers wait for.
type fsLoad struct {
	done chan struct{}
	err  error
}

var inFlight = struct {
	sync.Mutex
	byType map[string]*fsLoad
}{byType: map[string]*fsLoad{}}

// loadDriver is where Filesystem loads; tests replace it.
var loadDriver = loadFilesystem

// loadFilesystem loads fstype's driver, and its codepages when it uses them.
func loadFilesystem(fstype string) error {
	l, err := Open("/")
	if err != nil {
		return err
	}
	names := []string{FilesystemAlias(fstype)}
	if UsesCodepages[fstype] {
		names = append(names, l.Codepages...)
	}
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = l.Load(n) }()
	}
	wg.Wait()
	if errs[0] != nil {
		return fmt.Errorf("no driver for filesystem %s in this kernel or initramfs: %w", fstype, errs[0])
	}
	return nil
}
