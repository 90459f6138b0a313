package measure

import (
	"errors"
	"io/fs"
	"os"
)

// DefaultDevice is the kernel's TPM resource manager, which lets several
// programs use the TPM at once.
const DefaultDevice = "/dev/tpmrm0"

// ErrNoTPM means the machine has no TPM 2.0 at the path asked for: normal,
// not a failure.
var ErrNoTPM = errors.New("no TPM 2.0")

// Open opens the TPM at path: a character device such as /dev/tpmrm0, or the
// unix socket of an emulator (swtpm's --server type=unixio). A path that does
// not exist is ErrNoTPM.
func Open(path string) (*Device, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoTPM
	}
	if err != nil {
		return nil, err
	}
	t, err := openTransport(path, fi)
	if err != nil {
		return nil, err
	}
	return NewDevice(t), nil
}
