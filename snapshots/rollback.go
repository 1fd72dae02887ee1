package snapshots

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
)

// RollbackOptions configure a rollback.
type RollbackOptions struct {
	// To is a tag or snapshot id; default: the last promotion's tag.
	To string
	// Force restores promoted partitions changed again since, and resets
	// main to a snapshot it has never been; either is recorded.
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

// Rollback puts main back as it was before the last promotion, in three
// steps: guards and target (which snapshot, which partitions), then one
// publishing commit. If nothing was committed to main since the
// promotion, main is reset to the tagged snapshot. If the nightly job
// committed since, one new commit on main restores exactly the partitions
// the promotion recorded as changed to their pre-promotion files and leaves
// every other partition as it is now; a promoted partition whose files
// changed again since is refused unless forced. With --to, main is reset
// to that snapshot, which must be one main has been unless forced (and the
// force is recorded). Every step is pinned to main's head as read.
func Rollback(ctx context.Context, cat catalog.Catalog, ident table.Identifier, opts RollbackOptions) (*Event, error) {
	ev, err := rollback(ctx, cat, ident, opts)
	return ev, classify(err)
}

// rollbackPlan is what the guards decided.
type rollbackPlan struct {
	target  *table.Snapshot
	name    string
	promo   int // index of the promotion undone (-1 for a reset --to)
	method  string
	changes []PartitionChange
	forced  bool
	// bases moves a promoted branch's recorded base (icefill.base.<b>, the
	// fork promote and catch-up fall back on once the branch's own history
	// is trimmed) back to main's snapshot before the promotion a reset
	// undoes: main no longer holds the promotion's target, and the branch
	// is built on the snapshot main returns to.
	bases iceberg.Properties
}

func rollback(ctx context.Context, cat catalog.Catalog, ident table.Identifier, opts RollbackOptions) (*Event, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.By == "" {
		opts.By = Who()
	}
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		if errors.Is(err, catalog.ErrNoSuchTable) {
			return nil, err
		}
		return nil, errkind.UnavailableError(fmt.Errorf("load table %s: %w", ident, err))
	}
	history, err := ReadHistory(tbl.Properties())
	if err != nil {
		return nil, err
	}
	main := tbl.CurrentSnapshot()
	if main == nil {
		return nil, fmt.Errorf("%w: main has no snapshot", ErrNothingToDo)
	}
	files, err := SnapshotFiles(ctx, tbl, main.SnapshotID)
	if err != nil {
		return nil, errkind.UnavailableError(err)
	}
	plan, err := rollbackTarget(ctx, tbl, history, files, opts)
	if err != nil {
		return nil, err
	}
	ev := Event{Kind: "rollback", Method: plan.method, From: main.SnapshotID, Tag: plan.name, At: opts.Now.UnixMilli(), By: opts.By,
		Forced: plan.forced, Changes: plan.changes, Partitions: changedDayList(plan.changes)}
	var undone []int
	if plan.promo >= 0 {
		ev.Branch = history[plan.promo].Branch
		history[plan.promo].RolledBack = true
		undone = append(undone, plan.promo)
	} else {
		// A reset to an older snapshot undoes every promotion main no
		// longer descends from.
		for i := range history {
			if history[i].Kind == "promote" && !history[i].RolledBack && !table.IsAncestorOf(plan.target.SnapshotID, history[i].To, tbl.Metadata().SnapshotByID) {
				history[i].RolledBack = true
				undone = append(undone, i)
			}
		}
	}
	if plan.method == "reset" {
		plan.bases = iceberg.Properties{}
		for _, i := range undone {
			e := history[i]
			if e.From != 0 && int64(tbl.Properties().GetInt(baseProperty(e.Branch), 0)) == e.To {
				plan.bases[baseProperty(e.Branch)] = strconv.FormatInt(e.From, 10)
			}
		}
	}
	return publishRollback(ctx, cat, tbl, history, ev, plan, files)
}

