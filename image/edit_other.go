//go:build !linux && !initramfs

package image

import (
	"context"
	"errors"
	"io"
	"os"
)

// sandbox needs Linux namespaces; Edit refuses to start elsewhere.
type sandbox struct {
	root  string
	log   io.Writer
	epoch int64
}

var errEditLinux = errors.New("image edit runs on Linux only")

func (sandbox) host(context.Context, string, ...string) error { return errEditLinux }
func (sandbox) script(context.Context, string) error          { return errEditLinux }
func removeWork(work string) error                            { return os.RemoveAll(work) }
func ownerOf(os.FileInfo) (int, int)                          { return 0, 0 }
