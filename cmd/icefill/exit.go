package main

import (
	"context"
	"errors"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/internal/errkind"
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

// exitCode is the one mapping from errors to exit codes. Packages mark
// errors where they know the cause (errkind: Usage, Unavailable, Refused);
// this only translates the marks, plus two sentinels: an interrupt, and
// urfave/cli's missing-required-flag error (an unexported type).
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case strings.HasPrefix(err.Error(), "Required flag"):
		return exitUsage
	}
	switch kind, _ := errkind.Of(err); kind {
	case errkind.Usage:
		return exitUsage
	case errkind.Unavailable:
		return exitUnavailable
	case errkind.Refused:
		return exitRefused
	}
	return exitFailed
}

// usageError marks flag parsing errors as usage errors (exit 2).
func usageError(_ *cli.Context, err error, _ bool) error { return errkind.UsageError(err) }
