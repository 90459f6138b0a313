package image

import (
	"errors"

	"github.com/nodeinit/nodeinit/operr"
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

// HintOf returns the fix carried by the operator error in err's chain, or "".
func HintOf(err error) string {
	if e := operr.Of(err); e != nil {
		return e.Fix
	}
	return ""
}

// newError is an operator error for a failed image operation: op names it, subject
// the file or URL, err is the cause (often one of the sentinels above), and hint
// says how to fix it.
func newError(op, subject string, err error, hint string) *operr.Error {
	return &operr.Error{What: op + " " + subject, Fix: hint, Err: err}
}
