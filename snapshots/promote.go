package snapshots

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/icefill/icefill/internal/errkind"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// Errors a guard raises. The command maps them to "refused" (exit 4).
var (
	ErrNotValidated = errkind.RefusedError(errors.New("the branch head has no passing validation"))
	ErrUncovered    = errkind.RefusedError(errors.New("main changed partitions the branch has not recomputed"))
	ErrRisk         = errkind.RefusedError(errors.New("rollback could become impossible"))
	ErrMainMoved    = errkind.RefusedError(errors.New("main moved while promoting"))
	ErrNothingToDo  = errkind.RefusedError(errors.New("nothing to do"))
	ErrLaterChanges = errkind.RefusedError(errors.New("later commits changed promoted partitions"))
	ErrNoSuchRef    = errkind.UsageError(errors.New("no such branch, tag or snapshot"))
)

// TagRetention is how long pre-promotion tags are kept: explicitly set on
// the tag, so a table-wide ref expiry cannot remove it.
const TagRetention = 100 * 365 * 24 * time.Hour

// PromoteOptions configure a promotion.
type PromoteOptions struct {
	Branch         string
	SkipValidation bool
	AcceptRisk     bool
	// TagRetention overrides the tag's max age (default TagRetention).
	TagRetention time.Duration
	By           string
	Now          time.Time
	Log          *slog.Logger
	// BeforePublish, when set, runs just before the publishing commit
	// (tests use it to commit to main at the worst moment).
	BeforePublish func()
}

// PromoteResult says what a promotion did.
type PromoteResult struct {
	Event      Event
	Risks      []string
	Uncovered  []string
	Validation *Validation
}

// UncoveredError lists the days main changed since the fork that the
// branch has not recomputed after the change.
type UncoveredError struct {
	Branch string
	Days   []string
}

func (e *UncoveredError) Error() string {
	return fmt.Sprintf("%v: main changed %d partition(s) since branch %s was made that the backfill has not recomputed since (%s); run `icefill run --catch-up --branch %s …` to recompute exactly those days, validate again, then promote",
		ErrUncovered, len(e.Days), e.Branch, strings.Join(trimList(e.Days, 12), ", "), e.Branch)
}

func (e *UncoveredError) Unwrap() error { return ErrUncovered }

func trimList(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(append([]string{}, s[:n]...), fmt.Sprintf("… %d more", len(s)-n))
}

