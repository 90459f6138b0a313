// Package lazyre gives regular expressions that compile on first use. A
// package-level regexp.MustCompile runs at every start of every binary that
// links the package, /init's included, where each costs about a millisecond
// under QEMU's emulation whether the boot uses it or not.
package lazyre

import (
	"regexp"
	"sync"
)

// New returns a function that compiles expr the first time it is called and
// returns the same *regexp.Regexp on every call. Like regexp.MustCompile, it
// panics, at that first call, when expr is not a valid expression.
func New(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
