package measure

import (
	"testing"

	"github.com/nodeinit/nodeinit/internal/testtpm"
)

// startSWTPM runs swtpm with a fresh TPM 2.0 state and returns the TPM
// through its unix socket. It skips the test when swtpm is missing.
func startSWTPM(t *testing.T) *Device {
	t.Helper()
	d, err := Open(testtpm.Server(t))
	if err != nil {
		t.Fatalf("open swtpm: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
