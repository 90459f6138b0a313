//go:build !initramfs

package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sandbox runs the commands of an edit against an unpacked image root:
// /proc, /sys and /dev of this machine are bind-mounted into the root, and
// the command runs in a network namespace of its own, which holds only a
// loopback interface that is down, so nothing it does reaches a network.
//
// The mounts are made in a mount namespace of their own too, on a thread
// that is never handed back to the Go scheduler (runtime.LockOSThread
// without unlock: the thread exits with the goroutine). Every mount is
// unmounted when the command ends, whether it failed or not, and the
// namespace is checked to be empty under the root afterwards; beyond that,
// no mount can outlive the edit or be seen by the rest of this machine even
// if nodeinit is killed halfway, and removing the work directory can never
// reach this machine's /dev through a bind mount left behind.
type sandbox struct {
	root  string
	log   io.Writer
	epoch int64 // SOURCE_DATE_EPOCH for the commands
}

// sandboxMounts are bind-mounted into the root, in this order; /dev with
// its submounts (pts, shm).
var sandboxMounts = []struct {
	path string
	rec  bool
}{{"/proc", false}, {"/sys", false}, {"/dev", true}}

// host runs a program of this machine (dpkg, depmod) on the root.
func (s sandbox) host(ctx context.Context, name string, args ...string) error {
	return s.run(ctx, false, name, args...)
}

// script copies file into the root and runs it there in a chroot: directly
// when it starts with "#!", else with /bin/sh.
func (s sandbox) script(ctx context.Context, file string) error {
	const dir = "/.nodeinit-edit"
	hostDir := filepath.Join(s.root, dir)
	if err := os.Mkdir(hostDir, 0o700); err != nil {
		return newError("image edit", "--script "+file, err, "the image root must not have "+dir)
	}
	defer os.RemoveAll(hostDir)
	b, err := os.ReadFile(file)
	if err != nil {
		return newError("image edit", "--script "+file, err, "check the path")
	}
	inImage := dir + "/" + filepath.Base(file)
	if err := os.WriteFile(filepath.Join(s.root, inImage), b, 0o755); err != nil {
		return newError("image edit", "--script "+file, err, "check the space beside --out")
	}
	argv := []string{inImage}
	if !bytes.HasPrefix(b, []byte("#!")) {
		argv = []string{"/bin/sh", inImage}
	}
	if err := s.run(ctx, true, argv[0], argv[1:]...); err != nil {
		return newError("image edit", "--script "+file, err,
			"the script failed inside the image (output above); fix it and run the edit again: nothing was written to --out")
	}
	return nil
}

// run runs name with args, chrooted into the root when chroot is set, with
// the mounts and no network; see sandbox.
func (s sandbox) run(ctx context.Context, chroot bool, name string, args ...string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see sandbox
		errc <- s.runLocked(ctx, chroot, name, args)
	}()
	return <-errc
}

func (s sandbox) runLocked(ctx context.Context, chroot bool, name string, args []string) (err error) {
	if err := unix.Unshare(unix.CLONE_NEWNS | unix.CLONE_FS); err != nil {
		return fmt.Errorf("new mount namespace: %w", err)
	}
	// Nothing mounted or unmounted from here on propagates to this machine.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	var created []string
	defer func() {
		if uerr := unmountUnder(s.root, "/proc/thread-self/mountinfo"); uerr != nil {
			err = errors.Join(err, uerr)
		}
		for i := len(created) - 1; i >= 0; i-- {
			os.Remove(created[i]) // the mount point the image did not have
		}
	}()
	for _, m := range sandboxMounts {
		target := filepath.Join(s.root, m.path)
		st, lerr := os.Lstat(target)
		switch {
		case errors.Is(lerr, fs.ErrNotExist):
			if err := os.Mkdir(target, 0o755); err != nil {
				return err
			}
			created = append(created, target)
		case lerr != nil:
			return lerr
		case !st.IsDir():
			return fmt.Errorf("%s in the image is not a directory (a link would be followed on this machine)", m.path)
		}
		flags := uintptr(unix.MS_BIND)
		if m.rec {
			flags |= unix.MS_REC
		}
		if err := unix.Mount(m.path, target, "", flags, ""); err != nil {
			return fmt.Errorf("bind %s into the image: %w", m.path, err)
		}
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C",
		"DEBIAN_FRONTEND=noninteractive", "SOURCE_DATE_EPOCH=" + strconv.FormatInt(s.epoch, 10), "NODEINIT_IMAGE_EDIT=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	cmd.Dir = "/"
	if chroot {
		cmd.SysProcAttr.Chroot = s.root
	}
	var tail bytes.Buffer
	cmd.Stdout = io.MultiWriter(s.log, &tail)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, lastLines(tail.Bytes(), 10))
	}
	return nil
}

// unmountUnder detaches every mount at or below root listed in mountinfo,
// deepest first, and fails when one is still there afterwards.
func unmountUnder(root, mountinfo string) error {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	for range 3 {
		mps, err := MountsUnder(real, mountinfo)
		if err != nil || len(mps) == 0 {
			return err
		}
		for _, mp := range mps {
			unix.Unmount(mp, unix.MNT_DETACH)
		}
	}
	mps, err := MountsUnder(real, mountinfo)
	if err == nil && len(mps) > 0 {
		err = fmt.Errorf("still mounted after the edit: %s", strings.Join(mps, ", "))
	}
	return err
}

// MountsUnder lists the mount points at or below root in the mountinfo table
// at path mountinfo (normally /proc/self/mountinfo), deepest first.
func MountsUnder(root, mountinfo string) ([]string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		mp := unescapeMountinfo(fs[4])
		if mp == root || strings.HasPrefix(mp, root+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeWork removes an edit's work directory, after making sure nothing is
// mounted below it in this machine's mount namespace: removing through a
// bind mount of /dev would delete this machine's device nodes.
func removeWork(work string) error {
	if err := unmountUnder(work, "/proc/self/mountinfo"); err != nil {
		return newError("image edit", work, err, "unmount what is listed, then remove "+work+" by hand")
	}
	if err := os.RemoveAll(work); err != nil {
		return newError("image edit", work, err, "remove "+work+" by hand")
	}
	return nil
}

// ownerOf returns the numeric owner and group of a file.
func ownerOf(st os.FileInfo) (int, int) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid), int(s.Gid)
	}
	return 0, 0
}
