package image

import (
	"errors"
	"fmt"
)

// Sentinel errors for states the operator has to act on. They are wrapped in
// an *Error that names the file or URL and carries a hint.
var (
	// ErrUnsigned means the manifest has no signature file.
	ErrUnsigned = errors.New("manifest is not signed")
	// ErrBadSignature means no trusted key verifies the manifest signature.
	ErrBadSignature = errors.New("manifest signature does not verify with any trusted key")
	// ErrPinMismatch means the manifest digest differs from nodeinit.image.sha256.
	ErrPinMismatch = errors.New("manifest SHA-256 does not match the pinned digest")
	// ErrCleartext means an unauthenticated manifest was offered over plain http.
	ErrCleartext = errors.New("refusing an unauthenticated manifest over plain http")
	// ErrDigestMismatch means a file's SHA-256 differs from the manifest.
	ErrDigestMismatch = errors.New("SHA-256 mismatch")
	// ErrSizeMismatch means a file's size differs from the manifest.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrBadManifest means the manifest is malformed or incomplete.
	ErrBadManifest = errors.New("invalid manifest")
)

// Error is an image error an operator can act on: the operation, the file or
// URL it concerns, the cause and a hint on how to fix it.
type Error struct {
	Op      string // e.g. "verify manifest"
	Subject string // file name, path or URL
	Err     error
	HintMsg string
}

// Error names the operation, the file or URL, and the cause.
func (e *Error) Error() string {
	return fmt.Sprintf("%s %s: %v", e.Op, e.Subject, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Hint tells the operator how to fix the problem (stages.Hinter). Error()
// leaves it out so that event sinks do not print it twice; use HintOf to show it.
func (e *Error) Hint() string { return e.HintMsg }

// HintOf returns the hint carried anywhere in err's chain, or "".
func HintOf(err error) string {
	var h interface{ Hint() string }
	if errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}

func newError(op, subject string, err error, hint string) *Error {
	return &Error{Op: op, Subject: subject, Err: err, HintMsg: hint}
}
