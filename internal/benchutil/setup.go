package benchutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"

	"github.com/nodeinit/nodeinit/qemu-tests/vm"
)

// NeedTools fails unless every program in tools is on PATH.
func NeedTools(tools ...string) error {
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s (make deps): %w", tool, err)
		}
	}
	return nil
}

// Debian returns the cached Debian kernel and firmware, fetching them when the
// cache has none.
func Debian(ctx context.Context, cache string) (vm.Artifacts, error) {
	deb, err := vm.Cached(cache)
	if err != nil {
		if deb, err = vm.Fetch(ctx, cache); err != nil {
			return deb, fmt.Errorf("Debian kernel: %w (run make fetch)", err)
		}
	}
	return deb, nil
}

// WorkDir makes a work directory under dir ("" for the default temporary
// directory). It returns the function that removes it, which does nothing when
// keep is set (the path is printed instead).
func WorkDir(dir, prefix string, keep bool) (string, func(), error) {
	work, err := os.MkdirTemp(dir, prefix)
	if err != nil {
		return "", nil, err
	}
	if keep {
		fmt.Println("work directory:", work)
		return work, func() {}, nil
	}
	return work, AtInterrupt(func() { os.RemoveAll(work) }), nil
}
