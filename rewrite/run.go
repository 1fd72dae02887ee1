package rewrite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/google/uuid"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/source"
	"github.com/icefill/icefill/spill"
)

// RunOptions configure a backfill run.
type RunOptions struct {
	Branch      string
	Logic       features.Logic
	Days        []features.Date
	Order       Order
	Workers     int
	Force       bool
	RejectLimit float64
	PauseWindow *PauseWindow
	// RunID identifies this run in checkpoints; NewRunID() when empty.
	RunID string
	// Shard/Shards split partitions between processes (see PlanOptions).
	Shard, Shards int
	// GCMinAge is the age under which an unreferenced data file is assumed
	// to belong to a running writer; the start-of-run clean-up spares it.
	// Zero means DefaultGCMinAge: deleting young unreferenced files is only
	// safe when no other process writes the table, so it must be asked for
	// explicitly (a tiny positive value).
	GCMinAge time.Duration
	// CompactAbove triggers a manifest rewrite when the branch head has
	// more manifests that are not one month's compacted manifest (see
	// snapshots.Committer.CompactManifests); checked every CompactEvery
	// commits.
	CompactAbove, CompactEvery int
	// Verify checks, before planning, that every checkpoint in range has
	// its data files on storage as committed; those that do not are
	// recomputed (StatusFilesBad).
	Verify bool
	// AllowMixedLogic lets a run write a logic version other than the one
	// the branch's checkpoints hold (see checkOneLogic).
	AllowMixedLogic bool
	S3              objstore.S3Options
	Fault           snapshots.Fault
	Progress        Progress
	SourceName      string
	Log             *slog.Logger
}

// Progress hears about a run as it goes; implementations must be safe for
// concurrent use.
type Progress interface {
	Planned(plan *Plan)
	Started(day features.Date)
	Committed(day features.Date, p *Partition, res snapshots.CommitResult, took time.Duration)
	Failed(day features.Date, err error)
	Paused(until time.Time)
}

// PartitionFailure is one partition that did not commit.
type PartitionFailure struct {
	Day features.Date
	Err error
}

// RunResult summarizes a run.
type RunResult struct {
	RunID       string
	Plan        *Plan
	Committed   []features.Date
	Failed      []PartitionFailure
	Events      int64
	OutputRows  int64
	Elapsed     time.Duration
	Latencies   []time.Duration // successful catalog commit calls, in commit order
	Recovered   int             // commits whose lost answer was resolved by reading back
	Orphans     *snapshots.GCResult
	SchemaAdded bool
	// SetAside says why the branch's stored checkpoints were not used
	// (snapshots.LoadState); SetAsideCheckpoints counts them.
	SetAside            string
	SetAsideCheckpoints int
	// Bad are the checkpoints --verify found wrong, by day.
	Bad map[string]string
}

