// Package testloop attaches files to loop devices for tests and detaches
// each one exactly once.
//
// Detaching a loop device by name twice is a bug that shows only under load:
// once the first detach frees /dev/loopN, a test in another package may
// attach its own file there, and the second detach takes that device from
// under it (reads then fail with EIO). Every test that makes a loop device
// goes through here, so no cleanup detaches a device that is not its own.
package testloop

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// Loop is one loop device this process attached.
type Loop struct {
	// Dev is the device node, /dev/loopN.
	Dev  string
	once sync.Once
	err  error
}

// New attaches file to a free loop device: losetup -f --show, then args
// (say "-o", "1048576" or "-r"), then file.
func New(file string, args ...string) (*Loop, error) {
	full := append([]string{"-f", "--show"}, args...)
	out, err := exec.Command("losetup", append(full, file)...).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("losetup %s %s: %v: %s", strings.Join(full, " "), file, err, out)
	}
	return &Loop{Dev: strings.TrimSpace(string(out))}, nil
}

// Attach is New for a test: it fails the test when losetup does, and
// detaches the device in t.Cleanup (an error there fails the test).
func Attach(t testing.TB, file string, args ...string) *Loop {
	t.Helper()
	l, err := New(file, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Detach(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// Detach writes the device's cached blocks to the file, removes partitions
// added through BLKPG and detaches the device. Only the first call does
// anything; later ones return its result.
func (l *Loop) Detach() error {
	l.once.Do(func() {
		exec.Command("blockdev", "--flushbufs", l.Dev).Run()
		exec.Command("partx", "-d", l.Dev).Run() // none is fine
		if out, err := exec.Command("losetup", "-d", l.Dev).CombinedOutput(); err != nil {
			l.err = fmt.Errorf("losetup -d %s: %v: %s", l.Dev, err, out)
		}
	})
	return l.err
}