// RetentionRisks says what could make a rollback to a tag with the given
// max age impossible, judged from the table's properties.
func RetentionRisks(props iceberg.Properties, tagMaxAge time.Duration) []string {
	var risks []string
	effective := tagMaxAge
	if effective <= 0 {
		if v, ok := props["history.expire.max-ref-age-ms"]; ok {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				effective = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if effective > 0 && effective < 365*24*time.Hour {
		risks = append(risks, fmt.Sprintf("the pre-promotion tag would expire after %s (snapshot expiry removes expired tags and then the snapshot rollback needs)", effective))
	}
	if v := props["gc.enabled"]; v == "true" || v == "" {
		if ms, err := strconv.ParseInt(props["history.expire.max-snapshot-age-ms"], 10, 64); err == nil && ms < int64(time.Hour/time.Millisecond) {
			risks = append(risks, fmt.Sprintf("history.expire.max-snapshot-age-ms=%d: snapshots between promotion and rollback may be expired within the hour (the tag still keeps the pre-promotion snapshot, but history will be thin)", ms))
		}
	}
	return risks
}

// Promote publishes branch onto main: it tags main's current snapshot, then
// fast-forwards main to the branch head in one guarded catalog commit; if
// main moved since the branch was made, it first rebuilds the branch's
// partitions on top of main's head (refusing when main changed partitions
// the branch has not recomputed). Nothing that landed on main is lost: every
// step is pinned to the snapshots it read.
func Promote(ctx context.Context, cat catalog.Catalog, ident table.Identifier, opts PromoteOptions) (*PromoteResult, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.By == "" {
		opts.By = Who()
	}
	if opts.TagRetention == 0 {
		opts.TagRetention = TagRetention
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.Branch == "" || opts.Branch == table.MainBranch {
		return nil, fmt.Errorf("promote: name the branch to publish (not main)")
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return nil, fmt.Errorf("load table %s: %w", ident, err)
	}
	res := &PromoteResult{}
	head := tbl.SnapshotByName(opts.Branch)
	if head == nil {
		return nil, fmt.Errorf("%w: branch %q does not exist on %s", ErrNoSuchRef, opts.Branch, strings.Join(ident, "."))
	}
	props := tbl.Properties()
	val, err := ReadValidation(props, opts.Branch)
	if err != nil {
		return nil, err
	}
	switch {
	case opts.SkipValidation:
		log.Warn("PROMOTING WITHOUT VALIDATION (--skip-validation): nothing proves this branch is right", "branch", opts.Branch, "snapshot", head.SnapshotID)
	case val == nil:
		return nil, fmt.Errorf("%w: branch %s (snapshot %d) was never validated; run `icefill validate --base main --candidate %s` first",
			ErrNotValidated, opts.Branch, head.SnapshotID, opts.Branch)
	case val.CandidateSnapshot != head.SnapshotID:
		return nil, fmt.Errorf("%w: the last passing validation of %s was of snapshot %d, the branch is now at %d; validate again",
			ErrNotValidated, opts.Branch, val.CandidateSnapshot, head.SnapshotID)
	}
	res.Validation = val
	res.Risks = RetentionRisks(props, opts.TagRetention)
	if len(res.Risks) > 0 && !opts.AcceptRisk {
		return res, fmt.Errorf("%w: %s; fix the retention or pass --accept-risk", ErrRisk, strings.Join(res.Risks, "; "))
	}
	state, err := ReadState(props, opts.Branch)
	if err != nil {
		return nil, err
	}

	main := tbl.CurrentSnapshot()
	tag := ""
	if main != nil {
		tag = fmt.Sprintf("pre-promote-%s-%s-%d", opts.Branch, opts.Now.UTC().Format("20060102T150405Z"), main.SnapshotID)
	}
	ev := Event{Kind: "promote", Branch: opts.Branch, Validation: val, Skipped: opts.SkipValidation, At: opts.Now.UnixMilli(), By: opts.By,
		Partitions: state.Done()}
	lookup := tbl.Metadata().SnapshotByID
	target := head.SnapshotID
	if main != nil {
		ev.From, ev.Tag = main.SnapshotID, tag
		if main.SnapshotID == head.SnapshotID {
			return res, fmt.Errorf("%w: main is already at branch %s's head (snapshot %d)", ErrNothingToDo, opts.Branch, head.SnapshotID)
		}
	}
	ev.Method = "fast-forward"
	if main != nil && !table.IsAncestorOf(head.SnapshotID, main.SnapshotID, lookup) {
		ev.Method = "rebase"
		target, err = rebase(ctx, cat, tbl, opts, state, main, head, res)
		if err != nil {
			return res, err
		}
		if val != nil {
			carried := *val
			carried.RebasedFrom, carried.CandidateSnapshot = head.SnapshotID, target
			val = &carried
			ev.Validation = val
		}
		if tbl, err = cat.LoadTable(ctx, ident); err != nil {
			return res, err
		}
	}
	ev.To = target

	history, err := ReadHistory(tbl.Properties())
	if err != nil {
		return res, err
	}
	history = append(history, ev)
	encHistory, err := encodeJSON(history)
	if err != nil {
		return res, err
	}
	reqs := []table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())}
	var updates []table.Update
	if main != nil {
		id := main.SnapshotID
		reqs = append(reqs, table.AssertRefSnapshotID(table.MainBranch, &id))
		if existing, ok := refOf(tbl, tag); !ok {
			reqs = append(reqs, table.AssertRefSnapshotID(tag, nil))
			updates = append(updates, table.NewSetSnapshotRefUpdate(tag, id, table.TagRef, opts.TagRetention.Milliseconds(), 0, 0))
		} else if existing.SnapshotID != id {
			return res, fmt.Errorf("tag %s exists and points elsewhere; remove it or retry", tag)
		}
	} else {
		reqs = append(reqs, table.AssertRefSnapshotID(table.MainBranch, nil))
	}
	branchHead := head.SnapshotID
	reqs = append(reqs, table.AssertRefSnapshotID(opts.Branch, &branchHead))
	newProps := iceberg.Properties{HistoryProperty: encHistory, baseProperty(opts.Branch): strconv.FormatInt(target, 10)}
	if val != nil {
		newProps[ValidationPropertyPrefix+opts.Branch] = encodeValidation(val)
	}
	updates = append(updates,
		table.NewSetSnapshotRefUpdate(table.MainBranch, target, table.BranchRef, 0, 0, 0),
		table.NewSetSnapshotRefUpdate(opts.Branch, target, table.BranchRef, 0, 0, KeepSnapshots),
		table.NewSetPropertiesUpdate(newProps))
	if ev.Method == "rebase" {
		updates = append(updates, table.NewRemoveSnapshotRefUpdate(rebaseRef(opts.Branch)))
	}
	if opts.BeforePublish != nil {
		opts.BeforePublish()
	}
	if _, _, err := cat.CommitTable(ctx, ident, reqs, updates); err != nil {
		// Read the table back: did it land anyway (answer lost)? main at
		// target with our tag. If main is where it was, the catalog failed
		// (retry later); only if it moved is this a conflict.
		t2, lerr := cat.LoadTable(ctx, ident)
		if lerr != nil {
			return res, fmt.Errorf("publish %s: %w; the outcome is unknown (reading the table back failed: %v): run `icefill history` when the catalog answers again", opts.Branch, err, lerr)
		}
		cur := t2.CurrentSnapshot()
		if cur != nil && cur.SnapshotID == target && (main == nil || t2.SnapshotByName(tag) != nil) {
			res.Event = ev
			return res, nil
		}
		if sameSnapshot(cur, main) {
			return res, fmt.Errorf("publish %s: %w; nothing was published: main and %s are as they were; run promote again", opts.Branch, err, opts.Branch)
		}
		return res, fmt.Errorf("%w (%v); nothing was published: main and %s are as they were; run promote again", ErrMainMoved, err, opts.Branch)
	}
	res.Event = ev
	return res, nil
}

// sameSnapshot reports whether two (possibly nil) snapshots are the same.
func sameSnapshot(a, b *table.Snapshot) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.SnapshotID == b.SnapshotID
}

