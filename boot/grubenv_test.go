package boot

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGrubenvAgainstGrubEditenv: a block grub-editenv writes parses to its
// variables, and a block Bytes writes is byte-identical to grub-editenv's and
// lists the same variables, escapes included.
func TestGrubenvAgainstGrubEditenv(t *testing.T) {
	if _, err := exec.LookPath("grub-editenv"); err != nil {
		t.Skip("grub-editenv (Debian grub-common) is not installed")
	}
	env := Grubenv{"node_a_left": "0", "node_a_done": "3", "node_b_left": "2", "odd": `back\slash` + "\nline"}
	file := filepath.Join(t.TempDir(), "grubenv")
	args := []string{file, "set"}
	for _, name := range []string{"node_a_done", "node_a_left", "node_b_left", "odd"} {
		args = append(args, name+"="+env[name])
	}
	if out, err := exec.Command("grub-editenv", file, "create").CombinedOutput(); err != nil {
		t.Fatalf("grub-editenv create: %v\n%s", err, out)
	}
	if out, err := exec.Command("grub-editenv", args...).CombinedOutput(); err != nil {
		t.Fatalf("grub-editenv set: %v\n%s", err, out)
	}
	theirs, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseGrubenv(theirs)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(env) {
		t.Errorf("parsed %q, want %q", got, env)
	}
	for k, v := range env {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	ours, err := env.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ours, theirs) {
		t.Errorf("our block differs from grub-editenv's:\n%q\n%q", ours, theirs)
	}
	// grub-editenv lists what we wrote.
	mine := filepath.Join(t.TempDir(), "mine")
	if err := os.WriteFile(mine, ours, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("grub-editenv", mine, "list").CombinedOutput()
	if err != nil {
		t.Fatalf("grub-editenv list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "node_b_left=2\n") || !strings.Contains(string(out), "node_a_left=0\n") {
		t.Errorf("grub-editenv list:\n%s", out)
	}
	// Removing a variable keeps the size, which save_env needs.
	delete(env, "odd")
	if b, _ := env.Bytes(); len(b) != GrubenvSize {
		t.Errorf("block of %d bytes", len(b))
	}
}

func TestGrubenvRefuses(t *testing.T) {
	if _, err := ParseGrubenv([]byte("x=1\n")); err == nil {
		t.Error("a block without the header parsed")
	}
	if _, err := (Grubenv{"x": strings.Repeat("y", GrubenvSize)}).Bytes(); err == nil {
		t.Error("a value larger than the block was written")
	}
	if _, err := (Grubenv{"a=b": "1"}).Bytes(); err == nil {
		t.Error("a name with '=' was written")
	}
}
