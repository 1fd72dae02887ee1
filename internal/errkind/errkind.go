package errkind

import (
	"errors"
	"fmt"
)

// Kind is what the user can do about an error.
type Kind int

const (
	// Failed: the job ran and part of it failed; read the report.
	Failed Kind = iota
	// Usage: the call or its input is wrong; fix it, retrying will not help.
	Usage
	// Unavailable: the catalog or storage failed transiently; retry later.
	Unavailable
	// Refused: a guard refused to act; read the message, retrying as is will not help.
	Refused
)

func (k Kind) String() string {
	switch k {
	case Usage:
		return "usage"
	case Unavailable:
		return "unavailable"
	case Refused:
		return "refused"
	}
	return "failed"
}

type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() error   { return e.err }
func (e *kindError) ErrorKind() Kind { return e.kind }

// Kinded is implemented by typed errors that know their own kind (a
// package's MissingDaysError is always Usage), so they need no wrapping.
type Kinded interface {
	error
	ErrorKind() Kind
}

// Mark wraps err with kind; nil stays nil.
func Mark(kind Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: kind, err: err}
}

// UsageError, UnavailableError and RefusedError mark err.
func UsageError(err error) error       { return Mark(Usage, err) }
func UnavailableError(err error) error { return Mark(Unavailable, err) }
func RefusedError(err error) error     { return Mark(Refused, err) }

// Usagef and Refusedf build a marked error like fmt.Errorf.
func Usagef(format string, args ...any) error {
	return Mark(Usage, fmt.Errorf(format, args...))
}
func Refusedf(format string, args ...any) error {
	return Mark(Refused, fmt.Errorf(format, args...))
}

// Of reports the kind of the outermost mark (or Kinded error) in err's
// chain: the code that wrapped last knew the most about the cause. Unmarked
// errors are Failed.
func Of(err error) (Kind, bool) {
	var ke Kinded
	if errors.As(err, &ke) {
		return ke.ErrorKind(), true
	}
	return Failed, false
}
