package snapshots

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/icefill/icefill/internal/errkind"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
)

// PartitionColumn is the identity-partitioned date column of the table.
const PartitionColumn = "event_date"

// Fault lets tests (and the crash-test harness) fail or kill the process at
// a named point of the commit protocol. Nil in production.
type Fault func(point string) error

// Fault points, in protocol order.
const (
	PointDataWritten  = "data-written"  // data files written, not yet checked
	PointBeforeCommit = "before-commit" // data files written, nothing committed
	PointLostResponse = "lost-response" // the commit landed, its answer is "lost"
	PointAfterCommit  = "after-commit"  // committed, before the caller hears of it
)

// ErrFaultLoseFiles, returned by a Fault at PointDataWritten, makes the
// writer forget the files it wrote, as a data-file writer that drops an
// error would (the disk-full case): a test of the written-files check.
var ErrFaultLoseFiles = errors.New("fault injected: the data-file writer lost its files")

// Committer commits partitions to one branch. It is safe for concurrent use
// (its commits are serialized). A commit starts from the table the previous
// one left, or from a fresh load after a failure, on format-1 tables and
// whenever the branch's history is due for trimming (cacheUsable).
type Committer struct {
	Catalog catalog.Catalog
	Ident   table.Identifier
	Branch  string
	// MaxAttempts bounds the attempts per commit (default 40).
	MaxAttempts int
	// MaxBackoff caps the wait between attempts (default 5s).
	MaxBackoff time.Duration
	// KeepHistory is how many snapshots before the branch head each commit
	// keeps (0: DefaultKeepHistory; negative: all). The older ones are
	// removed from the table metadata in the same commit.
	KeepHistory int
	Fault       Fault
	Log         *slog.Logger

	// mu serializes this process's commits: workers compute in parallel,
	// but two of them racing for the same branch head would only make one
	// lose and back off (it can starve behind a fast neighbour). Conflicts
	// then come only from other processes and the nightly job.
	mu sync.Mutex
	// last is the table as this process's latest successful commit left
	// it: parsing table metadata is most of a commit's cost, so the next
	// commit starts from it and reloads only after a failure.
	last *table.Table
	// lastState is the branch state that commit wrote, bound to its head:
	// reading it back from last's properties would copy every checkpoint
	// again, a cost that grows with the partitions committed.
	lastState *State
	// retained is set once the branch is known to carry icefill's
	// retention (a branch made by its first commit does not).
	retained atomic.Bool
}

// PartitionCommit is what one partition commit installs.
type PartitionCommit struct {
	Day        iceberg.Date
	DayText    string
	Files      []iceberg.DataFile
	Checkpoint Checkpoint
	Summary    iceberg.Properties
	// Written is the oldest storage time of Files (DataFiles.Check). An
	// attempt that finds a gc fence at or after it stops with ErrFenced:
	// the files may have been deleted and must be written again.
	Written time.Time
}

// CommitResult says how a commit went.
type CommitResult struct {
	Attempts int
	// Recovered is true when an attempt's answer was lost or failed but
	// reading the table back showed it had landed.
	Recovered bool
	// Latency is the duration of the successful catalog commit call.
	Latency time.Duration
	// Conflicts counts the attempts that lost a race for the branch head
	// (another writer, or the nightly job, committed first); Attempts-1 are
	// all retries, conflicts or catalog errors.
	Conflicts int
	// State is the branch state right after the commit, every writer's
	// checkpoints included (nil when not known without reading the table
	// again). Never modify it.
	State *State
}

// IsConflict reports whether a commit failed because the table changed
// since it was read: a clean compare-and-swap failure, as catalogs report
// it (REST: 409; iceberg-go's SQL catalog: a failed requirement or a stale
// sequence number, as plain errors).
func IsConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, table.ErrCommitFailed) {
		return true
	}
	msg := strings.ToLower(err.Error())
	return strings.Contains(msg, "requirement failed") || strings.Contains(msg, "sequence number")
}

// ErrGaveUp wraps the last error when the attempt budget is spent.
var ErrGaveUp = errkind.UnavailableError(errors.New("commit did not succeed within its attempt budget"))

