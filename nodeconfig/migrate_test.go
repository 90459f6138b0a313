package nodeconfig

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestApplyMigrations(t *testing.T) {
	cfg, root := t.TempDir(), t.TempDir()
	mkfile(t, filepath.Join(root, "etc/old.conf"), "old")
	mkfile(t, filepath.Join(root, "etc/gone.conf"), "gone")
	if err := Persist(cfg, root, "/etc/old.conf", "/etc/gone.conf"); err != nil {
		t.Fatal(err)
	}
	ops := []Migration{
		{Op: OpMove, Path: "/etc/old.conf", To: "/etc/app/new.conf"},
		{Op: OpDelete, Path: "etc/gone.conf"},
		{Op: OpSet, Path: "/etc/app/flag", Value: "on\n", Mode: 0o600},
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := ApplyMigrations(cfg, ops); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if got := readFile(t, filepath.Join(cfg, "etc/app/new.conf")); got != "old" {
		t.Errorf("moved = %q", got)
	}
	for _, p := range []string{"etc/old.conf", "etc/gone.conf"} {
		if _, err := os.Stat(filepath.Join(cfg, p)); !os.IsNotExist(err) {
			t.Errorf("%s still there", p)
		}
	}
	if st, err := os.Stat(filepath.Join(cfg, "etc/app/flag")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("set: %v %v", st, err)
	}
	list, _ := Persisted(cfg)
	if !slices.Equal(list, []string{"/etc/app/flag", "/etc/app/new.conf"}) {
		t.Errorf("persisted = %v", list)
	}
	bad := [][]Migration{
		{{Op: "chmod", Path: "/etc/x"}},
		{{Op: OpMove, Path: "/etc/x"}},
		{{Op: OpDelete, Path: "../etc"}},
		{{Op: OpDelete, Path: "/"}},
		{{Op: OpDelete, Path: "/.snapshots/x"}},
		{{Op: OpSet, Path: "/etc/ok", Value: "1"}, {Op: "bogus", Path: "/etc/x"}},
	}
	for _, ops := range bad {
		if err := ApplyMigrations(cfg, ops); err == nil || !strings.Contains(err.Error(), "migration") {
			t.Errorf("ApplyMigrations(%+v) = %v", ops, err)
		}
	}
	if _, err := os.Stat(filepath.Join(cfg, "etc/ok")); !os.IsNotExist(err) {
		t.Error("a batch with a bad op was partly applied")
	}
}
