// Package operr defines the one error type shown to an operator: what happened,
// why, how to fix it, and the kernel argument to add. The failure screen, the
// events and the status report take every field from it, so a refusal in the
// planner, a malformed argument in the parser and a failed write in a stage all
// reach the console in the same shape.
//
// Error() gives what happened and why, never the fix: the fix has its own line on
// every screen, and printing it inside the message too would show it twice.
package operr

import (
	"errors"
	"strings"
)

// Error is an error an operator can act on.
type Error struct {
	// What happened, in one sentence that names the argument or the disk.
	What string
	// Why it happened or was refused, when What alone does not say.
	Why string
	// Fix says how to fix it, in words.
	Fix string
	// Arg is the exact kernel argument to add, when one fixes it
	// (for example nodeinit.wipe=S123 or storage_init=serial:S123).
	Arg string
	// Err is the cause, if any.
	Err error
}

// Error gives what happened, why, and the cause; never the fix.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.What)
	if e.Why != "" {
		b.WriteString(": " + e.Why)
	}
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an operator error.
func New(what, why, fix, arg string) *Error {
	return &Error{What: what, Why: why, Fix: fix, Arg: arg}
}

// Wrap returns an operator error for a failed operation: what names the
// operation and its subject, err is the cause.
func Wrap(err error, what, fix, arg string) *Error {
	return &Error{What: what, Fix: fix, Arg: arg, Err: err}
}

// Of returns the first operator error in err's chain, or nil.
func Of(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Fields is what a screen or an event shows of any error: the message, and the
// fix and kernel argument of the first operator error in its chain.
type Fields struct {
	Message string `json:"error"`
	Fix     string `json:"fix,omitempty"`
	Arg     string `json:"kernel_arg,omitempty"`
}

// Describe returns the fields shown for err. The message is err's own text, so
// that wrapping (stage names, disks) stays visible.
func Describe(err error) Fields {
	if err == nil {
		return Fields{}
	}
	f := Fields{Message: err.Error()}
	if e := Of(err); e != nil {
		f.Fix, f.Arg = e.Fix, e.Arg
	}
	return f
}
