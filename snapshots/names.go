package snapshots

import (
	"regexp"
	"strings"

	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/internal/errkind"
)

// ReservedPrefix starts the names of icefill's own scratch refs
// (icefill-rebase-<branch>). A user branch cannot start with it, so
// promoting one branch can never move or delete another.
const ReservedPrefix = "icefill-"

// Prefixes of the tags icefill makes on main before it publishes.
const (
	PromoteTagPrefix   = "pre-promote-"
	WriteMainTagPrefix = "pre-write-main-"
)

// namePattern is what a branch name or run id may be: it ends up in object
// paths (rejects, table properties), so no separators, no "..", no spaces.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// CheckBranchName refuses a branch name that could escape a path or clash
// with icefill's own refs (a usage error, exit 2). main is allowed; the
// caller decides whether writing it is.
func CheckBranchName(name string) error {
	switch {
	case name == "":
		return errkind.Usagef("--branch is empty: name the branch")
	case !namePattern.MatchString(name) || strings.Contains(name, ".."):
		return errkind.Usagef("branch name %q: use 1 to 100 letters, digits, '.', '_' or '-' (starting with a letter or digit, no \"..\")", name)
	case strings.HasPrefix(name, ReservedPrefix):
		return errkind.Usagef("branch name %q: names starting with %q are icefill's own scratch refs; choose another", name, ReservedPrefix)
	case strings.HasPrefix(name, PromoteTagPrefix), strings.HasPrefix(name, WriteMainTagPrefix):
		return errkind.Usagef("branch name %q: names starting with %q or %q are icefill's tags; choose another", name, PromoteTagPrefix, WriteMainTagPrefix)
	}
	return nil
}

// CheckPublishBranch is CheckBranchName for a branch to publish: not main.
func CheckPublishBranch(name string) error {
	if name == table.MainBranch {
		return errkind.Usagef("promote: name the branch to publish (not main)")
	}
	return CheckBranchName(name)
}

// CheckRunID refuses a run id that could escape a path (exit 2).
func CheckRunID(id string) error {
	if id == "" {
		return nil
	}
	if !namePattern.MatchString(id) || strings.Contains(id, "..") {
		return errkind.Usagef("--run-id %q: use 1 to 100 letters, digits, '.', '_' or '-' (starting with a letter or digit, no \"..\")", id)
	}
	return nil
}

func rebaseRef(branch string) string { return ReservedPrefix + "rebase-" + branch }
