package benchutil

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"sync"
	"time"

	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// Console is one QEMU run of a vm.Config, outside a test: its serial console can
// be waited on and typed into (qemu-tests/vm.Start needs a testing.TB).
type Console struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	ctx     context.Context
	cancel  context.CancelFunc
	timeout time.Duration
	done    chan error

	mu  sync.Mutex
	buf bytes.Buffer
}

// StartQEMU starts cfg with -nographic (and cfg's kernel, initramfs and command
// line when it has a kernel). The console also goes to logw. QEMU is killed when
// timeout passes.
func StartQEMU(ctx context.Context, cfg vm.Config, timeout time.Duration, logw io.Writer) (*Console, error) {
	args, err := cfg.Args()
	if err != nil {
		return nil, err
	}
	args = append(args, "-nographic")
	if cfg.Kernel != "" {
		args = append(args, "-kernel", cfg.Kernel, "-initrd", cfg.Initramfs, "-append", cfg.Append)
	}
	c := &Console{timeout: timeout, done: make(chan error, 1)}
	c.ctx, c.cancel = context.WithTimeout(ctx, timeout)
	c.cmd = exec.CommandContext(c.ctx, "qemu-system-x86_64", args...)
	w := io.MultiWriter(c, logw)
	c.cmd.Stdout, c.cmd.Stderr = w, w
	// A pipe that stays open: QEMU's stdio monitor must not see end of file.
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		c.cancel()
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		c.cancel()
		return nil, err
	}
	go func() { c.done <- c.cmd.Wait() }()
	return c, nil
}

// Write takes QEMU's output.
func (c *Console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

// Output is the console so far.
func (c *Console) Output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

// Send types s on the serial console.
func (c *Console) Send(s string) { io.WriteString(c.stdin, s) }

// Expect waits until the console matches re and returns the submatches.
func (c *Console) Expect(re string, timeout time.Duration) ([]string, error) {
	r := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := r.FindStringSubmatch(c.Output()); m != nil {
			return m, nil
		}
		select {
		case err := <-c.done:
			c.done <- err
			if m := r.FindStringSubmatch(c.Output()); m != nil {
				return m, nil
			}
			return nil, fmt.Errorf("QEMU exited (%v) before %q\n%s", err, re, Tail(c.Output(), 30))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("no %q within %s\n%s", re, timeout, Tail(c.Output(), 30))
}

// Wait waits for QEMU to exit and returns the whole console.
func (c *Console) Wait() (string, error) {
	err := <-c.done
	c.done <- err
	timedOut := c.ctx.Err() != nil
	c.cancel()
	switch {
	case timedOut:
		return c.Output(), fmt.Errorf("qemu still running after %s", c.timeout)
	case err != nil:
		return c.Output(), fmt.Errorf("qemu: %w", err)
	}
	return c.Output(), nil
}

// Kill stops QEMU.
func (c *Console) Kill() {
	c.cancel()
	c.stdin.Close()
}
