package rescue

import (
	"bytes"

	"golang.org/x/sys/unix"

	"github.com/nodeinit/nodeinit/internal/lazyre"
)

func init() { register("dmesg", "[-c]", dmesg) }

// syslog(2) actions (sys/klog.h).
const (
	klogReadAll   = 3
	klogReadClear = 4
	klogSize      = 10
)

// level is the "<6>" that starts each line of the kernel's log buffer (compiled
// on first use, as every rescue pattern: /init links them all).
var level = lazyre.New(`(?m)^<[0-9]+>`)

// dmesg prints the kernel log buffer; -c clears it after reading.
func dmesg(c *call, args []string) error {
	fs := c.flags()
	clearBuf := fs.Bool("c", false, "clear the buffer after reading it")
	if err := parse(fs, args); err != nil {
		return err
	}
	size, err := unix.Klogctl(klogSize, nil)
	if err != nil {
		return err
	}
	action := klogReadAll
	if *clearBuf {
		action = klogReadClear
	}
	buf := make([]byte, size)
	n, err := unix.Klogctl(action, buf)
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(level().ReplaceAll(bytes.TrimRight(buf[:n], "\x00"), nil))
	return err
}
