package image

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestMatchVersion(t *testing.T) {
	for _, tc := range []struct {
		v, c string
		want bool
	}{
		{"1.4.2", "1.x", true}, {"1", "1.x", true}, {"10.0", "1.x", false},
		{"1.9", ">=1.0 <2.0", true}, {"2.0", ">=1.0 <2.0", false}, {"1.10", ">1.9", true},
		{"1.2.0", "1.2", true}, {"1.2.0", "!=1.2", false}, {"0.9", "*", true},
	} {
		got, err := MatchVersion(tc.v, tc.c)
		if err != nil || got != tc.want {
			t.Errorf("MatchVersion(%q, %q) = %v, %v; want %v", tc.v, tc.c, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", ">=", ">1.x"} {
		if _, err := MatchVersion("1", bad); err == nil {
			t.Errorf("MatchVersion(1, %q) accepted a bad constraint", bad)
		}
	}
	m := &Manifest{UpgradeFrom: []string{">=1.0 <1.2"}}
	if !m.CanUpgradeFrom("1.1.5") || m.CanUpgradeFrom("1.2") {
		t.Error("CanUpgradeFrom ignores the constraint")
	}
}

func TestManifestValidate(t *testing.T) {
	priv, _ := testKeys(t)
	_, good := testBundle(t, priv)
	for _, tc := range []struct {
		name   string
		mutate func(m *Manifest)
	}{
		{"missing loader", func(m *Manifest) { m.Files = m.Files[:3] }},
		{"path in name", func(m *Manifest) { m.Files[1].Name = "../vmlinuz" }},
		{"bad digest", func(m *Manifest) { m.Files[1].SHA256 = "XYZ" }},
		{"unknown chunk hash", func(m *Manifest) { m.Files[0].ChunkHash = "md5" }},
		{"chunk count", func(m *Manifest) { m.Files[0].Chunks = m.Files[0].Chunks[1:] }},
		{"bad migration", func(m *Manifest) { m.Migrations = []Migration{{Op: "chmod", Path: "/etc/x"}} }},
		{"relative migration", func(m *Manifest) { m.Migrations = []Migration{{Op: OpDelete, Path: "etc/x"}} }},
		{"bad constraint", func(m *Manifest) { m.UpgradeFrom = []string{">"} }},
		{"format", func(m *Manifest) { m.Format = 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := *good
			m.Files = append([]File(nil), good.Files...)
			tc.mutate(&m)
			b, _ := m.Marshal()
			if _, err := ParseManifest(b); !errors.Is(err, ErrBadManifest) {
				t.Fatalf("ParseManifest = %v, want ErrBadManifest", err)
			}
		})
	}
}

// TestMinisignToolInterop checks that keys and signatures of the minisign
// command work with ours, both ways.
func TestMinisignToolInterop(t *testing.T) {
	if _, err := exec.LookPath("minisign"); err != nil {
		t.Skip("needs minisign")
	}
	dir, _ := testBundle(t, "")
	kd := t.TempDir()
	pub, key := filepath.Join(kd, "tool.pub"), filepath.Join(kd, "tool.key")
	if out, err := exec.Command("minisign", "-G", "-W", "-p", pub, "-s", key).CombinedOutput(); err != nil {
		t.Fatalf("minisign -G: %v: %s", err, out)
	}
	// Tool-made key, our signature, tool verifies.
	if err := Sign(dir, key, ""); err != nil {
		t.Fatalf("Sign with a minisign -G key: %v", err)
	}
	if out, err := exec.Command("minisign", "-V", "-p", pub, "-m", filepath.Join(dir, ManifestName)).CombinedOutput(); err != nil {
		t.Fatalf("minisign -V of our signature: %v: %s", err, out)
	}
	// Tool signature (prehashed by default), we verify.
	os.Remove(filepath.Join(dir, SignatureName))
	if out, err := exec.Command("minisign", "-S", "-s", key, "-m", filepath.Join(dir, ManifestName)).CombinedOutput(); err != nil {
		t.Fatalf("minisign -S: %v: %s", err, out)
	}
	keyDir := t.TempDir()
	os.Rename(pub, filepath.Join(keyDir, "tool.pub"))
	kr := mustKeyring(t, keyDir)
	b, err := Open(context.Background(), openDir(t, dir), kr, VerifyOptions{})
	if err != nil || !b.Signed {
		t.Fatalf("Open of a minisign-signed bundle: %v", err)
	}
}