func (c *Committer) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// Commit atomically replaces partition pc.Day on the branch with pc.Files
// and records pc.Checkpoint in the branch state, retrying on conflicts
// (another worker, the nightly job committing to main) and resolving
// unknown outcomes by reading the table back: it never commits twice.
func (c *Committer) Commit(ctx context.Context, pc PartitionCommit) (CommitResult, error) {
	maxAttempts := c.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = 40
	}
	var res CommitResult
	var lastErr error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		res.Attempts = attempt
		if attempt > 1 {
			if err := sleepCtx(ctx, backoff(attempt, c.MaxBackoff)); err != nil {
				return res, err
			}
		}
		c.mu.Lock()
		tbl, state, err := c.last, c.lastState, error(nil)
		c.last, c.lastState = nil, nil
		fresh := tbl == nil || attempt > 1 || !c.cacheUsable(tbl)
		if fresh {
			tbl, state = nil, nil
			tbl, err = c.Catalog.LoadTable(ctx, c.Ident)
		}
		if err != nil {
			c.mu.Unlock()
			if ctx.Err() != nil || errors.Is(err, catalog.ErrNoSuchTable) {
				return res, fmt.Errorf("load table %s: %w", c.Ident, err)
			}
			lastErr = fmt.Errorf("load table: %w", err)
			continue
		}
		if state == nil {
			if state, err = LoadState(tbl, c.Branch); err != nil {
				c.mu.Unlock()
				return res, err
			}
		}
		if cp, ok := state.Checkpoints[pc.DayText]; ok && cp.Attempt == pc.Checkpoint.Attempt {
			// An earlier attempt whose answer we did not get has landed.
			c.mu.Unlock()
			res.Recovered, res.State = attempt > 1, state
			return res, nil
		}
		if len(pc.Files) > 0 && fenced(tbl, pc.Written) {
			c.mu.Unlock()
			return res, fmt.Errorf("partition %s on branch %s: %w (files written at %s, clean-up cut %s)",
				pc.DayText, c.Branch, ErrFenced, pc.Written.UTC().Format(time.RFC3339), FenceCut(tbl).UTC().Format(time.RFC3339))
		}
		if attempt > 1 && lastErr != nil {
			c.log().Debug("retrying partition commit", "partition", pc.DayText, "branch", c.Branch, "attempt", attempt, "cause", lastErr)
		}
		start := time.Now()
		// Only a first attempt trims: the pins on the other refs add
		// conflicts, and a partition must not lose its attempts to a
		// clean-up that the next commit can do as well.
		var trim []int64
		if fresh && attempt == 1 {
			trim = c.dueTrim(tbl)
		}
		c.last, c.lastState, err = c.attempt(ctx, tbl, state, pc, trim)
		res.State = c.lastState
		c.mu.Unlock()
		if err == nil {
			res.Latency = time.Since(start)
			if !c.retained.Load() {
				if rerr := ensureRetention(ctx, c.Catalog, c.Ident, c.Branch); rerr == nil {
					c.retained.Store(true)
				} else {
					c.log().Warn("could not set the branch's snapshot retention; will retry", "branch", c.Branch, "err", rerr)
				}
				c.forgetTable()
			}
			if c.Fault != nil {
				if ferr := c.Fault(PointAfterCommit); ferr != nil {
					return res, ferr
				}
			}
			return res, nil
		}
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		if IsConflict(err) {
			res.Conflicts++
		}
		lastErr = err
	}
	return res, fmt.Errorf("partition %s on branch %s: %w after %d attempts; last error: %v; re-run the same command to continue",
		pc.DayText, c.Branch, ErrGaveUp, maxAttempts, lastErr)
}

