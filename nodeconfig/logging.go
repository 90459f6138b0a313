package nodeconfig

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// JournalDir is the directory, below /var/log, where systemd-journald keeps a
// persistent journal: with its default Storage=auto it writes there when the
// directory exists, and only to /run (lost at every boot) when it does not.
const JournalDir = "journal"

// Staging names inside a node-logging filesystem while SeedLogging copies.
const (
	logSeedCopying = ".nodeinit-seed.tmp" // the copy being made: dropped by the next boot
	logSeedCopied  = ".nodeinit-seed"     // the whole copy, being moved into place
)

// SeedLogging prepares the node-logging filesystem, mounted at logDir over the
// node's /var/log, before the node starts. A new filesystem (nothing on it but
// lost+found) would hide the image's /var/log, whose directories, owners and
// modes the node's services expect, so it first gets a copy of imageLogDir, the
// image's /var/log as the slot holds it (modes with their setgid bits, owners
// and symbolic links kept; sockets and device nodes skipped). A filesystem that
// holds anything else is the node's own and is never copied into. Then logDir
// gets a journal directory when it has none, so that the journal persists. It
// reports whether it copied.
//
// The copy survives a power cut at any point: it is made in a staging
// directory that is renamed only once it is whole, and its entries are then
// moved into place; the next boot drops an unfinished copy and starts again,
// or finishes the moves of a whole one.
func SeedLogging(logDir, imageLogDir string) (seeded bool, err error) {
	if err := os.RemoveAll(filepath.Join(logDir, logSeedCopying)); err != nil {
		return false, fmt.Errorf("seed %s: drop an unfinished copy: %w", logDir, err)
	}
	copied := filepath.Join(logDir, logSeedCopied)
	if _, err := os.Lstat(copied); errors.Is(err, fs.ErrNotExist) {
		fresh, err := freshFS(logDir)
		if err != nil {
			return false, fmt.Errorf("seed %s: %w", logDir, err)
		}
		if fresh {
			if seeded, err = copyLogs(logDir, imageLogDir); err != nil {
				return false, fmt.Errorf("seed %s from %s: %w", logDir, imageLogDir, err)
			}
		}
	} else if err != nil {
		return false, fmt.Errorf("seed %s: %w", logDir, err)
	} else {
		seeded = true // a whole copy from a boot that was cut: finish it
	}
	if seeded {
		if err := moveInto(copied, logDir); err != nil {
			return false, fmt.Errorf("seed %s: %w", logDir, err)
		}
	}
	if err := makeJournalDir(logDir); err != nil {
		return seeded, fmt.Errorf("seed %s: %w", logDir, err)
	}
	return seeded, nil
}

// freshFS reports whether dir holds nothing but lost+found, as mke2fs leaves it.
func freshFS(dir string) (bool, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return false, err
	}
	for _, d := range des {
		if d.Name() != "lost+found" {
			return false, nil
		}
	}
	return true, nil
}

// copyLogs copies imageLogDir into logDir's staging directory, gives logDir
// the mode and owner of imageLogDir, and renames the staging directory to
// logSeedCopied once everything in it is durable. It copies nothing, and
// reports false, when the image has no /var/log directory.
func copyLogs(logDir, imageLogDir string) (bool, error) {
	info, err := os.Lstat(imageLogDir)
	if errors.Is(err, fs.ErrNotExist) || err == nil && !info.IsDir() {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	tmp := filepath.Join(logDir, logSeedCopying)
	defer os.RemoveAll(tmp) // gone after the rename
	special := func(rel string) bool {
		fi, err := os.Lstat(filepath.Join(imageLogDir, rel))
		return err == nil && !fi.IsDir() && !fi.Mode().IsRegular() && fi.Mode()&os.ModeSymlink == 0
	}
	if err := copyTree(imageLogDir, tmp, special); err != nil {
		return false, err
	}
	if err := syncDirs(tmp); err != nil {
		return false, err
	}
	keepOwner(logDir, info)
	if err := os.Chmod(logDir, modeBits(info)); err != nil {
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(logDir, logSeedCopied)); err != nil {
		return false, err
	}
	return true, syncDir(logDir)
}

// moveInto renames every entry of src into dst, which is src's parent, then
// removes src. An entry dst holds already was moved before a power cut.
func moveInto(src, dst string) error {
	des, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, d := range des {
		to := filepath.Join(dst, d.Name())
		if _, err := os.Lstat(to); err == nil {
			continue
		}
		if err := os.Rename(filepath.Join(src, d.Name()), to); err != nil {
			return err
		}
	}
	if err := syncDir(dst); err != nil {
		return err
	}
	if err := os.RemoveAll(src); err != nil {
		return err
	}
	return syncDir(dst)
}

// makeJournalDir makes logDir/journal when it is missing, with the mode
// systemd's tmpfiles.d gives it (2755; its own rules then set the group).
func makeJournalDir(logDir string) error {
	dir := filepath.Join(logDir, JournalDir)
	if _, err := os.Lstat(dir); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755|os.ModeSetgid); err != nil {
		return err
	}
	return syncDir(logDir)
}

// syncDirs fsyncs every directory below and including root, so that the
// entries in them are durable before root is renamed into place.
func syncDirs(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncDir(p)
	})
}
