package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLoadKeyringFromOneFile: the keyring is a directory of *.pub files or one
// of them; a file that is no minisign key is refused, naming it.
func TestLoadKeyringFromOneFile(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "node.pub")
	if err := GenerateKey(pub, filepath.Join(t.TempDir(), "node.key"), ""); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, pub} {
		kr, err := LoadKeyring(p)
		if err != nil || kr.Len() != 1 {
			t.Errorf("LoadKeyring(%s): %d keys, %v; want 1", p, kr.Len(), err)
		}
	}
	bad := filepath.Join(dir, "bad.pub")
	os.WriteFile(bad, []byte("not a key\n"), 0o644)
	if _, err := LoadKeyring(bad); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("LoadKeyring(bad file): %v, want an error naming it", err)
	}
}