func rebaseRef(branch string) string { return "icefill-rebase-" + branch }

// rebase builds, on a scratch branch at main's head, one snapshot that swaps
// the backfilled partitions' files for the branch's, and returns it. It
// refuses when main changed partitions after the branch last recomputed them.
func rebase(ctx context.Context, cat catalog.Catalog, tbl *table.Table, opts PromoteOptions, state *State,
	main, head *table.Snapshot, res *PromoteResult) (int64, error) {
	uncovered, err := UncoveredDays(ctx, tbl, opts.Branch, state)
	if err != nil {
		return 0, err
	}
	if len(uncovered) > 0 {
		res.Uncovered = uncovered
		return 0, &UncoveredError{Branch: opts.Branch, Days: uncovered}
	}
	mainFiles, err := FilesByPartition(ctx, tbl, main.SnapshotID)
	if err != nil {
		return 0, err
	}
	branchFiles, err := FilesByPartition(ctx, tbl, head.SnapshotID)
	if err != nil {
		return 0, err
	}
	var del, add []iceberg.DataFile
	for _, d := range state.Done() {
		day, err := parseDay(d)
		if err != nil {
			return 0, err
		}
		del = append(del, mainFiles[day]...)
		add = append(add, branchFiles[day]...)
	}
	// The scratch branch starts at main's head; a stale one from an
	// interrupted promotion is simply moved.
	scratch := rebaseRef(opts.Branch)
	mainID := main.SnapshotID
	if _, _, err := cat.CommitTable(ctx, tbl.Identifier(),
		[]table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID()), table.AssertRefSnapshotID(table.MainBranch, &mainID)},
		[]table.Update{table.NewSetSnapshotRefUpdate(scratch, mainID, table.BranchRef, 0, 0, 0)}); err != nil {
		return 0, fmt.Errorf("%w (%v); run promote again", ErrMainMoved, err)
	}
	t2, err := cat.LoadTable(ctx, tbl.Identifier())
	if err != nil {
		return 0, err
	}
	txn := t2.NewTransactionOnBranch(scratch)
	summary := iceberg.Properties{SummaryOperation: "promote-rebase", "icefill.branch": opts.Branch,
		"icefill.branch-snapshot": strconv.FormatInt(head.SnapshotID, 10), SummaryDone: strconv.Itoa(len(state.Checkpoints))}
	if err := txn.ReplaceDataFilesWithDataFiles(ctx, del, add, summary); err != nil {
		return 0, fmt.Errorf("stage rebase of %s onto main: %w", opts.Branch, err)
	}
	t3, err := txn.Commit(ctx)
	if err != nil {
		return 0, fmt.Errorf("commit rebase of %s onto main: %w; run promote again", opts.Branch, err)
	}
	return t3.SnapshotByName(scratch).SnapshotID, nil
}

