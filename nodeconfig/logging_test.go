package nodeconfig

import (
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// imageLogs builds an image's /var/log with what a real one holds: a
// directory with another group and the setgid bit, private files, a
// symbolic link and a FIFO (which is not copied).
func imageLogs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "var/log")
	mkfile(t, filepath.Join(dir, "apt/history.log"), "Start-Date: 2026-01-01\n")
	mkfile(t, filepath.Join(dir, "private/secret.log"), "s\n")
	mkfile(t, filepath.Join(dir, "wtmp"), "")
	for p, mode := range map[string]os.FileMode{
		"":                   0o775,
		"private":            0o700,
		"private/secret.log": 0o600,
		"apt":                0o755 | os.ModeSetgid,
		"wtmp":               0o664,
	} {
		if err := os.Chmod(filepath.Join(dir, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("private/secret.log", filepath.Join(dir, "latest")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "initctl"), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		for p, gid := range map[string]int{"": 4, "apt": 4, "wtmp": 43} {
			if err := os.Lchown(filepath.Join(dir, p), 0, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// freshLogging is a new node-logging filesystem: lost+found only.
func freshLogging(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// treeOf describes every entry below root, root itself as ".": mode, owner
// (when running as root) and content or link target.
func treeOf(t *testing.T, root string, skip ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		for _, s := range skip {
			if rel == s {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := os.Lstat(p)
		if err != nil {
			return err
		}
		desc := info.Mode().String()
		if st, ok := info.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
			desc += fmt.Sprintf(" %d:%d", st.Uid, st.Gid)
		}
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case info.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			desc += " " + string(b)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// wantSeeded is what a fresh node-logging holds after SeedLogging from img:
// the image's tree without its FIFO, lost+found, and the journal directory.
func wantSeeded(t *testing.T, img string) map[string]string {
	t.Helper()
	want := treeOf(t, img, "initctl")
	want["lost+found"] = "drwx------"
	want[JournalDir] = "dgrwxr-xr-x"
	if os.Geteuid() == 0 {
		want["lost+found"] += " 0:0"
		want[JournalDir] += " 0:0"
	}
	return want
}

func checkTree(t *testing.T, what, dir string, want map[string]string) {
	t.Helper()
	if got := treeOf(t, dir); !maps.Equal(got, want) {
		t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestSeedLoggingCopiesTheImagesLogDir: a new node-logging gets the image's
// /var/log with modes (setgid too), owners and links, and a journal directory.
func TestSeedLoggingCopiesTheImagesLogDir(t *testing.T) {
	img, logs := imageLogs(t), freshLogging(t)
	seeded, err := SeedLogging(logs, img)
	if err != nil || !seeded {
		t.Fatalf("SeedLogging = %v, %v; want a copy", seeded, err)
	}
	checkTree(t, "node-logging after the seed", logs, wantSeeded(t, img))

	// The next boot finds the node's own logs and leaves them, and the image's
	// later changes, alone.
	mkfile(t, filepath.Join(logs, "syslog"), "node booted\n")
	mkfile(t, filepath.Join(img, "dpkg.log"), "from a newer image\n")
	before := treeOf(t, logs)
	if seeded, err := SeedLogging(logs, img); err != nil || seeded {
		t.Fatalf("second boot: SeedLogging = %v, %v; want no copy", seeded, err)
	}
	checkTree(t, "node-logging after the second boot", logs, before)
}

// TestSeedLoggingLeavesANodesLogsAlone: a node-logging in use (an install
// from before this seeding) is not copied into, but gets its journal
// directory; a journal directory of the node's own is kept as it is.
func TestSeedLoggingLeavesANodesLogsAlone(t *testing.T) {
	img := imageLogs(t)
	logs := freshLogging(t)
	mkfile(t, filepath.Join(logs, "messages"), "old\n")
	before := treeOf(t, logs)
	if seeded, err := SeedLogging(logs, img); err != nil || seeded {
		t.Fatalf("SeedLogging = %v, %v; want no copy", seeded, err)
	}
	if _, err := os.Stat(filepath.Join(logs, "apt")); !os.IsNotExist(err) {
		t.Errorf("the image's logs were copied over the node's (stat apt: %v)", err)
	}
	want := maps.Clone(before)
	want[JournalDir] = wantSeeded(t, img)[JournalDir]
	checkTree(t, "node-logging in use", logs, want)

	if err := os.Chmod(filepath.Join(logs, JournalDir), 0o750); err != nil {
		t.Fatal(err)
	}
	mkfile(t, filepath.Join(logs, JournalDir, "0123/system.journal"), "j")
	before = treeOf(t, logs)
	if _, err := SeedLogging(logs, img); err != nil {
		t.Fatal(err)
	}
	checkTree(t, "node-logging with its own journal", logs, before)
}

// TestSeedLoggingImageWithoutVarLog: nothing to copy; the journal directory
// is still made.
func TestSeedLoggingImageWithoutVarLog(t *testing.T) {
	logs := freshLogging(t)
	seeded, err := SeedLogging(logs, filepath.Join(t.TempDir(), "var/log"))
	if err != nil || seeded {
		t.Fatalf("SeedLogging = %v, %v", seeded, err)
	}
	if st, err := os.Stat(filepath.Join(logs, JournalDir)); err != nil || st.Mode() != os.ModeDir|os.ModeSetgid|0o755 {
		t.Errorf("journal directory: %v, %v", st, err)
	}
}

// TestSeedLoggingAfterAPowerCut: a copy cut half way is dropped and made
// again; a whole copy cut while it was moved into place is finished. Either
// way node-logging ends as after an uninterrupted seed.
func TestSeedLoggingAfterAPowerCut(t *testing.T) {
	img := imageLogs(t)
	want := wantSeeded(t, img)

	cutCopy := freshLogging(t)
	mkfile(t, filepath.Join(cutCopy, logSeedCopying, "apt/history.log"), "Start-")
	if seeded, err := SeedLogging(cutCopy, img); err != nil || !seeded {
		t.Fatalf("after a cut copy: SeedLogging = %v, %v", seeded, err)
	}
	checkTree(t, "node-logging after a cut copy", cutCopy, want)

	// A whole copy, cut after apt and wtmp were moved into place.
	cutMove := freshLogging(t)
	if _, err := copyLogs(cutMove, img); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"apt", "wtmp"} {
		if err := os.Rename(filepath.Join(cutMove, logSeedCopied, name), filepath.Join(cutMove, name)); err != nil {
			t.Fatal(err)
		}
	}
	if seeded, err := SeedLogging(cutMove, img); err != nil || !seeded {
		t.Fatalf("after a cut move: SeedLogging = %v, %v", seeded, err)
	}
	checkTree(t, "node-logging after a cut move", cutMove, want)
}
