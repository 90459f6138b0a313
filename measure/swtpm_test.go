package measure

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// startSWTPM runs swtpm as a process with a fresh TPM 2.0 state and returns
// the TPM through its unix socket. It skips the test when swtpm is missing.
func startSWTPM(t *testing.T) *Device {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Skip("swtpm is not installed (Debian package swtpm): the TPM tests need it")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "tpm.sock")
	cmd := exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+dir,
		"--server", "type=unixio,path="+sock, "--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl.sock"),
		"--flags", "not-need-init,startup-clear")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("swtpm made no socket in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	d, err := Open(sock)
	if err != nil {
		t.Fatalf("open swtpm: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