// UncoveredDays lists the partitions main changed since branch forked from
// it that the branch has not recomputed after the change (oldest first):
// what `run --catch-up` recomputes before a promotion can rebase.
func UncoveredDays(ctx context.Context, tbl *table.Table, branch string, state *State) ([]string, error) {
	head, main := tbl.SnapshotByName(branch), tbl.CurrentSnapshot()
	if head == nil || main == nil {
		return nil, nil
	}
	lookup := tbl.Metadata().SnapshotByID
	if table.IsAncestorOf(head.SnapshotID, main.SnapshotID, lookup) {
		return nil, nil
	}
	fork := commonAncestor(head.SnapshotID, main.SnapshotID, lookup)
	if fork == 0 {
		// History cut by expiry: fall back to the snapshot the branch was
		// made from (or last rebased onto), compared file by file.
		fork = int64(tbl.Properties().GetInt(baseProperty(branch), 0))
		if fork == 0 || tbl.SnapshotByID(fork) == nil {
			return nil, errkind.Refusedf("branch %s and main share no history that is still in the metadata; cannot tell what main changed", branch)
		}
	}
	changes, err := ChangedPartitions(ctx, tbl, fork, main.SnapshotID)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, day := range SortedDays(changes) {
		if cp, done := state.Checkpoints[dayText(day)]; !done || !recomputedAfter(cp, changes[day]) {
			out = append(out, dayText(day))
		}
	}
	return out, nil
}

// recomputedAfter reports whether checkpoint cp was committed after change:
// by table sequence number (exact), or by time for checkpoints written
// before sequence numbers were recorded.
func recomputedAfter(cp Checkpoint, ch *Change) bool {
	if cp.Seq > 0 {
		return cp.Seq > ch.Seq
	}
	return cp.CommittedAt > ch.At
}

// commonAncestor is the newest snapshot in both histories (0 if none).
func commonAncestor(a, b int64, lookup table.SnapshotLookup) int64 {
	inA := map[int64]bool{}
	for _, s := range table.AncestorsOf(a, lookup) {
		inA[s.SnapshotID] = true
	}
	for _, s := range table.AncestorsOf(b, lookup) {
		if inA[s.SnapshotID] {
			return s.SnapshotID
		}
	}
	return 0
}

func dayText(d iceberg.Date) string {
	return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
}

func parseDay(s string) (iceberg.Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("bad partition day %q in branch state", s)
	}
	return iceberg.Date(t.Unix() / 86400), nil
}

// RecordValidation stores a passing validation, pinned to the candidate
// (and base, when it is a branch) snapshots it was computed on: if either
// moved meanwhile, nothing is recorded.
func RecordValidation(ctx context.Context, cat catalog.Catalog, ident table.Identifier, v Validation) error {
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	reqs := []table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())}
	for _, p := range []struct {
		ref string
		id  int64
	}{{v.Candidate, v.CandidateSnapshot}, {v.Base, v.BaseSnapshot}} {
		if r, ok := refOf(tbl, p.ref); ok && r.SnapshotRefType == table.BranchRef {
			id := p.id
			reqs = append(reqs, table.AssertRefSnapshotID(p.ref, &id))
		}
	}
	_, _, err = cat.CommitTable(ctx, ident, reqs,
		[]table.Update{table.NewSetPropertiesUpdate(iceberg.Properties{ValidationPropertyPrefix + v.Candidate: encodeValidation(&v)})})
	if err != nil {
		return fmt.Errorf("record validation of %s: %w (did a ref move during validation? validate again)", v.Candidate, err)
	}
	return nil
}
