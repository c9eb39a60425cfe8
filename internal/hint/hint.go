// Package hint is the one user-facing error of shipit: a message and, when
// known, how to fix it. The CLI prints them as `shipit: error: …` then
// `shipit: hint: …`. Errors that carry data of their own (a host key, a
// failed health check) keep their types and implement Hinter.
package hint

import (
	"errors"
	"fmt"
)

// Hinter is an error that knows how to fix itself.
type Hinter interface{ Hint() string }

// Error is a message with its fix; Err, when set, is the cause (kept for
// errors.Is/As, not printed twice).
type Error struct {
	Msg string
	Fix string
	Err error
}

func (e *Error) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

// Hint returns the fix, or the cause's own hint.
func (e *Error) Hint() string {
	if e.Fix != "" {
		return e.Fix
	}
	return Of(e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error with a fix.
func New(msg, fix string) *Error { return &Error{Msg: msg, Fix: fix} }

// Errorf formats the message; the fix comes first.
func Errorf(fix, format string, args ...any) *Error {
	return &Error{Msg: fmt.Sprintf(format, args...), Fix: fix}
}

// Wrap adds a fix to err, keeping its message.
func Wrap(err error, fix string) *Error { return &Error{Msg: err.Error(), Fix: fix, Err: err} }

// Of returns the first hint in err's chain, or "".
func Of(err error) string {
	var h Hinter
	if err != nil && errors.As(err, &h) {
		return h.Hint()
	}
	return ""
}
