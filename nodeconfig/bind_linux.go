package nodeconfig

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// BindMounter bind-mounts with mount(2).
type BindMounter struct{}

// Bind mounts source over target (MS_BIND).
func (BindMounter) Bind(source, target string) error {
	if err := unix.Mount(source, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", source, target, err)
	}
	return nil
}
