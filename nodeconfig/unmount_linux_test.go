package nodeconfig

import (
	"testing"

	"golang.org/x/sys/unix"
)

func unmount(t *testing.T, target string) {
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
		t.Errorf("unmount %s: %v", target, err)
	}
}
