// Package testtpm runs swtpm, the TPM 2.0 emulator, for tests.
//
// A unix socket's file appears when swtpm binds it, a moment before swtpm
// listens on it; a client that connects in between is refused. Waiting for
// the file is therefore not enough: these wait until the kernel lists the
// socket as listening (/proc/net/unix). They do not connect to find out,
// because swtpm --terminate exits when its first control client leaves.
package testtpm

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server starts swtpm with a fresh TPM 2.0 state in a temporary directory,
// serving TPM commands on a unix socket, and returns the socket's path once
// swtpm listens on it. It skips the test when swtpm is missing.
func Server(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "tpm.sock")
	start(t, sock, "socket", "--tpm2", "--tpmstate", "dir="+dir, "--server", "type=unixio,path="+sock,
		"--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl.sock"), "--flags", "not-need-init,startup-clear")
	return sock
}

// Control starts swtpm with its TPM 2.0 state in dir (kept across calls, so a
// node keeps its keys over power cycles) and only a control socket, the form
// QEMU's "-tpmdev emulator" attaches to. swtpm exits when that connection
// closes, that is when QEMU does. It returns the socket's path once swtpm
// listens on it, and skips the test when swtpm is missing.
func Control(t *testing.T, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "swtpm.sock")
	os.Remove(sock)
	start(t, sock, "socket", "--tpm2", "--tpmstate", "dir="+dir, "--ctrl", "type=unixio,path="+sock, "--terminate")
	return sock
}

func start(t *testing.T, sock string, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Skip("swtpm is not installed (Debian packages swtpm and swtpm-tools): the TPM tests need it")
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer // read only after Wait returns
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start swtpm: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("swtpm said:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := listening(sock)
		if ok {
			return
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("swtpm exited before it listened on %s: %v\n%s", sock, err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("swtpm did not listen on %s in 10s: %v", sock, err)
		}
	}
}

// soAcceptCon is the flag /proc/net/unix shows on a listening socket.
const soAcceptCon = 1 << 16

// listening tells whether a socket bound at path is listening.
func listening(path string) (bool, error) {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Num RefCount Protocol Flags Type St Inode Path
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[7] != path {
			continue
		}
		flags, err := strconv.ParseUint(fields[3], 16, 32)
		if err == nil && flags&soAcceptCon != 0 {
			return true, nil
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, errors.New("not listening yet")
}
