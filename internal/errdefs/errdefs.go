// Package errdefs holds the kinds of error that callers decide on, the way
// containerd's errdefs does. Packages wrap a kind with %w and context;
// callers test the kind with errors.Is (or errors.As for the object a
// lookup missed), never by reading the message. The CLI maps kinds to
// docker's messages and exit codes in one place.
package errdefs

import (
	"errors"
	"fmt"
)

// Error kinds.
var (
	// ErrNotFound: the object asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a name or key is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the object's state forbids the operation (a running
	// container, an image in use).
	ErrConflict = errors.New("conflict")
	// ErrInvalidArgument: the request itself is wrong.
	ErrInvalidArgument = errors.New("invalid argument")
)

// IsNotFound tells whether err is of kind ErrNotFound.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsConflict tells whether err is of kind ErrConflict.
func IsConflict(err error) bool { return errors.Is(err, ErrConflict) }

// NotFoundError is a lookup that found nothing: what was looked for
// ("image", "container", "object") and the name it was asked by. Its
// message is docker's.
type NotFoundError struct {
	What string
	Name string
}

// NotFound returns the error for a lookup of what by name that found nothing.
func NotFound(what, name string) error { return &NotFoundError{What: what, Name: name} }

func (e *NotFoundError) Error() string { return fmt.Sprintf("No such %s: %s", e.What, e.Name) }

// Is makes a NotFoundError of kind ErrNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrNotFound }

// IsMissing tells whether err is a lookup of what that found nothing.
func IsMissing(err error, what string) bool {
	var nf *NotFoundError
	return errors.As(err, &nf) && nf.What == what
}

// kindError is a message of a given kind that does not spell out the kind.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string        { return e.msg }
func (e *kindError) Is(target error) bool { return target == e.kind }

// Invalidf is an error of kind ErrInvalidArgument whose message is only
// the formatted text (docker's wording, without ": invalid argument").
func Invalidf(format string, a ...any) error {
	return &kindError{msg: fmt.Sprintf(format, a...), kind: ErrInvalidArgument}
}

// Conflictf is an error of kind ErrConflict whose message is only the
// formatted text, in docker's words ("Container X is not paused").
func Conflictf(format string, a ...any) error {
	return &kindError{msg: fmt.Sprintf(format, a...), kind: ErrConflict}
}