// NewRunID returns a sortable, unique run id.
func NewRunID() string {
	var b [3]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// DefaultGCMinAge is how old an unreferenced data file must be before a
// clean-up may assume no live writer is about to commit it.
const DefaultGCMinAge = time.Hour

// ErrPartitionsFailed is returned (wrapped) when some partitions failed.
var ErrPartitionsFailed = errors.New("some partitions failed")

// Run recomputes the planned partitions onto the branch, one atomic commit
// per partition. It is safe to run many times, from many processes at once:
// a partition whose checkpoint matches its logic and input is skipped, and
// each commit resolves conflicts and unknown outcomes itself.
func Run(ctx context.Context, cat *catalog.Catalog, in *Inputs, opts RunOptions) (*RunResult, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.RunID == "" {
		opts.RunID = NewRunID()
	}
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if opts.GCMinAge <= 0 {
		opts.GCMinAge = DefaultGCMinAge
	}
	res := &RunResult{RunID: opts.RunID}
	start := time.Now()
	// Both end up in object paths (rejects): refuse what could escape them.
	if err := snapshots.CheckBranchName(opts.Branch); err != nil {
		return res, err
	}
	if err := snapshots.CheckRunID(opts.RunID); err != nil {
		return res, err
	}

	// Missing inputs stop the run before anything is written.
	if _, _, err := in.CheckMissing(opts.Days, opts.Logic); err != nil {
		return res, err
	}
	if _, _, err := cat.EnsureTable(ctx); err != nil {
		return res, err
	}
	if opts.Logic == features.Corrected {
		var err error
		if _, res.SchemaAdded, err = cat.EnsureFeatureColumns(ctx); err != nil {
			return res, err
		}
		if res.SchemaAdded {
			log.Warn("added the feature columns touches_7d, distinct_channels_7d, avg_hours_to_convert to the table schema; an Iceberg table has one schema, so readers of main now see them as null columns until the backfill is promoted", "table", cat.Ident())
		}
	}
	base, err := snapshots.EnsureBranch(ctx, cat.Iceberg(), cat.Ident(), opts.Branch)
	if err != nil {
		return res, err
	}
	committer := &snapshots.Committer{Catalog: cat.Iceberg(), Ident: cat.Ident(), Branch: opts.Branch, Fault: opts.Fault, Log: log}

	tbl, err := cat.LoadTable(ctx)
	if err != nil {
		return res, err
	}
	state, err := snapshots.LoadState(tbl, opts.Branch)
	if err != nil {
		return res, err
	}
	WarnOtherSource(log, state, opts.SourceName)
	if state.SetAside != "" && state.SetAsideCheckpoints > 0 {
		res.SetAside, res.SetAsideCheckpoints = state.SetAside, state.SetAsideCheckpoints
		log.Warn("the branch's recorded checkpoints do not describe it any more; every partition is recomputed",
			"branch", opts.Branch, "checkpoints", state.SetAsideCheckpoints, "why", state.SetAside)
	}
	if err := checkOneLogic(state, opts); err != nil {
		return res, err
	}
	var bad map[string]string
	if opts.Verify {
		days := make([]string, len(opts.Days))
		for i, d := range opts.Days {
			days[i] = d.String()
		}
		if bad, err = snapshots.VerifyCheckpoints(ctx, tbl, opts.Branch, state, days, opts.S3); err != nil {
			return res, fmt.Errorf("verify the branch's files: %w", err)
		}
		res.Bad = bad
		for _, day := range slices.Sorted(maps.Keys(bad)) {
			log.Warn("a checkpoint's data files are not as committed; recomputing the partition", "partition", day, "problem", bad[day])
		}
	}
	plan, err := MakePlan(ctx, in, state, PlanOptions{Days: opts.Days, Logic: opts.Logic, Order: opts.Order, Force: opts.Force, Shard: opts.Shard, Shards: opts.Shards, Bad: bad})
	res.Plan = plan
	if err != nil {
		return res, err
	}
	if opts.Progress != nil {
		opts.Progress.Planned(plan)
	}
	// A window the budget cannot compute fails whatever the retry: refuse
	// the run before any partition is committed.
	if err := checkBudget(ctx, in, plan.Todo(), opts.Logic, log); err != nil {
		return res, err
	}
	if err := recordPlan(ctx, committer, opts, base, state, plan); err != nil {
		return res, err
	}

	// Files left by interrupted attempts: safe to delete once old enough
	// that no live writer can still be about to commit them.
	gc, err := snapshots.CollectGarbage(ctx, cat.Iceberg(), cat.Ident(), snapshots.GCOptions{S3: opts.S3, MinAge: opts.GCMinAge, By: "run " + opts.RunID})
	if err != nil {
		log.Warn("orphan clean-up at start failed; continuing (run `icefill gc` later)", "err", err)
	} else {
		res.Orphans = gc
		if gc.Deleted > 0 {
			log.Info("deleted data files of interrupted attempts", "files", gc.Deleted)
		}
	}

	todo := plan.Todo()
	todoDays := make([]features.Date, len(todo))
	for i, pp := range todo {
		todoDays[i] = pp.Day
	}
	in.ReadAhead(ctx, todoDays, opts.Logic)
	log.Debug("source days decoded ahead of need, at most", "days", in.ReadAheadDays())
	w := &worker{cat: cat, in: in, opts: opts, committer: committer, log: log, tbl: tbl}
	var mu sync.Mutex
	next := make(chan PlannedPartition)
	var wg sync.WaitGroup
	commits := 0
	for i := 0; i < opts.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pp := range next {
				p, cres, err := w.do(ctx, pp)
				mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						res.Failed = append(res.Failed, PartitionFailure{Day: pp.Day, Err: err})
					}
				} else if p != nil {
					res.Committed = append(res.Committed, pp.Day)
					res.Events += p.InputRows
					res.OutputRows += p.Rows()
					res.Latencies = append(res.Latencies, cres.Latency)
					if cres.Recovered {
						res.Recovered++
					}
					commits++
				}
				compact := commits > 0 && commits%max(opts.CompactEvery, 1) == 0
				mu.Unlock()
				if err != nil && ctx.Err() == nil {
					w.recordFailure(ctx, pp.Day, err)
				}
				if compact {
					if done, err := committer.CompactManifests(ctx, opts.CompactAbove); err != nil {
						log.Warn("manifest compaction failed; will retry later", "branch", opts.Branch, "err", err)
					} else if done {
						log.Info("compacted branch manifests", "branch", opts.Branch)
					}
				}
			}
		}()
	}
