//go:build !linux

package debroot

// lockFile is a no-op where there is no flock: Debian roots are built on Linux.
func lockFile(string) (func(), error) { return func() {}, nil }
