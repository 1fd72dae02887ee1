package snapshots

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// KeepSnapshots is the branch retention icefill sets: more snapshots than
// any backfill has partitions, so expiry never removes a checkpoint.
const KeepSnapshots = 1_000_000

// EnsureBranch creates branch from main's current snapshot with retention
// that keeps its checkpoints, unless it exists. It returns main's snapshot
// id the branch was made from (0 when main has no snapshot yet: then the
// first partition commit creates the branch). Concurrent callers are safe.
func EnsureBranch(ctx context.Context, cat catalog.Catalog, ident table.Identifier, branch string) (int64, error) {
	if branch == table.MainBranch {
		return 0, nil
	}
	var base int64
	done := false // the attempt's error is final, not a conflict
	err := retry(ctx, 10, time.Second, func(int) (bool, error) {
		tbl, err := cat.LoadTable(ctx, ident)
		if err != nil {
			done = true
			return true, fmt.Errorf("load table %s: %w", ident, err)
		}
		if ref, ok := refOf(tbl, branch); ok {
			if ref.SnapshotRefType != table.BranchRef {
				done = true
				return true, fmt.Errorf("%q is a tag of table %s, not a branch; choose another --branch", branch, ident)
			}
			base = int64(tbl.Properties().GetInt(baseProperty(branch), 0))
			return true, nil
		}
		main := tbl.CurrentSnapshot()
		if main == nil {
			return true, nil
		}
		_, _, err = cat.CommitTable(ctx, ident,
			[]table.Requirement{
				table.AssertTableUUID(tbl.Metadata().TableUUID()),
				table.AssertRefSnapshotID(branch, nil),
			},
			[]table.Update{
				table.NewSetSnapshotRefUpdate(branch, main.SnapshotID, table.BranchRef, 0, 0, KeepSnapshots),
				table.NewSetPropertiesUpdate(iceberg.Properties{baseProperty(branch): fmt.Sprint(main.SnapshotID)}),
			})
		base, done = main.SnapshotID, err == nil
		return done, err
	})
	if err != nil && !done && ctx.Err() == nil {
		return 0, fmt.Errorf("create branch %q on %s: gave up after repeated conflicts (%v); re-run the command", branch, ident, err)
	}
	return base, err
}

// baseProperty records which main snapshot a branch was forked from.
func baseProperty(branch string) string { return "icefill.base." + branch }

func refOf(tbl *table.Table, name string) (table.SnapshotRef, bool) {
	for n, r := range tbl.Metadata().Refs() {
		if n == name {
			return r, true
		}
	}
	return table.SnapshotRef{}, false
}

// ensureRetention gives a branch created implicitly by its first commit
// (on a table whose main had no snapshot) the retention EnsureBranch sets.
func ensureRetention(ctx context.Context, cat catalog.Catalog, ident table.Identifier, branch string) error {
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return err
	}
	ref, ok := refOf(tbl, branch)
	if !ok || branch == table.MainBranch || (ref.MinSnapshotsToKeep != nil && *ref.MinSnapshotsToKeep >= KeepSnapshots) {
		return nil
	}
	id := ref.SnapshotID
	_, _, err = cat.CommitTable(ctx, ident,
		[]table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID()), table.AssertRefSnapshotID(branch, &id)},
		[]table.Update{table.NewSetSnapshotRefUpdate(branch, id, table.BranchRef, 0, 0, KeepSnapshots)})
	return err
}

// UpdateState applies change to the branch state in a commit that touches
// nothing else (run plans, failure records), pinned to the branch head and
// retried on conflict.
func (c *Committer) UpdateState(ctx context.Context, change func(*State) error) error {
	c.forgetTable()
	final := false // the attempt's error is not a conflict: do not retry
	done := func(err error) (bool, error) { final = true; return true, err }
	err := retry(ctx, 20, c.MaxBackoff, func(int) (bool, error) {
		tbl, err := c.Catalog.LoadTable(ctx, c.Ident)
		if err != nil {
			if errors.Is(err, catalog.ErrNoSuchTable) {
				return done(err)
			}
			return false, err
		}
		state, err := LoadState(tbl, c.Branch)
		if err != nil {
			return done(err)
		}
		if err := change(state); err != nil {
			return done(err)
		}
		// Unchanged (same head, same content): nothing to commit.
		if ch, err := encodeState(tbl.Properties(), c.Branch, state, ""); err != nil {
			return done(err)
		} else if state.SetAside == "" && ch.empty() {
			return done(nil)
		}
		txn, err := pinnedTxn(tbl, c.Branch)
		if err != nil {
			return done(err)
		}
		if err := emptyAppend(ctx, txn, iceberg.Properties{SummaryOperation: "state"}); err != nil {
			return done(err)
		}
		bound, err := stageState(txn, c.Branch, state, "")
		if err != nil {
			return done(err)
		}
		committed, err := c.commitTxn(ctx, tbl, txn, c.dueTrim(tbl))
		if err != nil {
			return false, err
		}
		checkBound(c.log(), committed, c.Branch, bound)
		return done(nil)
	})
	if err != nil && !final && ctx.Err() == nil {
		return fmt.Errorf("update state of branch %s: %w", c.Branch, err)
	}
	return err
}

