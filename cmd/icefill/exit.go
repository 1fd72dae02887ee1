package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go/catalog"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/source"
)

// Exit codes scripts can trust. One table, used by every command and
// printed in the help.
const (
	exitOK          = 0 // success
	exitFailed      = 1 // the job ran and some of it failed (partitions, a validation)
	exitUsage       = 2 // bad flags or bad input data: fix the call or the data
	exitUnavailable = 3 // catalog or storage unreachable or erroring: retry later
	exitRefused     = 4 // a guard refused (validation missing, ref moved, lease held)
	exitInterrupted = 130
)

const exitCodesHelp = `EXIT CODES:
   0    success
   1    the job ran and part of it failed (partitions, validation); see the report
   2    bad flags or bad input (missing days, unreadable files, too many rejects)
   3    catalog or storage unavailable; safe to retry
   4    refused by a guard (e.g. nothing validated, main moved); read the message
   130  interrupted; re-run the same command to continue`

// exitError carries an exit code with a message for the user.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

func usageErr(format string, args ...any) error {
	return withCode(exitUsage, fmt.Errorf(format, args...))
}

// exitCode classifies an error that reached main.
func exitCode(err error) int {
	var ee *exitError
	var ce *features.ColumnError
	var me *source.MissingDaysError
	var re *features.RejectLimitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	}
	if k, ok := errkind.Of(err); ok {
		switch k {
		case errkind.Usage:
			return exitUsage
		case errkind.Unavailable:
			return exitUnavailable
		case errkind.Refused:
			return exitRefused
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	// Errors packages marked with errkind (the house helper replaces this
	// function with one errkind-based mapping).
	if kind, ok := errkind.Of(err); ok {
		switch kind {
		case errkind.Usage:
			return exitUsage
		case errkind.Unavailable:
			return exitUnavailable
		case errkind.Refused:
			return exitRefused
		}
		return exitFailed
	}
	switch {
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ce), errors.As(err, &me), errors.As(err, &re), errors.Is(err, source.ErrMissingDay), errors.Is(err, source.ErrUnreadable):
		return exitUsage
	}
	var ce2 cli.ExitCoder
	if errors.As(err, &ce2) {
		return ce2.ExitCode()
	}
	// urfave/cli reports a missing required flag as a plain error.
	if strings.HasPrefix(err.Error(), "Required flag") {
		return exitUsage
	}
	return exitFailed
}

// tableErr classifies a failure to reach the table: a table that does not
// exist is the user's to fix (exit 2), anything else is the catalog's or
// the network's (exit 3, retry later).
func tableErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, catalog.ErrNoSuchTable) || errors.Is(err, catalog.ErrNoSuchNamespace) {
		return withCode(exitUsage, err)
	}
	return withCode(exitUnavailable, err)
}

// usageError makes flag parsing errors exit 2, like other bad input.
func usageError(_ *cli.Context, err error, _ bool) error { return withCode(exitUsage, err) }
