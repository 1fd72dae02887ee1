package snapshots

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// RollbackOptions configure a rollback.
type RollbackOptions struct {
	// To is a tag or snapshot id; default: the last promotion's tag.
	To    string
	Force bool
	By    string
	Now   time.Time
}

// LaterChangesError lists promoted partitions that commits after the
// promotion changed again: restoring them would discard those commits.
type LaterChangesError struct {
	Days []string
}

func (e *LaterChangesError) Error() string {
	return fmt.Sprintf("%v after the promotion (%s); restoring them would discard those commits. Inspect them, then pass --force to restore anyway",
		ErrLaterChanges, strings.Join(trimList(e.Days, 12), ", "))
}

func (e *LaterChangesError) Unwrap() error { return ErrLaterChanges }

// Rollback puts main back as it was before the last promotion. If nothing
// was committed to main since, main is reset to the tagged snapshot. If the
// nightly job committed since, one new commit on main restores the promoted
// partitions to their pre-promotion files and leaves every other partition
// as it is now. Every step is pinned to main's head as read.
func Rollback(ctx context.Context, cat catalog.Catalog, ident table.Identifier, opts RollbackOptions) (*Event, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.By == "" {
		opts.By = Who()
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return nil, fmt.Errorf("load table %s: %w", ident, err)
	}
	history, err := ReadHistory(tbl.Properties())
	if err != nil {
		return nil, err
	}
	idx, promo := LastPromotion(history)
	if promo == nil && opts.To == "" {
		return nil, fmt.Errorf("%w: no promotion to roll back; name a tag or snapshot with --to", ErrNothingToDo)
	}
	main := tbl.CurrentSnapshot()
	if main == nil {
		return nil, fmt.Errorf("%w: main has no snapshot", ErrNothingToDo)
	}
	var target *table.Snapshot
	targetName := opts.To
	if targetName == "" {
		targetName = promo.Tag
		if targetName == "" {
			return nil, fmt.Errorf("%w: the last promotion started from an empty main; there is nothing to go back to", ErrNothingToDo)
		}
	}
	target = tbl.SnapshotByName(targetName)
	if target == nil {
		if id, err := strconv.ParseInt(targetName, 10, 64); err == nil {
			target = tbl.SnapshotByID(id)
		}
	}
	if target == nil {
		return nil, fmt.Errorf("%w: rollback target %q is neither a tag nor a snapshot of the table (was the tag removed, or the snapshot expired?)", ErrNoSuchRef, targetName)
	}
	if target.SnapshotID == main.SnapshotID {
		return nil, fmt.Errorf("%w: main is already at %s (snapshot %d)", ErrNothingToDo, targetName, target.SnapshotID)
	}
	ev := Event{Kind: "rollback", From: main.SnapshotID, Tag: targetName, At: opts.Now.UnixMilli(), By: opts.By, Forced: opts.Force}
	if promo != nil {
		ev.Branch, ev.Partitions = promo.Branch, promo.Partitions
		history[idx].RolledBack = true
	}
	mainID := main.SnapshotID

	// Nothing committed since the promotion: a plain reset, one commit.
	if promo == nil || main.SnapshotID == promo.To {
		ev.Method, ev.To = "reset", target.SnapshotID
		history = append(history, ev)
		enc, err := encodeJSON(history)
		if err != nil {
			return nil, err
		}
		_, _, err = cat.CommitTable(ctx, ident,
			[]table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID()), table.AssertRefSnapshotID(table.MainBranch, &mainID)},
			[]table.Update{
				table.NewSetSnapshotRefUpdate(table.MainBranch, target.SnapshotID, table.BranchRef, 0, 0, 0),
				table.NewSetPropertiesUpdate(iceberg.Properties{HistoryProperty: enc}),
			})
		if err != nil {
			return rolledBackAnyway(ctx, cat, ident, ev, main, err)
		}
		return &ev, nil
	}

	// The nightly job committed since: restore only the promoted partitions.
	ev.Method = "restore"
	changes, err := ChangedPartitions(ctx, tbl, promo.To, main.SnapshotID)
	if err != nil {
		return nil, fmt.Errorf("%w; name the snapshot to return to with --to and check by hand", err)
	}
	promoted := map[string]bool{}
	for _, d := range promo.Partitions {
		promoted[d] = true
	}
	var touched []string
	for _, day := range SortedDays(changes) {
		if promoted[dayText(day)] {
			touched = append(touched, dayText(day))
		}
	}
	if len(touched) > 0 && !opts.Force {
		return nil, &LaterChangesError{Days: touched}
	}
	nowFiles, err := FilesByPartition(ctx, tbl, main.SnapshotID)
	if err != nil {
		return nil, err
	}
	thenFiles, err := FilesByPartition(ctx, tbl, target.SnapshotID)
	if err != nil {
		return nil, err
	}
	var del, add []iceberg.DataFile
	for _, d := range promo.Partitions {
		day, err := parseDay(d)
		if err != nil {
			return nil, err
		}
		del = append(del, nowFiles[day]...)
		add = append(add, thenFiles[day]...)
	}
	txn := tbl.NewTransaction()
	if err := txn.AssertRefSnapshotID(table.MainBranch); err != nil {
		return nil, err
	}
	summary := iceberg.Properties{SummaryOperation: "rollback-restore", "icefill.restored-from": strconv.FormatInt(target.SnapshotID, 10)}
	if err := txn.ReplaceDataFilesWithDataFiles(ctx, del, add, summary); err != nil {
		return nil, fmt.Errorf("stage the restore of %d partitions: %w", len(promo.Partitions), err)
	}
	// The restore snapshot's id is only known after the commit; the event
	// records main's head before, and status reads the new head.
	history = append(history, ev)
	enc, err := encodeJSON(history)
	if err != nil {
		return nil, err
	}
	if err := txn.SetProperties(iceberg.Properties{HistoryProperty: enc}); err != nil {
		return nil, err
	}
	t2, err := commitStaged(ctx, cat, tbl, txn)
	if err != nil {
		return rolledBackAnyway(ctx, cat, ident, ev, main, err)
	}
	ev.To = t2.CurrentSnapshot().SnapshotID
	// The restore snapshot's id exists only now: complete the record,
	// pinned to it (if main moved on meanwhile, the record keeps To = 0).
	history[len(history)-1].To = ev.To
	if enc, err := encodeJSON(history); err == nil {
		to := ev.To
		cat.CommitTable(ctx, ident, []table.Requirement{table.AssertRefSnapshotID(table.MainBranch, &to)},
			[]table.Update{table.NewSetPropertiesUpdate(iceberg.Properties{HistoryProperty: enc})})
	}
	return &ev, nil
}

// rolledBackAnyway reads the table back after a failed rollback commit:
// the commit may have landed with its answer lost, and then running the
// rollback again would roll back the promotion before this one. Our own
// record in the history (same time and author) says it landed.
func rolledBackAnyway(ctx context.Context, cat catalog.Catalog, ident table.Identifier, ev Event, main *table.Snapshot, cause error) (*Event, error) {
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return nil, fmt.Errorf("rollback: %w; the outcome is unknown (reading the table back failed: %v): run `icefill history` before anything else", cause, err)
	}
	history, err := ReadHistory(tbl.Properties())
	if err == nil && len(history) > 0 {
		last := history[len(history)-1]
		if last.Kind == "rollback" && last.At == ev.At && last.By == ev.By {
			if cur := tbl.CurrentSnapshot(); cur != nil {
				ev.To = cur.SnapshotID
			}
			return &ev, nil
		}
	}
	if sameSnapshot(tbl.CurrentSnapshot(), main) {
		return nil, fmt.Errorf("rollback: %w; nothing was changed; run rollback again", cause)
	}
	return nil, fmt.Errorf("%w (%v); nothing was changed; run rollback again", ErrMainMoved, cause)
}
