//go:build !linux

package image

import (
	"os"
	"unsafe"
)

func openTarget(path string, offset int64) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	return f, false, err
}

func setDirect(f *os.File, on bool) error { return nil }

func isEINVAL(err error) bool { return false }

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func chunkBuffers(n, size int) ([][]byte, func(), error) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = alignedBuffer(size, 4096)
	}
	return bufs, func() {}, nil
}
