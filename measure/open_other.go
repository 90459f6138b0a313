//go:build !linux

package measure

import (
	"fmt"
	"os"

	"github.com/google/go-tpm/tpm2/transport"
)

func openTransport(path string, _ os.FileInfo) (transport.TPMCloser, error) {
	return nil, fmt.Errorf("open %s: TPM access is implemented for Linux only; verify runs anywhere", path)
}
