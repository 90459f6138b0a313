package nodeconfig

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func mkfile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestPersistAndUnpersist(t *testing.T) {
	cfg, root := t.TempDir(), t.TempDir()
	mkfile(t, filepath.Join(root, "etc/hosts"), "127.0.0.1 localhost\n")
	mkfile(t, filepath.Join(root, "etc/pki/a.pem"), "A")
	mkfile(t, filepath.Join(root, "etc/pki/sub/b.pem"), "B")
	if err := Persist(cfg, root, "/etc/hosts", "/etc/pki/sub/b.pem"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(cfg, "etc/hosts")); got != "127.0.0.1 localhost\n" {
		t.Errorf("copy = %q", got)
	}
	if st, _ := os.Stat(filepath.Join(cfg, "etc/hosts")); st.Mode().Perm() != 0o640 {
		t.Errorf("mode not kept: %v", st.Mode())
	}
	// Persisting the directory replaces the entry below it.
	if err := Persist(cfg, root, "/etc/pki/"); err != nil {
		t.Fatal(err)
	}
	list, _ := Persisted(cfg)
	if !slices.Equal(list, []string{"/etc/hosts", "/etc/pki"}) {
		t.Errorf("list = %v", list)
	}
	// Already covered, and refreshing an edited file.
	mkfile(t, filepath.Join(root, "etc/hosts"), "edited\n")
	if err := Persist(cfg, root, "/etc/pki/a.pem", "/etc/hosts"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(cfg, "etc/hosts")); got != "edited\n" {
		t.Errorf("refresh = %q", got)
	}
	if list2, _ := Persisted(cfg); !slices.Equal(list2, list) {
		t.Errorf("list changed: %v", list2)
	}
	if err := Unpersist(cfg, "/etc/pki/a.pem"); !errors.Is(err, ErrNotPersisted) || !strings.Contains(err.Error(), "/etc/pki") {
		t.Errorf("unpersist inside a dir: %v", err)
	}
	if err := Unpersist(cfg, "/etc/nothing"); !errors.Is(err, ErrNotPersisted) {
		t.Errorf("unpersist unknown: %v", err)
	}
	if err := Unpersist(cfg, "/etc/hosts"); err != nil {
		t.Fatal(err)
	}
	if list, _ := Persisted(cfg); !slices.Equal(list, []string{"/etc/pki"}) {
		t.Errorf("after unpersist: %v", list)
	}
	if _, err := os.Stat(filepath.Join(cfg, "etc/hosts")); !os.IsNotExist(err) {
		t.Errorf("copy kept after unpersist: %v", err)
	}
}

func TestPersistRefuses(t *testing.T) {
	cfg, root := t.TempDir(), t.TempDir()
	mkfile(t, filepath.Join(root, "etc/hosts"), "x")
	os.Symlink("hosts", filepath.Join(root, "etc/hosts.link"))
	os.MkdirAll(filepath.Join(root, "usr"), 0o755)
	tests := []struct{ path, want string }{
		{"/", "top-level"},
		{"/etc", "top-level"},
		{"/usr/", "top-level"},
		{"/etc/../usr", "top-level"},
		{"etc/hosts", "absolute"},
		{"/proc/cmdline", "rebuilt"},
		{"/run/nodeinit/x", "rebuilt"},
		{"/etc/hosts.link", "symbolic link"},
		{"/etc/missing", "no such file"},
	}
	for _, tc := range tests {
		err := Persist(cfg, root, "/etc/hosts", tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Persist(%q) = %v, want %q", tc.path, err, tc.want)
		}
	}
	if des, _ := os.ReadDir(cfg); len(des) != 0 {
		t.Errorf("refused persist wrote %v", des)
	}
	if err := Persist(cfg, root); err == nil {
		t.Error("no path accepted")
	}
}

// recordingMounter records Bind calls.
type recordingMounter struct {
	calls [][2]string
	fail  string
}

func (m *recordingMounter) Bind(src, dst string) error {
	if m.fail != "" && strings.HasSuffix(dst, m.fail) {
		return errors.New("EPERM")
	}
	m.calls = append(m.calls, [2]string{src, dst})
	return nil
}

func TestBindPersisted(t *testing.T) {
	cfg, root, newRoot := t.TempDir(), t.TempDir(), t.TempDir()
	mkfile(t, filepath.Join(root, "etc/hosts"), "h")
	mkfile(t, filepath.Join(root, "etc/pki/a.pem"), "A")
	mkfile(t, filepath.Join(root, "etc/new/file"), "n")
	if err := Persist(cfg, root, "/etc/hosts", "/etc/pki", "/etc/new/file"); err != nil {
		t.Fatal(err)
	}
	m := &recordingMounter{}
	if err := BindPersisted(cfg, newRoot, m); err != nil {
		t.Fatal(err)
	}
	want := [][2]string{
		{filepath.Join(cfg, "etc/hosts"), filepath.Join(newRoot, "etc/hosts")},
		{filepath.Join(cfg, "etc/new/file"), filepath.Join(newRoot, "etc/new/file")},
		{filepath.Join(cfg, "etc/pki"), filepath.Join(newRoot, "etc/pki")},
	}
	if !slices.Equal(m.calls, want) {
		t.Errorf("binds = %v\nwant %v", m.calls, want)
	}
	if st, err := os.Stat(filepath.Join(newRoot, "etc/new/file")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("file target not created: %v", err)
	}
	if st, err := os.Stat(filepath.Join(newRoot, "etc/pki")); err != nil || !st.IsDir() {
		t.Errorf("dir target not created: %v", err)
	}
	// A lost copy and a failing mount are reported, the rest still mounted.
	os.Remove(filepath.Join(cfg, "etc/hosts"))
	m = &recordingMounter{fail: "etc/pki"}
	err := BindPersisted(cfg, newRoot, m)
	if err == nil || !strings.Contains(err.Error(), "/etc/hosts") || !strings.Contains(err.Error(), "EPERM") {
		t.Errorf("BindPersisted = %v", err)
	}
	if len(m.calls) != 1 || !strings.HasSuffix(m.calls[0][1], "etc/new/file") {
		t.Errorf("binds = %v", m.calls)
	}
}

func TestBindMounterReal(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("bind mounts need root")
	}
	cfg, root, newRoot := t.TempDir(), t.TempDir(), t.TempDir()
	mkfile(t, filepath.Join(root, "etc/hosts"), "from-config\n")
	mkfile(t, filepath.Join(newRoot, "etc/hosts"), "from-image\n")
	if err := Persist(cfg, root, "/etc/hosts"); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(newRoot, "etc/hosts")
	if err := BindPersisted(cfg, newRoot, BindMounter{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmount(t, target) })
	if got := readFile(t, target); got != "from-config\n" {
		t.Errorf("bind-mounted file reads %q", got)
	}
	// Persisting the bind-mounted file again must not truncate it (same inode).
	if err := Persist(cfg, newRoot, "/etc/hosts"); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(cfg, "etc/hosts")); got != "from-config\n" {
		t.Errorf("re-persist through the bind mount gave %q", got)
	}
}