feed:
	for _, pp := range todo {
		if err := waitPause(ctx, opts.PauseWindow, opts.Progress); err != nil {
			break
		}
		select {
		case next <- pp:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	res.Elapsed = time.Since(start)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if len(res.Failed) > 0 {
		err := fmt.Errorf("%w: %d of %d", ErrPartitionsFailed, len(res.Failed), len(todo))
		// A customer too heavy for the budget (found only while computing)
		// makes the run a usage error that names the budget needed.
		if big := tooLarge(res.Failed); big != nil {
			err = fmt.Errorf("%w: %w", err, big)
		}
		return res, err
	}
	return res, nil
}

// checkBudget fails with the error of the largest of the partitions todo
// whose window the memory budget cannot compute, naming the budget that
// would do. A partition that cannot be sized is left to fail on its own.
func checkBudget(ctx context.Context, in *Inputs, todo []PlannedPartition, logic features.Logic, log *slog.Logger) error {
	var days []string
	var worst Estimate
	for _, pp := range todo {
		est, err := in.Estimate(ctx, pp.Day, logic)
		if err != nil {
			log.Warn("cannot size partition", "day", pp.Day, "err", err)
			continue
		}
		if est.TooLarge != nil {
			days = append(days, pp.Day.String())
			if worst.TooLarge == nil || est.WindowRows > worst.WindowRows {
				worst = est
			}
		}
	}
	if worst.TooLarge == nil {
		return nil
	}
	return fmt.Errorf("nothing computed: partitions %s too large for the memory budget (the largest: %w)", strings.Join(days, ", "), worst.TooLarge)
}

// tooLarge returns the failure of the largest need among those too large
// for the memory budget, nil when there is none.
func tooLarge(failed []PartitionFailure) error {
	var worst error
	var need int64
	for _, f := range failed {
		if !errors.Is(f.Err, spill.ErrTooLarge) {
			continue
		}
		var heavy *spill.HeavyBucketError
		n := int64(0)
		if errors.As(f.Err, &heavy) {
			n = heavy.Need
		}
		if worst == nil || n > need {
			worst, need = f.Err, n
		}
	}
	return worst
}

// checkOneLogic refuses a run whose logic differs from the logic of the
// branch's checkpoints: the branch would hold partitions of two logics
// (those outside the run's range keep the old one), which no validation or
// promotion can tell apart. --allow-mixed-logic overrides it.
func checkOneLogic(state *snapshots.State, opts RunOptions) error {
	if opts.AllowMixedLogic {
		return nil
	}
	want := opts.Logic.Version()
	other := map[string][]string{}
	for day, cp := range state.Checkpoints {
		if cp.Logic != want {
			other[cp.Logic] = append(other[cp.Logic], day)
		}
	}
	if len(other) == 0 {
		return nil
	}
	var held []string
	for _, l := range slices.Sorted(maps.Keys(other)) {
		days := other[l]
		slices.Sort(days)
		held = append(held, fmt.Sprintf("%d partitions (%s … %s) of %s", len(days), days[0], days[len(days)-1], l))
	}
	return errkind.Refusedf("branch %s holds %s; this run computes %s and would leave the branch mixing logics. "+
		"Use a new --branch for %s, or pass --allow-mixed-logic to recompute this range with it (days outside the range keep their logic; status shows the branch as mixed)",
		opts.Branch, strings.Join(held, " and "), want, want)
}

func recordPlan(ctx context.Context, c *snapshots.Committer, opts RunOptions, base int64, state *snapshots.State, plan *Plan) error {
	if len(opts.Days) == 0 {
		return nil
	}
	from, to := opts.Days[0], opts.Days[0]
	for _, d := range opts.Days {
		from, to = min(from, d), max(to, d)
	}
	p := snapshots.Plan{From: from.String(), To: to.String(), Logic: opts.Logic.Version(), Source: opts.SourceName, Partitions: len(opts.Days), Base: base}
	if state.Plan != nil && *state.Plan == p && sameSourceChanges(state, plan) && slices.Equal(state.MissingAsEmpty, missingAsEmpty(state, plan)) {
		return nil
	}
	return c.UpdateState(ctx, func(s *snapshots.State) error {
		noteSourceChanges(s, plan)
		s.MissingAsEmpty = missingAsEmpty(s, plan)
		// Widen an existing plan rather than narrow it: several runs (or
		// shards) may cover parts of one backfill.
		if s.Plan != nil && s.Plan.Logic == p.Logic {
			if s.Plan.From < p.From {
				p.From = s.Plan.From
			}
			if s.Plan.To > p.To {
				p.To = s.Plan.To
			}
			f, _ := features.ParseDate(p.From)
			t, _ := features.ParseDate(p.To)
			p.Partitions = int(t-f) + 1
			if s.Plan.Base != 0 {
				p.Base = s.Plan.Base
			}
		}
		s.Plan = &p
		return nil
	})
}

// noteSourceChanges records in the state which of the plan's partitions
// were committed from input files that have changed since, so the report
// can show them from the catalog alone; the plan's other days are cleared
// (other shards' days are left as they are).
func noteSourceChanges(s *snapshots.State, plan *Plan) {
	for _, pp := range plan.Partitions {
		day := pp.Day.String()
		if pp.Status == StatusSourceChanged {
			if s.SourceChanged == nil {
				s.SourceChanged = map[string]string{}
			}
			s.SourceChanged[day] = pp.Fingerprint
		} else {
			delete(s.SourceChanged, day)
		}
	}
}

// WarnOtherSource warns when source is not the source the branch's
// recorded plan was computed from: a run against another copy of the
// events (or a typo) would mix inputs on one branch.
func WarnOtherSource(log *slog.Logger, state *snapshots.State, source string) {
	if state.Plan != nil && state.Plan.Source != "" && source != "" && state.Plan.Source != source {
		log.Warn("--source differs from the source of the branch's recorded plan; partitions whose input files differ will be recomputed from this one",
			"source", source, "plan_source", state.Plan.Source, "branch", state.Branch)
	}
}

// missingAsEmpty is the state's record of source days counted as empty,
// updated by plan: its partition days are recorded as they are now, other
// recorded days stay.
func missingAsEmpty(s *snapshots.State, plan *Plan) []string {
	set := map[string]bool{}
	for _, d := range s.MissingAsEmpty {
		set[d] = true
	}
	for _, pp := range plan.Partitions {
		delete(set, pp.Day.String())
	}
	for _, d := range append(slices.Clone(plan.MissingPartitions), plan.MissingLookback...) {
		set[d.String()] = true
	}
	if len(set) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(set))
}

