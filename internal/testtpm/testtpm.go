// Package testtpm runs swtpm, the TPM 2.0 emulator, for tests and the boot
// benchmark.
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
	"fmt"
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
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Skip(errNoSWTPM)
	}
	sock := filepath.Join(dir, "tpm.sock")
	sw, err := start(sock, "socket", "--tpm2", "--tpmstate", "dir="+dir, "--server", "type=unixio,path="+sock,
		"--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl.sock"), "--flags", "not-need-init,startup-clear")
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, sw)
	return sock
}

// Control starts swtpm with its TPM 2.0 state in dir (kept across calls, so a
// node keeps its keys over power cycles) and only a control socket, the form
// QEMU's "-tpmdev emulator" attaches to. swtpm exits when that connection
// closes, that is when QEMU does. It returns the socket's path once swtpm
// listens on it, and skips the test when swtpm is missing.
func Control(t *testing.T, dir string) string {
	t.Helper()
	if _, err := exec.LookPath("swtpm"); err != nil {
		t.Skip(errNoSWTPM)
	}
	sock, sw, err := StartControl(dir)
	if err != nil {
		t.Fatal(err)
	}
	cleanup(t, sw)
	return sock
}

// StartControl is Control for programs that are not tests (the boot
// benchmark): the caller stops the returned process.
func StartControl(dir string) (sock string, sw *Process, err error) {
	sock = filepath.Join(dir, "swtpm.sock")
	os.Remove(sock)
	sw, err = start(sock, "socket", "--tpm2", "--tpmstate", "dir="+dir, "--ctrl", "type=unixio,path="+sock, "--terminate")
	return sock, sw, err
}

// errNoSWTPM is why a TPM test skips.
const errNoSWTPM = "swtpm is not installed (Debian packages swtpm and swtpm-tools): the TPM tests need it"

// Process is a running swtpm.
type Process struct {
	cmd    *exec.Cmd
	exited chan error
	stderr bytes.Buffer // read only after Wait returns
}

// Stop kills swtpm and waits for it; it returns what swtpm wrote to stderr.
func (p *Process) Stop() string {
	p.cmd.Process.Kill()
	err := <-p.exited
	p.exited <- err
	return p.stderr.String()
}

func cleanup(t *testing.T, p *Process) {
	t.Cleanup(func() {
		if said := p.Stop(); t.Failed() {
			t.Logf("swtpm said:\n%s", said)
		}
	})
}

// start runs swtpm with args and waits until it listens on sock.
func start(sock string, args ...string) (*Process, error) {
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		return nil, errors.New(errNoSWTPM)
	}
	p := &Process{cmd: exec.Command(bin, args...), exited: make(chan error, 1)}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok, err := listening(sock)
		if ok {
			return p, nil
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			return nil, fmt.Errorf("swtpm exited before it listened on %s: %v\n%s", sock, err, p.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			said := p.Stop()
			return nil, fmt.Errorf("swtpm did not listen on %s in 10s: %v\n%s", sock, err, said)
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
