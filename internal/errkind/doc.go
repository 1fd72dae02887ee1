// Package errkind marks errors with what the user can do about them, so that
// packages say what went wrong and one function in cmd/icefill turns that into
// an exit code. A package wraps an error once, where it knows the cause: a
// guard that refuses returns Refused, bad input or flags return Usage, a
// catalog or storage failure that a retry can fix returns Unavailable.
// Anything unmarked is a plain failure.
package errkind