// sameSourceChanges reports whether the state already records the plan's
// source changes.
func sameSourceChanges(s *snapshots.State, plan *Plan) bool {
	for _, pp := range plan.Partitions {
		fp, ok := s.SourceChanged[pp.Day.String()]
		if ok != (pp.Status == StatusSourceChanged) || ok && fp != pp.Fingerprint {
			return false
		}
	}
	return true
}

func waitPause(ctx context.Context, w *PauseWindow, progress Progress) error {
	for {
		left := w.Remaining(time.Now())
		if left == 0 {
			return nil
		}
		if progress != nil {
			progress.Paused(time.Now().Add(left))
		}
		t := time.NewTimer(min(left, time.Minute))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

type worker struct {
	cat       *catalog.Catalog
	in        *Inputs
	opts      RunOptions
	committer *snapshots.Committer
	log       *slog.Logger
	tbl       *table.Table // for writing data files: location, schema, spec
}

// do computes, writes and commits one partition. It returns a nil
// partition when another process committed it meanwhile.
func (w *worker) do(ctx context.Context, pp PlannedPartition) (*Partition, snapshots.CommitResult, error) {
	start := time.Now()
	day := pp.Day
	if w.opts.Progress != nil {
		w.opts.Progress.Started(day)
	}
	// Another process may have finished this partition since we planned.
	if pp.Status != StatusForced && pp.Status != StatusFilesBad {
		if tbl, err := w.cat.LoadTable(ctx); err == nil {
			if st, err := snapshots.LoadState(tbl, w.opts.Branch); err == nil && st.Current(day.String(), w.opts.Logic.Version(), pp.Fingerprint) {
				w.in.Skip(day, w.opts.Logic)
				return nil, snapshots.CommitResult{}, nil
			}
		}
	}
	p, err := w.in.Compute(ctx, day, w.opts.Logic, w.opts.RejectLimit)
	if err == nil {
		w.log.Debug("partition computed", "partition", day.String(), "events", p.InputRows, "rows", p.Rows(), "spilled", p.Spilled != nil, "took", time.Since(start).Round(time.Millisecond))
	}
	// Spilled rows stay on local disk until the partition is committed
	// (data files may have to be written again) or has failed.
	defer p.Release()
	// Keep the rejected rows whatever happens next: over the limit, they
	// are what the user must inspect.
	if p != nil && p.Rejected > 0 {
		if werr := w.writeRejects(ctx, p); werr != nil {
			return nil, snapshots.CommitResult{}, werr
		}
	}
	if err != nil {
		return nil, snapshots.CommitResult{}, fmt.Errorf("compute partition %s: %w", day, err)
	}
	attempt := w.opts.RunID + "/" + uuid.NewString()[:8]
	cp := snapshots.Checkpoint{
		Logic: w.opts.Logic.Version(), Fingerprint: p.Fingerprint, RunID: w.opts.RunID, Attempt: attempt,
		InputRows: p.InputRows, OutputRows: p.Rows(), Rejected: p.Rejected,
		Bytes: pp.Bytes,
	}
	summary := iceberg.Properties{
		snapshots.SummaryPartition:   day.String(),
		snapshots.SummaryRunID:       w.opts.RunID,
		snapshots.SummaryLogic:       cp.Logic,
		snapshots.SummaryFingerprint: p.Fingerprint,
		snapshots.SummarySourceFiles: sourceFilesSummary(p.Files),
		snapshots.SummaryInputRows:   fmt.Sprint(p.InputRows),
		snapshots.SummaryOutputRows:  fmt.Sprint(p.Rows()),
		snapshots.SummaryRejected:    fmt.Sprint(p.Rejected),
		snapshots.SummaryAttempt:     attempt,
	}
	// A clean-up that ran while this process was paused (the gc fence) may
	// have deleted the files: write them again, a few times at most.
	var res snapshots.CommitResult
	for try := 1; ; try++ {
		writing := time.Now()
		files, written, err := w.writeDataFiles(ctx, p)
		if err == nil {
			w.log.Debug("data files written", "partition", day.String(), "files", len(files), "took", time.Since(writing).Round(time.Millisecond))
		}
		if errors.Is(err, errFilesGone) && try < maxRewrites {
			// A clean-up deleted them while this process was paused
			// between writing and checking them.
			w.log.Warn("data files vanished before they were checked; writing them again", "partition", day, "err", err)
			continue
		}
		if err != nil {
			return nil, snapshots.CommitResult{}, fmt.Errorf("write data files of partition %s: %w", day, err)
		}
		cp.CommittedAt, cp.Seconds = time.Now().UnixMilli(), time.Since(start).Seconds()
		res, err = w.committer.Commit(ctx, snapshots.PartitionCommit{
			Day: iceberg.Date(day), DayText: day.String(), Files: files, Checkpoint: cp, Summary: summary, Written: written,
		})
		if errors.Is(err, snapshots.ErrFenced) && try < maxRewrites {
			w.log.Warn("a clean-up ran since this partition's data files were written; writing them again", "partition", day, "err", err)
			continue
		}
		if err != nil {
			return nil, res, err
		}
		break
	}
	if w.opts.Progress != nil {
		w.opts.Progress.Committed(day, p, res, time.Since(start))
	}
	return p, res, nil
}

// maxRewrites bounds how often a partition's data files are written again
// because a clean-up may have deleted them before they were committed.
const maxRewrites = 3

// ErrWrittenFiles is returned (wrapped) when the data files written do not
// hold the rows computed, or are not on storage as written.
var ErrWrittenFiles = errors.New("the written data files do not hold the computed rows")

// errFilesGone marks written files missing from storage when checked (a
// clean-up took them during a pause): written again, not a failure.
var errFilesGone = errors.New("missing from storage")

// writeDataFiles writes the partition's rows as Parquet data files of the
// table, once; every commit attempt reuses them. Before anything is
// committed it checks that the files' record counts add up to the rows
// computed and that every file is on storage with its recorded size; it
// returns the files' oldest storage time for the gc fence.
func (w *worker) writeDataFiles(ctx context.Context, p *Partition) ([]iceberg.DataFile, time.Time, error) {
	if p.Rows() == 0 {
		return nil, time.Time{}, nil
	}
	schema := features.FullSchema
	if w.opts.Logic == features.Legacy {
		schema = features.LegacySchema
	}
	// WriteRecords releases the records; spilled rows are read again from
	// their local file on every call.
	var files []iceberg.DataFile
	var opts []table.WriteRecordOption
	if p.Spilled != nil {
		// Within the budget: a row group is buffered whole before it is
		// flushed, and every batch queued for the writer is held.
		opts = append(opts, table.WithParquetRowGroupLimit(p.Spilled.RowGroupRows), table.WithRecordBatchBufferSize(2))
	}
	for df, err := range table.WriteRecords(ctx, w.tbl, schema, p.Records(ctx, schema), opts...) {
		if err != nil {
			return nil, time.Time{}, err
		}
		files = append(files, df)
	}
	if w.opts.Fault != nil {
		if err := w.opts.Fault(snapshots.PointDataWritten); errors.Is(err, snapshots.ErrFaultLoseFiles) {
			files = nil
		} else if err != nil {
			return nil, time.Time{}, err
		}
	}
	if got, want := snapshots.RecordCount(files), p.Rows(); got != want {
		return nil, time.Time{}, fmt.Errorf("%w: %d data files with %d rows, %d rows computed (storage full?); nothing was committed",
			ErrWrittenFiles, len(files), got, want)
	}
	df, err := snapshots.NewDataFiles(ctx, w.tbl.Location(), w.opts.S3)
	if err != nil {
		return nil, time.Time{}, err
	}
	problems, written, err := df.Check(ctx, files)
	if err != nil {
		return nil, time.Time{}, err
	}
	for _, pr := range problems {
		if pr.Missing {
			return nil, time.Time{}, fmt.Errorf("%w (%w): %s; nothing was committed", ErrWrittenFiles, errFilesGone, pr)
		}
	}
	if len(problems) > 0 {
		return nil, time.Time{}, fmt.Errorf("%w: %s; nothing was committed", ErrWrittenFiles, problems[0])
	}
	return files, written, nil
}

// writeRejects keeps the partition's rejected rows beside the table:
// <table location>/_icefill/rejects/<branch>/dt=<day>/<run>.parquet.
func (w *worker) writeRejects(ctx context.Context, p *Partition) error {
	st, err := objstore.Open(ctx, strings.TrimSuffix(w.tbl.Location(), "/")+"/_icefill/rejects/"+w.opts.Branch, w.opts.S3)
	if err != nil {
		return err
	}
	return p.WriteRejects(ctx, st, source.DayDir(p.Date)+"/"+w.opts.RunID+".parquet")
}

func (w *worker) recordFailure(ctx context.Context, day features.Date, cause error) {
	msg := cause.Error()
	if len(msg) > 500 {
		msg = msg[:500] + "…"
	}
	err := w.committer.UpdateState(ctx, func(s *snapshots.State) error {
		s.Failures[day.String()] = snapshots.Failure{RunID: w.opts.RunID, Error: msg, At: time.Now().UnixMilli(), Logic: w.opts.Logic.Version()}
		return nil
	})
	if err != nil {
		w.log.Warn("could not record the failure in the catalog", "partition", day, "err", err)
	}
	if w.opts.Progress != nil {
		w.opts.Progress.Failed(day, cause)
	}
}

// sourceFilesSummary lists the day's files compactly for the snapshot
// summary: name, size and ETag or modification time, at most ~4 KB.
func sourceFilesSummary(files []objstore.Object) string {
	type f struct {
		Name string `json:"n"`
		Size int64  `json:"s"`
		Ver  string `json:"v"`
	}
	var out []f
	total := 0
	for i, o := range files {
		v := o.ETag
		if v == "" {
			v = o.ModTime.UTC().Format(time.RFC3339Nano)
		}
		total += len(o.Path) + len(v) + 24
		if total > 4000 {
			out = append(out, f{Name: fmt.Sprintf("… %d more", len(files)-i)})
			break
		}
		out = append(out, f{Name: o.Path, Size: o.Size, Ver: v})
	}
	b, _ := json.Marshal(out)
	return string(b)
}
