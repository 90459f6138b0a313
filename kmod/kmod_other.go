//go:build !linux

package kmod

import "errors"

var errUnsupported = errors.New("kernel modules: Linux only")

// Load loads kernel modules; only on Linux.
func Load(names ...string) error { return errUnsupported }

// Filesystem makes sure the kernel can mount fstype; only on Linux.
func Filesystem(fstype string) error { return nil }

// Preload starts loading filesystem drivers in the background; only on Linux.
func Preload(fstypes ...string) {}