// attempt commits pc once on tbl, whose branch state is state. It returns
// the committed table and the state it holds (nil when the catalog landed
// another snapshot than the state is bound to: the next attempt reads it).
// trim are the branch's older snapshots it removes (commitTxn); only for a
// freshly loaded tbl.
func (c *Committer) attempt(ctx context.Context, tbl *table.Table, state *State, pc PartitionCommit, trim []int64) (*table.Table, *State, error) {
	next := state.Clone()
	cp := pc.Checkpoint
	// The pin below makes this commit land on exactly this metadata, so its
	// snapshot gets the next sequence number: an ordering with main's
	// commits that needs no clock.
	cp.Seq = tbl.Metadata().LastSequenceNumber() + 1
	next.Checkpoints[pc.DayText] = cp
	delete(next.Failures, pc.DayText)
	summary := iceberg.Properties{}
	for k, v := range pc.Summary {
		summary[k] = v
	}
	summary[SummaryDone] = fmt.Sprint(len(next.Checkpoints))
	old, err := PartitionFiles(ctx, tbl, c.Branch, pc.Day)
	if err != nil {
		return nil, nil, err
	}
	txn, err := pinnedTxn(tbl, c.Branch)
	if err != nil {
		return nil, nil, err
	}
	if len(pc.Files) > 0 {
		// The gc fence read above must still be the fence at commit time.
		if err := txn.AssertRefSnapshotID(FenceRef); err != nil {
			return nil, nil, err
		}
	}
	if len(old) > 0 || len(pc.Files) > 0 {
		// New files have fresh unique names and an attempt that landed is
		// recognised from the state first, so the library's scan of every
		// manifest for duplicate paths is skipped.
		if err := txn.ReplaceDataFilesWithDataFiles(ctx, old, pc.Files, summary, table.WithoutDuplicateCheck()); err != nil {
			return nil, nil, fmt.Errorf("stage partition %s: %w", pc.DayText, err)
		}
	} else if err := emptyAppend(ctx, txn, summary); err != nil {
		// An empty day that was empty before: an empty snapshot still moves
		// the head, so the state change is compare-and-swapped like any other.
		return nil, nil, err
	}
	onlyDay := ""
	if state.stored {
		onlyDay = pc.DayText // next is state with this one checkpoint changed
	}
	bound, err := stageState(txn, c.Branch, next, onlyDay)
	if err != nil {
		return nil, nil, err
	}
	if c.Fault != nil {
		if err := c.Fault(PointBeforeCommit); err != nil {
			return nil, nil, err
		}
	}
	committed, err := c.commitTxn(ctx, tbl, txn, trim)
	if err != nil {
		return nil, nil, fmt.Errorf("commit partition %s: %w", pc.DayText, err)
	}
	next.SetAside, next.SetAsideCheckpoints, next.stored = "", 0, true
	if !checkBound(c.log(), committed, c.Branch, bound) {
		next = nil
	}
	if c.Fault != nil {
		if err := c.Fault(PointLostResponse); err != nil {
			return nil, nil, err
		}
	}
	return committed, next, nil
}

// checkBound warns when a commit landed a snapshot other than the one its
// state was bound to (a catalog that rewrote the commit): the state is then
// set aside by the next LoadState and the partitions are recomputed. It
// reports whether the branch head is the bound snapshot.
func checkBound(log *slog.Logger, committed *table.Table, branch string, bound int64) bool {
	if committed == nil {
		return false
	}
	head := committed.SnapshotByName(branch)
	if head != nil && head.SnapshotID != bound {
		log.Warn("the catalog committed another snapshot than the one the branch state was bound to; the next run recomputes the branch", "branch", branch, "head", head.SnapshotID, "bound", bound)
	}
	return head != nil && head.SnapshotID == bound
}

// DefaultKeepHistory is how many of a branch's newest snapshots icefill
// keeps besides its head (Committer.KeepHistory).
const DefaultKeepHistory = 8

// commitTxn sends txn's staged changes and the removal of the branch's own
// older snapshots to the catalog as one atomic commit.
//
// Trimming the branch's history keeps the table metadata, which every
// commit reads and rewrites, the same size whether 1 or 1,825 partitions
// are committed: the checkpoints are in the state properties, not in the
// snapshots, and nothing reads a branch snapshot other than its head and
// the manifest rewrites just before it (LoadState).
//
// What another ref needs is read from tbl, so only a freshly loaded table
// trims (trim are the snapshots to remove, from dueTrim; nil skips it): a
// cached one may predate a tag or a
// fast-forward promotion onto the branch's snapshots. The other refs are
// then pinned as read, so that one moving before the commit lands makes
// it retry on a fresh table instead of removing what that ref now holds.
func (c *Committer) commitTxn(ctx context.Context, tbl *table.Table, txn *table.Transaction, trim []int64) (*table.Table, error) {
	var extra []table.Update
	if len(trim) > 0 {
		for name := range tbl.Metadata().Refs() {
			if name != c.Branch {
				if err := txn.AssertRefSnapshotID(name); err != nil {
					return nil, err
				}
			}
		}
		// Files stay: icefill's gc deletes the data files no snapshot
		// references any more, after its grace period.
		extra = append(extra, table.NewRemoveSnapshotsUpdate(trim, false))
	}
	return commitStaged(ctx, c.Catalog, tbl, txn, extra...)
}

// commitStaged sends txn's staged changes (plus extra updates) to the
// catalog as one commit, once.
//
// It calls the catalog directly rather than txn.Commit, so that the table's
// commit.retry.* properties (which other engines share) never make
// iceberg-go replay an icefill commit on a newer table: a replay would give
// a partition's snapshot another sequence number than its checkpoint
// records and another id than the state is bound to, and re-apply a
// promotion's or rollback's file swap to a main it did not read. Every
// icefill commit is pinned to the refs it read, and icefill's own loops,
// which re-read the table first, are its only retry.
func commitStaged(ctx context.Context, cat catalog.Catalog, tbl *table.Table, txn *table.Transaction, extra ...table.Update) (*table.Table, error) {
	tc, err := txn.TableCommit()
	if err != nil {
		return nil, err
	}
	meta, loc, err := cat.CommitTable(ctx, tbl.Identifier(), tc.Requirements, append(tc.Updates, extra...))
	if err != nil {
		return nil, err
	}
	txn.MarkCommitted()
	return table.New(tbl.Identifier(), meta, loc, tbl.FS, cat), nil
}

