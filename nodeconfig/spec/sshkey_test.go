package spec

import (
	"strings"
	"testing"
)

// A real ed25519 public key line (ssh-keygen -t ed25519).
const edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl admin@example.com"

// TestAdminSSHKey: a key is validated as one OpenSSH public key line, rendered root-owned
// under AuthorizedKeysDir, and sshd is pointed there; a bad one is refused.
func TestAdminSSHKey(t *testing.T) {
	c := Config{AdminSSHKey: "  " + strings.ReplaceAll(edKey, " ", "   ") + " "}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	files := map[string]File{}
	for _, f := range c.Files() {
		files[f.Path] = f
	}
	if f := files[AuthorizedKeysDir+"/admin"]; f.Content != edKey+"\n" || f.Mode != 0o644 {
		t.Errorf("authorized_keys file: %+v", f)
	}
	if f := files[SSHDPath]; !strings.Contains(f.Content, "AuthorizedKeysFile .ssh/authorized_keys /etc/nodeinit/ssh/%u\n") ||
		strings.Contains(f.Content, "PasswordAuthentication") {
		t.Errorf("sshd drop-in: %q", f.Content)
	}
	for _, bad := range []string{
		"ssh-ed25519",                         // no blob
		"ssh-rsa " + strings.Fields(edKey)[1], // the blob names another type
		"ssh-ed25519 not-base64!",
		edKey + "\nssh-ed25519 AAAA", // two lines
	} {
		if err := (Config{AdminSSHKey: bad}).Validate(); err == nil {
			t.Errorf("Validate accepted %q", bad)
		}
	}
	if files := (Config{Hostname: "n1"}).Files(); len(files) != 1 {
		t.Errorf("no key, no password auth: %d files, want only the host name", len(files))
	}
}