// CompactManifests rewrites the branch's manifests into one per month of
// partitions when more than threshold of them are not such a month's
// manifest yet: each commit adds a manifest and commit cost grows with their
// number. A failure here is harmless; the next call retries.
//
// Clustering by month keeps what a commit reads and rewrites small however
// many partitions the branch holds: finding a day's current files reads the
// manifests whose partition range (in the manifest list) contains the day,
// one month's and the few added since, and replacing a day's files rewrites
// that month's manifest, not one listing every partition. Only the months of
// the manifests not yet clustered are rewritten.
func (c *Committer) CompactManifests(ctx context.Context, threshold int) (bool, error) {
	c.forgetTable()
	compacted := false
	err := retry(ctx, 5, c.MaxBackoff, func(int) (bool, error) {
		tbl, err := c.Catalog.LoadTable(ctx, c.Ident)
		if err != nil {
			return true, err
		}
		head := tbl.SnapshotByName(c.Branch)
		if head == nil {
			return true, nil
		}
		fs, err := tbl.FS(ctx)
		if err != nil {
			return true, err
		}
		manifests, err := head.Manifests(fs)
		if err != nil {
			return true, err
		}
		dirty := map[int]bool{} // months of the manifests to cluster
		loose := 0
		for _, m := range manifests {
			if m.ManifestContent() != iceberg.ManifestContentData {
				// Rewrites leave delete manifests as they are: counting
				// them would make a branch with many (another engine's
				// deletes) rewrite the same months at every compaction.
				continue
			}
			if lo, hi, ok := manifestMonths(m); ok && lo == hi && monthManifest(m) {
				continue
			} else if ok {
				for mo := lo; mo <= hi; mo++ {
					dirty[mo] = true
				}
			}
			loose++
		}
		if loose <= threshold {
			return true, nil
		}
		txn := tbl.NewTransactionOnBranch(c.Branch)
		res, err := txn.RewriteManifests(ctx, table.WithRewriteManifestClusterBy(dataFileMonth),
			table.WithRewriteManifestPredicate(func(m iceberg.ManifestFile) bool {
				lo, hi, ok := manifestMonths(m)
				return !ok || lo != hi || !monthManifest(m) || dirty[lo]
			}))
		if err != nil || res.IsNoOp() {
			return true, err
		}
		_, err = c.commitTxn(ctx, tbl, txn, c.dueTrim(tbl))
		compacted = err == nil
		return compacted, nil // a conflict: try again, harmless if it never lands
	})
	return compacted, err
}

// monthManifest reports whether m is a manifest a rewrite wrote (its entries
// existing, none added or deleted by a commit), as opposed to a commit's.
func monthManifest(m iceberg.ManifestFile) bool {
	return m.ManifestContent() == iceberg.ManifestContentData && m.AddedDataFiles() == 0 && m.DeletedDataFiles() == 0
}

// manifestMonths is the range of months (year*12 + month-1) of the
// partitions m lists, from the manifest list's partition summary of the
// date column (false when it has none).
func manifestMonths(m iceberg.ManifestFile) (lo, hi int, ok bool) {
	p := m.Partitions()
	if len(p) == 0 || p[0].LowerBound == nil || p[0].UpperBound == nil || len(*p[0].LowerBound) != 4 || len(*p[0].UpperBound) != 4 {
		return 0, 0, false
	}
	day := func(b []byte) int { return int(int32(binary.LittleEndian.Uint32(b))) }
	return monthOfDays(day(*p[0].LowerBound)), monthOfDays(day(*p[0].UpperBound)), true
}

// dataFileMonth is the month key a rewrite clusters a data file under
// (-1 when its partition is not a date).
func dataFileMonth(df iceberg.DataFile) any {
	for _, v := range df.Partition() {
		switch d := v.(type) {
		case iceberg.Date:
			return monthOfDays(int(d))
		case int32:
			return monthOfDays(int(d))
		}
	}
	return -1
}

// monthOfDays is the month (year*12 + month-1) of a date in days since
// 1970-01-01.
func monthOfDays(days int) int {
	t := time.Unix(int64(days)*86400, 0).UTC()
	return t.Year()*12 + int(t.Month()) - 1
}

// forgetTable drops the cached table: a commit outside the commit loop
// made it stale.
func (c *Committer) forgetTable() {
	c.mu.Lock()
	c.last, c.lastState = nil, nil
	c.mu.Unlock()
}