func (c *Committer) keepHistory() int {
	if c.KeepHistory == 0 {
		return DefaultKeepHistory
	}
	return c.KeepHistory
}

// trimmableSnapshots lists the snapshots of branch's history, past its
// keep newest (the head included: the commit about to land is the new head),
// that no other ref (main, a tag, another branch) has in its history: the
// branch's own intermediate snapshots. A negative keep keeps them all.
func trimmableSnapshots(meta table.Metadata, branch string, keep int) []int64 {
	if keep < 0 || branch == table.MainBranch {
		return nil
	}
	head := meta.SnapshotByName(branch)
	if head == nil {
		return nil
	}
	lookup := meta.SnapshotByID
	protected := map[int64]bool{}
	for name, ref := range meta.Refs() {
		if name == branch {
			continue
		}
		for _, s := range table.AncestorsOf(ref.SnapshotID, lookup) {
			if protected[s.SnapshotID] {
				break
			}
			protected[s.SnapshotID] = true
		}
	}
	// The snapshot the branch was made from (or last promoted to) is where
	// promote and catch-up start once this trimming has cut the branch's
	// history; main may have left it (rollback --to), so nothing else keeps it.
	if base := int64(meta.Properties().GetInt(baseProperty(branch), 0)); base != 0 {
		protected[base] = true
	}
	var ids []int64
	i := 0
	for _, s := range table.AncestorsOf(head.SnapshotID, lookup) {
		if protected[s.SnapshotID] {
			break
		}
		if i >= keep {
			ids = append(ids, s.SnapshotID)
		}
		i++
	}
	return ids
}

// cacheUsable reports whether the next commit may start from the table the
// previous one left (c.last) instead of loading it. Not on format-1
// tables: without sequence numbers only the branch pin guards the cached
// state, and a branch moved back to the cached head by another tool
// passes it. Not once the branch's trimmable history has reached the
// number kept: trimming needs the refs as they are now, so every
// keep-history commits one starts from a fresh load and trims.
func (c *Committer) cacheUsable(tbl *table.Table) bool {
	return tbl.Metadata().Version() >= 2 && c.dueTrim(tbl) == nil
}

// dueTrim returns the branch's trimmable snapshots once there are as many
// as the number kept, nil before: trimming is batched so that only one
// commit in keep-history starts from a fresh load and pins the other refs.
func (c *Committer) dueTrim(tbl *table.Table) []int64 {
	keep := c.keepHistory()
	if keep < 0 {
		return nil
	}
	if ids := trimmableSnapshots(tbl.Metadata(), c.Branch, keep); len(ids) >= max(keep, 1) {
		return ids
	}
	return nil
}

// pinnedTxn opens a transaction on branch whose commit requires the branch
// head it was read at. Every icefill commit that changes the branch state
// moves the head, so this pin is a compare-and-swap of the state too. It is
// explicit so that a table's commit.retry.num-retries cannot re-target it
// to a newer head on retry.
func pinnedTxn(tbl *table.Table, branch string) (*table.Transaction, error) {
	txn := tbl.NewTransactionOnBranch(branch)
	if err := txn.AssertRefSnapshotID(branch); err != nil {
		return nil, err
	}
	return txn, nil
}

// emptyAppend stages a snapshot that adds nothing: it moves the branch head
// so that a change of state alone is guarded like a data commit.
func emptyAppend(ctx context.Context, txn *table.Transaction, summary iceberg.Properties) error {
	rdr, err := array.NewRecordReader(features.LegacySchema, nil)
	if err != nil {
		return err
	}
	defer rdr.Release()
	return txn.Append(ctx, rdr, summary)
}

// PartitionFiles lists the data files of partition day on ref (nil when the
// ref does not exist yet or has no snapshot).
func PartitionFiles(ctx context.Context, tbl *table.Table, ref string, day iceberg.Date) ([]iceberg.DataFile, error) {
	head := tbl.SnapshotByName(ref)
	if head == nil {
		return nil, nil
	}
	tasks, err := tbl.Scan(table.WithSnapshotID(head.SnapshotID),
		table.WithRowFilter(iceberg.EqualTo(iceberg.Reference(PartitionColumn), day))).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of partition %v on %s: %w", day, ref, err)
	}
	files := make([]iceberg.DataFile, 0, len(tasks))
	for _, t := range tasks {
		files = append(files, t.File)
	}
	return files, nil
}
