//go:build !initramfs

package image

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The helpers below change files inside an extracted image root. Every path
// they take is a path inside the image ("/etc/shadow"), and symbolic links in
// it are followed the way the image itself would follow them: an absolute
// link restarts at the image root, never at this machine's /. Without that a
// link such as /etc -> /host/etc in an image would make the edit write to the
// build machine.

// inRoot returns the host path of p inside root, resolving symbolic links
// within root. The last component is resolved only when followLast is set,
// so that a link there can be replaced rather than written through.
func inRoot(root, p string, followLast bool) (string, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := "/"
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, part)
		if len(parts) == 0 && !followLast {
			cur = next
			break
		}
		fi, err := os.Lstat(filepath.Join(root, next))
		if errors.Is(err, fs.ErrNotExist) {
			cur = next
			continue
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if hops++; hops > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links in the image", p)
		}
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return filepath.Join(root, cur), nil
}

// mkdirInRoot creates directory p in root (and its parents, 0755 root:root)
// and returns its host path.
func mkdirInRoot(root, p string) (string, error) {
	cur := "/"
	for _, part := range strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/") {
		if part == "" {
			continue
		}
		host, err := inRoot(root, path.Join(cur, part), true)
		if err != nil {
			return "", err
		}
		cur = strings.TrimPrefix(host, filepath.Clean(root))
		if cur == "" {
			cur = "/"
		}
		fi, err := os.Stat(host)
		switch {
		case err == nil && fi.IsDir():
			continue
		case err == nil:
			return "", fmt.Errorf("%s in the image is not a directory", cur)
		}
		if err := os.Mkdir(host, 0o755); err != nil {
			return "", err
		}
		if err := os.Lchown(host, 0, 0); err != nil {
			return "", err
		}
	}
	return inRoot(root, p, true)
}

// owner is a numeric owner and group in the image.
type owner struct{ uid, gid int }

// copyInto copies the file or directory tree src to dest inside root, owned
// by o, and returns the image paths it wrote, sorted. mode, when not zero,
// is the mode of dest itself; everything else keeps its source permissions.
// An existing file at dest is replaced; an existing directory is merged into.
func copyInto(root, src, dest string, o owner, mode fs.FileMode) ([]string, error) {
	dest = path.Clean("/" + dest)
	parent, err := mkdirInRoot(root, path.Dir(dest))
	if err != nil {
		return nil, err
	}
	var wrote []string
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		img := path.Join(dest, filepath.ToSlash(rel))
		host := filepath.Join(parent, path.Base(dest), rel)
		if rel != "." {
			if host, err = inRoot(root, img, false); err != nil {
				return err
			}
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		m := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
		if rel == "." && mode != 0 {
			m = mode
		}
		switch {
		case fi.IsDir():
			if st, err := os.Lstat(host); err == nil && !st.IsDir() {
				if err := os.Remove(host); err != nil {
					return err
				}
			}
			if err := os.Mkdir(host, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := removeNonDir(host); err != nil {
				return err
			}
			if err := os.Symlink(target, host); err != nil {
				return err
			}
			wrote = append(wrote, img)
			return os.Lchown(host, o.uid, o.gid)
		case fi.Mode().IsRegular():
			if err := removeNonDir(host); err != nil {
				return err
			}
			if err := copyFileTo(p, host); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is neither a file, a directory nor a symbolic link", p)
		}
		wrote = append(wrote, img)
		if err := os.Lchown(host, o.uid, o.gid); err != nil {
			return err
		}
		return os.Chmod(host, m)
	})
	sort.Strings(wrote)
	return wrote, err
}

// removeNonDir removes a file or link at host, refusing a directory.
func removeNonDir(host string) error {
	st, err := os.Lstat(host)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case st.IsDir():
		return fmt.Errorf("%s is a directory in the image; a file cannot replace it", host)
	}
	return os.Remove(host)
}

func copyFileTo(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// account is one line of the image's /etc/passwd.
type account struct {
	name     string
	uid, gid int
	home     string
}

// readAccounts reads /etc/passwd (or /etc/group when group is set) of the image: name → ids.
func readAccounts(root string, group bool) (map[string]account, error) {
	file := "/etc/passwd"
	if group {
		file = "/etc/group"
	}
	host, err := inRoot(root, file, true)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(host)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]account{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]account{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Split(sc.Text(), ":")
		if len(fs) < 3 {
			continue
		}
		a := account{name: fs[0]}
		a.uid, _ = strconv.Atoi(fs[2])
		if !group && len(fs) >= 6 {
			a.gid, _ = strconv.Atoi(fs[3])
			a.home = fs[5]
		}
		out[a.name] = a
	}
	return out, sc.Err()
}

// lookupOwner resolves user and group names (or numbers) against the image's
// own /etc/passwd and /etc/group, never this machine's. Empty means root.
func lookupOwner(root, user, group string) (owner, error) {
	var o owner
	resolve := func(name string, isGroup bool) (int, error) {
		if name == "" {
			return 0, nil
		}
		if n, err := strconv.Atoi(name); err == nil && n >= 0 {
			return n, nil
		}
		accts, err := readAccounts(root, isGroup)
		if err != nil {
			return 0, err
		}
		a, ok := accts[name]
		if !ok {
			what := "user"
			if isGroup {
				what = "group"
			}
			return 0, fmt.Errorf("the image has no %s %q", what, name)
		}
		return a.uid, nil
	}
	var err error
	if o.uid, err = resolve(user, false); err != nil {
		return o, err
	}
	o.gid, err = resolve(group, true)
	return o, err
}

// rewriteFile replaces the content of image file p (following links) with
// b, keeping its mode and owner, or creating it with mode and root:root.
func rewriteFile(root, p string, b []byte, mode fs.FileMode) error {
	host, err := inRoot(root, p, true)
	if err != nil {
		return err
	}
	uid, gid := 0, 0
	if st, err := os.Stat(host); err == nil {
		mode = st.Mode().Perm()
		uid, gid = ownerOf(st)
	}
	tmp := host + ".nodeinit-edit"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Chown(tmp, uid, gid); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, host)
}
