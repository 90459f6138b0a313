package rescue

import (
	"io"
	"os"
	"strings"

	"github.com/u-root/u-root/pkg/mount"
	"golang.org/x/sys/unix"
)

func init() {
	register("mount", "[-r] [-t TYPE] [-o OPTS] SOURCE DIR  (no operands: list mounts)", mountCmd)
	register("umount", "[-f] [-l] DIR...", umount)
}

// mountRequest is a parsed mount command line; list is mount without operands.
type mountRequest struct {
	list                  bool
	source, dir, fs, data string
	flags                 uintptr
}

// mountFlags are the -o options that are mount(2) flags; the others go to the filesystem.
var mountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "rw": 0, "nosuid": unix.MS_NOSUID, "suid": 0, "nodev": unix.MS_NODEV, "dev": 0,
	"noexec": unix.MS_NOEXEC, "exec": 0, "sync": unix.MS_SYNCHRONOUS, "async": 0, "remount": unix.MS_REMOUNT,
	"bind": unix.MS_BIND, "rbind": unix.MS_BIND | unix.MS_REC, "move": unix.MS_MOVE, "noatime": unix.MS_NOATIME,
	"nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME, "defaults": 0,
}

func parseMount(c *call, args []string) (mountRequest, error) {
	var m mountRequest
	fs := c.flags()
	fs.StringVar(&m.fs, "t", "", "filesystem type; default: read from SOURCE")
	opts := fs.String("o", "", "comma-separated options")
	readOnly := fs.Bool("r", false, "read-only")
	if err := parse(fs, args); err != nil {
		return m, err
	}
	var data []string
	for _, o := range strings.Split(*opts, ",") {
		if f, ok := mountFlags[o]; ok {
			m.flags |= f
		} else if o != "" {
			data = append(data, o)
		}
	}
	if *readOnly {
		m.flags |= unix.MS_RDONLY
	}
	m.data = strings.Join(data, ",")
	switch fs.NArg() {
	case 0:
		m.list = true
	case 2:
		m.source, m.dir = fs.Arg(0), fs.Arg(1)
	default:
		return m, usagef("want SOURCE and DIR")
	}
	return m, nil
}

func mountCmd(c *call, args []string) error {
	m, err := parseMount(c, args)
	if err != nil {
		return err
	}
	if m.list {
		f, err := os.Open("/proc/mounts")
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(c.stdout, f)
		return err
	}
	if m.fs == "" && m.flags&(unix.MS_BIND|unix.MS_MOVE|unix.MS_REMOUNT) == 0 {
		_, err = mount.TryMount(m.source, m.dir, m.data, m.flags)
	} else {
		_, err = mount.Mount(m.source, m.dir, m.fs, m.data, m.flags)
	}
	return err
}

func umount(c *call, args []string) error {
	fs := c.flags()
	force := fs.Bool("f", false, "force")
	lazy := fs.Bool("l", false, "lazy: detach now, clean up when no longer busy")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("missing DIR")
	}
	for _, dir := range fs.Args() {
		if err := mount.Unmount(dir, *force, *lazy); err != nil {
			return err
		}
	}
	return nil
}
