package cmdline

import (
	"fmt"

	"github.com/nodeinit/nodeinit/operr"
)

// Error is one malformed kernel argument. Parse joins several of them with errors.Join.
// Token never contains a secret: password arguments are shown as "adminpw=<redacted>".
//
// It unwraps to the operator error (operr) that the failure screen, the events and the
// CLI show: the fix has a line of its own there, so Error() does not repeat it.
type Error struct {
	Token   string // the argument as written (secrets redacted)
	Key     string // the canonical key, e.g. "storage_vol"
	Problem string // what is wrong
	Hint    string // how to fix it
}

// Error names the token and says what is wrong.
func (e *Error) Error() string {
	return fmt.Sprintf("kernel argument %q: %s", e.Token, e.Problem)
}

// Unwrap gives the operator error: what is wrong, and the fix.
func (e *Error) Unwrap() error {
	return &operr.Error{What: e.Error(), Fix: e.Hint}
}
