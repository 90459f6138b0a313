package nodeconfig

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Mounter makes bind mounts. The Linux implementation is BindMounter.
type Mounter interface {
	Bind(source, target string) error
}

// BindPersisted bind-mounts every persisted path from the config directory
// over newRoot (the node's overlay root before switch_root). A target missing
// in the image is created first (an empty file or a directory). A stored copy
// that has gone missing is skipped and reported; the others are still mounted,
// so one lost file does not stop the node from booting.
//
// The machine ID is the exception: it is copied into the overlay, not mounted.
// systemd takes an /etc/machine-id that is a mount point for a transient ID on
// tmpfs, and systemd-machine-id-commit.service then fails to commit it; a
// plain file with the stored ID is what machine-id(5) describes for a node
// whose ID never changes. (The copy lives in the overlay's tmpfs, so it is
// made again from the stored one on every boot.)
func BindPersisted(configDir, newRoot string, m Mounter) error {
	list, err := Persisted(configDir)
	if err != nil {
		return fmt.Errorf("bind persisted: %w", err)
	}
	var errs []error
	for _, p := range list { // sorted: parents before children
		src, dst := filepath.Join(configDir, p), filepath.Join(newRoot, p)
		info, err := os.Stat(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("bind persisted %s: stored copy: %w (hint: nodeinit unpersist %s)", p, err, p))
			continue
		}
		if filepath.Join("/", p) == MachineIDPath && info.Mode().IsRegular() {
			if err := copyMachineID(src, dst); err != nil {
				errs = append(errs, fmt.Errorf("persisted %s: %w", p, err))
			}
			continue
		}
		if err := makeTarget(dst, info.IsDir()); err != nil {
			errs = append(errs, fmt.Errorf("bind persisted %s: create target: %w", p, err))
			continue
		}
		if err := m.Bind(src, dst); err != nil {
			errs = append(errs, fmt.Errorf("bind persisted %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

func makeTarget(dst string, dir bool) error {
	if dir {
		return os.MkdirAll(dst, 0o755)
	}
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// copyMachineID writes the stored machine ID over the root's /etc/machine-id,
// read-only as systemd-machine-id-setup leaves it (replacing, not writing
// through, whatever the image has there, a link included).
func copyMachineID(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := dst + ".nodeinit"
	if err := os.WriteFile(tmp, data, 0o444); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}