// rollbackTarget resolves what to go back to and which partitions change.
func rollbackTarget(ctx context.Context, tbl *table.Table, history []Event, files Files, opts RollbackOptions) (*rollbackPlan, error) {
	main := tbl.CurrentSnapshot()
	idx, promo := LastPromotion(history)
	name := opts.To
	if name == "" {
		if promo == nil {
			return nil, fmt.Errorf("%w: no promotion to roll back; name a tag or snapshot with --to", ErrNothingToDo)
		}
		if promo.Tag == "" {
			return nil, fmt.Errorf("%w: the last promotion started from an empty main; there is nothing to go back to", ErrNothingToDo)
		}
		name = promo.Tag
	}
	target := tbl.SnapshotByName(name)
	if target == nil {
		if id, err := strconv.ParseInt(name, 10, 64); err == nil {
			target = tbl.SnapshotByID(id)
		}
	}
	if target == nil && promo != nil && name == promo.Tag {
		target = tbl.SnapshotByID(promo.From)
	}
	if target == nil {
		return nil, fmt.Errorf("%w: rollback target %q is neither a tag nor a snapshot of the table (was the tag removed, or the snapshot expired?)", ErrNoSuchRef, name)
	}
	if target.SnapshotID == main.SnapshotID {
		return nil, fmt.Errorf("%w: main is already at %s (snapshot %d)", ErrNothingToDo, name, target.SnapshotID)
	}
	then, err := SnapshotFiles(ctx, tbl, target.SnapshotID)
	if err != nil {
		return nil, errkind.UnavailableError(err)
	}
	plan := &rollbackPlan{target: target, name: name, promo: -1, method: "reset"}
	if promo == nil || target.SnapshotID != promo.From {
		// Any other snapshot: main is reset to it, so it must be one main
		// has been (not, say, an unvalidated branch's head).
		if !MainHasBeen(tbl, target.SnapshotID) {
			if !opts.Force {
				return nil, fmt.Errorf("%w: %s (snapshot %d) is neither main's history nor a snapshot icefill tagged before publishing; resetting main to it would publish content nobody validated. Pass --force to do it anyway (recorded in the history)",
					ErrNotMainLineage, name, target.SnapshotID)
			}
			plan.forced = true
		}
		plan.changes = diffChanges(files, then)
		return plan, nil
	}
	// Undo the last promotion: exactly the partitions it recorded.
	plan.promo = idx
	plan.changes = promotedChanges(ctx, tbl, promo, then)
	if main.SnapshotID == promo.To {
		return plan, nil
	}
	plan.method = "restore"
	var touched []string
	for i, c := range plan.changes {
		if now := Digest(files[mustDay(c.Day)]); now != c.New {
			touched = append(touched, c.Day)
		}
		// What the restore changes on main now: back to the old files.
		plan.changes[i] = PartitionChange{Day: c.Day, Old: Digest(files[mustDay(c.Day)]), New: Digest(then[mustDay(c.Day)])}
	}
	if len(touched) > 0 {
		if !opts.Force {
			return nil, &LaterChangesError{Days: touched}
		}
		plan.forced = true
	}
	return plan, nil
}

// promotedChanges is what promotion promo changed on main. Promotions
// recorded before the record held the digests are rebuilt from their
// partition list and their snapshots.
func promotedChanges(ctx context.Context, tbl *table.Table, promo *Event, then Files) []PartitionChange {
	if len(promo.Changes) > 0 {
		return slices.Clone(promo.Changes)
	}
	after, _ := SnapshotFiles(ctx, tbl, promo.To)
	out := make([]PartitionChange, 0, len(promo.Partitions))
	for _, d := range promo.Partitions {
		day := mustDay(d)
		out = append(out, PartitionChange{Day: d, Old: Digest(then[day]), New: Digest(after[day])})
	}
	return out
}

func mustDay(s string) features.Date {
	d, err := features.ParseDate(s)
	if err != nil {
		return -1 << 30 // no partition has this day: reads as empty
	}
	return d
}

// publishRollback is the one commit that moves main back: a reset to the
// target, or a swap of the planned partitions to the target's files.
func publishRollback(ctx context.Context, cat catalog.Catalog, tbl *table.Table, history []Event, ev Event, plan *rollbackPlan, files Files) (*Event, error) {
	ident := tbl.Identifier()
	main := tbl.CurrentSnapshot()
	mainID := main.SnapshotID
	if plan.method == "reset" {
		ev.To = plan.target.SnapshotID
		enc, err := encodeJSON(append(history, ev))
		if err != nil {
			return nil, err
		}
		props := iceberg.Properties{HistoryProperty: enc}
		maps.Copy(props, plan.bases)
		_, _, err = cat.CommitTable(ctx, ident,
			[]table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID()), table.AssertRefSnapshotID(table.MainBranch, &mainID)},
			[]table.Update{
				table.NewSetSnapshotRefUpdate(table.MainBranch, plan.target.SnapshotID, table.BranchRef, 0, 0, 0),
				table.NewSetPropertiesUpdate(props),
			})
		if err != nil {
			return rolledBackAnyway(ctx, cat, ident, ev, main, err)
		}
		return &ev, nil
	}
	then, err := SnapshotFiles(ctx, tbl, plan.target.SnapshotID)
	if err != nil {
		return nil, errkind.UnavailableError(err)
	}
	days := make([]features.Date, len(plan.changes))
	for i, c := range plan.changes {
		days[i] = mustDay(c.Day)
	}
	// The restore snapshot's id is only known after the commit; the event
	// records main's head before, and is completed below.
	history = append(history, ev)
	enc, err := encodeJSON(history)
	if err != nil {
		return nil, err
	}
	summary := iceberg.Properties{SummaryOperation: "rollback-restore", SummaryBranch: ev.Branch,
		"icefill.restored-from": strconv.FormatInt(plan.target.SnapshotID, 10)}
	t2, err := swapPartitions(ctx, cat, tbl, table.MainBranch, days, files, then, summary, iceberg.Properties{HistoryProperty: enc})
	if err != nil {
		return rolledBackAnyway(ctx, cat, ident, ev, main, err)
	}
	ev.To = t2.CurrentSnapshot().SnapshotID
	// Complete the record, pinned to the restore snapshot (if main moved on
	// meanwhile, the record keeps To = 0).
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
		return nil, errkind.UnavailableError(fmt.Errorf("rollback: %w; the outcome is unknown (reading the table back failed: %v): run `icefill history` before anything else", cause, err))
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
		return nil, errkind.UnavailableError(fmt.Errorf("rollback: %w; nothing was changed; run rollback again", cause))
	}
	return nil, fmt.Errorf("%w (%v); nothing was changed; run rollback again", ErrMainMoved, cause)
}
