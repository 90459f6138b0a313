//go:build !linux

package early

import (
	"errors"
	"io"
)

// RescueShell is only available on Linux.
func RescueShell(out io.Writer, facts string) error {
	return errors.New("rescue shell: only on linux")
}
