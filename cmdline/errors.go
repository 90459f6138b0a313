package cmdline

import "fmt"

// Error is one malformed kernel argument. Parse joins several of them with errors.Join.
// Token never contains a secret: password arguments are shown as "adminpw=<redacted>".
type Error struct {
	Token   string // the argument as written (secrets redacted)
	Key     string // the canonical key, e.g. "storage_vol"
	Problem string // what is wrong
	Hint    string // how to fix it
}

// Error names the token, says what is wrong and how to fix it.
func (e *Error) Error() string {
	msg := fmt.Sprintf("kernel argument %q: %s", e.Token, e.Problem)
	if e.Hint != "" {
		msg += "; fix: " + e.Hint
	}
	return msg
}
