package rewrite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"golang.org/x/sync/errgroup"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/source"
	"github.com/icefill/icefill/spill"
)

// Inputs reads source days for partitions, decoding each day once and
// sharing it between the partitions that need it.
type Inputs struct {
	// ctx is the job's context: a day decode shared by several partitions
	// runs under it, not under the partition that happened to start it, so
	// one partition's failure cannot cancel its neighbours' input.
	ctx          context.Context
	src          *source.Source
	avail        *source.Availability
	allowMissing bool
	readOpts     source.ReadOptions
	cache        *dayCache
	workers      int
	// ahead, when set (ReadAhead), picks days to decode while waiting;
	// spillWaiting counts the partitions waiting to run on the external
	// path (no day is read ahead meanwhile).
	ahead        *readAhead
	spillWaiting atomic.Int32

	// budget is the memory budget; spill computes the partitions whose
	// window does not fit it (nil: everything in memory).
	budget   *spill.Budget
	spill    *spill.Engine
	spillDir *spill.Dir
	// paths keeps the two paths apart: in-memory partitions share it,
	// an external-path partition holds it alone, so the budget it sizes
	// its buckets by is not taken by decoded days.
	paths  sync.RWMutex
	rowsMu sync.Mutex
	rows   map[features.Date]int64
	log    *slog.Logger
}

// InputOptions configure Inputs.
type InputOptions struct {
	// AllowMissing treats missing days as empty instead of failing.
	AllowMissing bool
	// Log hears, at debug level, of each day decoded (nil: slog.Default()).
	Log *slog.Logger
	// Workers is how many partitions run at once; it sizes the day cache.
	Workers int
	Read    source.ReadOptions
	// MemoryLimit is the process's memory budget in bytes: a partition
	// whose window does not fit it runs on the external path, spilling
	// to SpillDir. 0 computes everything in memory.
	MemoryLimit int64
	// SpillBuckets, when positive, sends every partition to the external
	// path cut into that many buckets (tests).
	SpillBuckets int
	// SpillEventBytes, when positive, is what the external path counts
	// for one event of a bucket (tests: a customer too heavy for the
	// budget without millions of events).
	SpillEventBytes int64
	// SpillDir is where the external path spills; Inputs.Close removes it.
	SpillDir *spill.Dir
}

// NewInputs lists the source once and prepares to read it.
func NewInputs(ctx context.Context, src *source.Source, opts InputOptions) (*Inputs, error) {
	avail, err := src.Availability(ctx)
	if err != nil {
		return nil, err
	}
	workers := max(opts.Workers, 1)
	in := &Inputs{ctx: ctx, src: src, avail: avail, allowMissing: opts.AllowMissing, readOpts: opts.Read,
		cache: newDayCache(features.LookbackDays + workers + 1), workers: workers, rows: map[features.Date]int64{}, log: opts.Log}
	if in.log == nil {
		in.log = slog.Default()
	}
	if opts.MemoryLimit > 0 {
		features.SetMaxIdleScratch(int(min(128<<20, opts.MemoryLimit/16)))
		in.budget = &spill.Budget{Limit: opts.MemoryLimit, ForceBuckets: opts.SpillBuckets, Workers: workers, EventBytes: opts.SpillEventBytes}
		if opts.SpillDir != nil {
			in.spillDir = opts.SpillDir
			in.spill = spill.NewEngine(opts.SpillDir, *in.budget, in.streamDay)
		}
	}
	return in, nil
}

// Close removes the spill files of the external path and the spill folder.
func (in *Inputs) Close() {
	if in.spill != nil {
		in.spill.Close()
	}
	if in.spillDir != nil {
		in.spillDir.Close()
	}
}

// streamDay streams day d to sink for the external path.
func (in *Inputs) streamDay(ctx context.Context, d features.Date, sink func(*features.Event), reject func(features.Reject)) (*features.Day, error) {
	files := in.avail.Files(d)
	if files == nil {
		return nil, nil
	}
	return in.src.StreamFiles(ctx, d, files, in.readOpts, sink, reject)
}

// dayRows is day d's row count from its Parquet footers (0: empty).
func (in *Inputs) dayRows(ctx context.Context, d features.Date) (int64, error) {
	in.rowsMu.Lock()
	n, ok := in.rows[d]
	in.rowsMu.Unlock()
	if ok {
		return n, nil
	}
	files := in.avail.Files(d)
	if files == nil {
		return 0, nil
	}
	n, err := in.src.Rows(ctx, files)
	if err != nil {
		return 0, err
	}
	in.rowsMu.Lock()
	in.rows[d] = n
	in.rowsMu.Unlock()
	return n, nil
}

// Estimate is the size of a partition's window and how it will run.
type Estimate struct {
	// WindowRows is the rows of the partition day and its lookback,
	// from the Parquet footers; MaxDayRows the largest day among them.
	WindowRows, MaxDayRows int64
	// Spill is true when the window does not fit the memory budget.
	Spill bool
	// Buckets is how many buckets the external path cuts it into.
	Buckets int
	// TooLarge says why the budget cannot compute the window at all (the
	// partition will fail before anything is committed); nil when it can.
	TooLarge error
}

// Mode is "memory", "spill" or "too-large".
func (e Estimate) Mode() string {
	switch {
	case e.TooLarge != nil:
		return "too-large"
	case e.Spill:
		return "spill"
	}
	return "memory"
}

// Estimate sizes partition d's window from the source footers and says
// whether it runs in memory under the budget.
func (in *Inputs) Estimate(ctx context.Context, d features.Date, logic features.Logic) (Estimate, error) {
	var est Estimate
	for _, day := range append([]features.Date{d}, features.LookbackOf(d, logic)...) {
		n, err := in.dayRows(ctx, day)
		if err != nil {
			return est, err
		}
		est.WindowRows += n
		est.MaxDayRows = max(est.MaxDayRows, n)
	}
	if in.budget != nil && !in.budget.FitsInMemory(in.cacheDays(), est.MaxDayRows) {
		est.Spill = true
		est.Buckets = in.budget.Buckets(est.WindowRows)
		est.TooLarge = in.budget.CheckWindow(est.WindowRows)
	}
	return est, nil
}

// CheckMissing fails with a MissingDaysError unless every input day of the
// partitions exists (or missing days were allowed).
func (in *Inputs) CheckMissing(partitions []features.Date, logic features.Logic) (mp, ml []features.Date, err error) {
	mp, ml = in.avail.Missing(partitions, logic)
	if (len(mp) > 0 || len(ml) > 0) && !in.allowMissing {
		return mp, ml, &source.MissingDaysError{Source: in.src.Location, Partitions: mp, Lookback: ml}
	}
	return mp, ml, nil
}

// day returns decoded day d, or nil when it counts as empty.
func (in *Inputs) day(ctx context.Context, d features.Date) (*features.Day, error) {
	files := in.avail.Files(d)
	if files == nil {
		return nil, nil
	}
	var help func() bool
	if in.ahead != nil {
		help = in.helpLoad
	}
	return in.cache.get(ctx, d, in.loader(d, files, false), help)
}

// loader decodes day d from its files, under the job's context: a decode
// shared by several partitions must not fail with the one that started it.
func (in *Inputs) loader(d features.Date, files []objstore.Object, ahead bool) func(context.Context) (*features.Day, error) {
	return func(context.Context) (*features.Day, error) {
		start := time.Now()
		day, err := in.src.ReadFiles(in.ctx, d, files, in.readOpts)
		if err == nil {
			// With the partitions' phases (run.go), this shows when workers
			// wait for a day another one decodes.
			in.log.Debug("decoded source day", "day", d.String(), "files", len(files), "events", day.Len(), "ahead", ahead, "took", time.Since(start).Round(time.Millisecond))
		}
		return day, err
	}
}

// Partition is one computed partition, ready to write.
type Partition struct {
	Date   features.Date
	Logic  features.Logic
	Output *features.Output
	// Day is the decoded partition day (nil when it counted as empty).
	Day *features.Day
	// Fingerprint covers every file of every day read (the partition day
	// and, for the corrected logic, its lookback).
	Fingerprint string
	// Files are the partition day's own files.
	Files     []objstore.Object
	InputRows int64
	Rejected  int64
	// Spilled holds the rows instead of Output when the external path
	// computed the partition (see Records), and SpilledRejects the
	// partition day's rejected rows instead of Day.Rejects.
	Spilled        *spill.Rows
	SpilledRejects *spill.Rejects
}

// RejectReasons counts the partition day's rejected rows per reason.
func (p *Partition) RejectReasons() []source.ReasonCount {
	if p.SpilledRejects != nil {
		return source.SortedCounts(p.SpilledRejects.Counts)
	}
	if p.Day == nil {
		return nil
	}
	return source.RejectCounts(p.Day.Rejects)
}

// WriteRejects stores the partition day's rejected rows as Parquet at
// path in st (nothing is written for none).
func (p *Partition) WriteRejects(ctx context.Context, st objstore.Store, path string) error {
	switch {
	case p.SpilledRejects != nil && p.SpilledRejects.N > 0:
		return source.WriteRejects(ctx, st, path, p.SpilledRejects.Records(ctx))
	case p.Day != nil && len(p.Day.Rejects) > 0:
		return source.WriteRejects(ctx, st, path, source.RejectRecords(p.Day.Rejects))
	}
	return nil
}

// Rows is the number of output rows.
func (p *Partition) Rows() int64 {
	if p.Spilled != nil {
		return p.Spilled.N
	}
	if p.Output == nil {
		return 0
	}
	return int64(p.Output.Len())
}

// Totals sums the output's additive columns.
func (p *Partition) Totals() features.Totals {
	if p.Spilled != nil {
		return p.Spilled.Totals
	}
	return p.Output.Totals()
}

// Records yields the output rows as records of schema, in output order;
// the consumer releases each. Spilled rows come one row group at a time.
func (p *Partition) Records(ctx context.Context, schema *arrow.Schema) iter.Seq2[arrow.RecordBatch, error] {
	if p.Spilled != nil {
		return p.Spilled.Records(ctx, schema)
	}
	return func(yield func(arrow.RecordBatch, error) bool) {
		if p.Output != nil && p.Output.Len() > 0 {
			yield(p.Output.Record(memory.DefaultAllocator, schema), nil)
		}
	}
}

// Release removes the partition's spilled rows and rejects, once written.
func (p *Partition) Release() {
	if p != nil {
		p.Spilled.Close()
		p.SpilledRejects.Close()
	}
}

// InputFingerprint is the fingerprint of partition d's inputs under logic,
// without reading any data: it decides whether a checkpoint is current.
func (in *Inputs) InputFingerprint(ctx context.Context, d features.Date, logic features.Logic) (string, []objstore.Object, error) {
	h := sha256.New()
	var own []objstore.Object
	for _, day := range append([]features.Date{d}, features.LookbackOf(d, logic)...) {
		files := in.avail.Files(day)
		if day == d {
			own = files
		}
		io.WriteString(h, day.String()+"="+source.Fingerprint(files)+";")
	}
	return hex.EncodeToString(h.Sum(nil))[:32], own, nil
}

// Compute reads partition d's input days (in parallel) and runs logic.
// A partition whose rejected share exceeds rejectLimit fails.
func (in *Inputs) Compute(ctx context.Context, d features.Date, logic features.Logic, rejectLimit float64) (*Partition, error) {
	in.claim(d, logic)
	fp, own, err := in.InputFingerprint(ctx, d, logic)
	if err != nil {
		return nil, err
	}
	if in.budget != nil {
		est, err := in.Estimate(ctx, d, logic)
		if err != nil {
			return nil, err
		}
		if est.Spill {
			in.spillWaiting.Add(1)
			in.paths.Lock()
			in.spillWaiting.Add(-1)
			defer in.paths.Unlock()
			return in.computeSpilled(ctx, d, logic, rejectLimit, est, fp, own)
		}
		in.paths.RLock()
		defer in.paths.RUnlock()
	}
	need := append([]features.Date{d}, features.LookbackOf(d, logic)...)
	days := make([]*features.Day, len(need))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i, day := range need {
		g.Go(func() error {
			var err error
			days[i], err = in.day(gctx, day)
			if err != nil && day != d {
				return fmt.Errorf("lookback day %s of partition %s: %w", day, d, err)
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	p := &Partition{Date: d, Logic: logic, Day: days[0], Fingerprint: fp, Files: own}
	main := days[0]
	if main == nil {
		// The day counts as empty (allowed missing): an empty partition,
		// which still replaces whatever rows it had.
		main = features.NewDayBuilder(d, 0).Finish()
	}
	if err := p.checkRejects(main, rejectLimit); err != nil {
		return p, err
	}
	switch logic {
	case features.Legacy:
		p.Output = features.ComputeLegacy(main)
	case features.Corrected:
		p.Output, err = features.ComputeCorrected(main, days[1:])
		if err != nil {
			return p, err
		}
	default:
		return nil, fmt.Errorf("unknown logic %q", logic)
	}
	return p, nil
}

func (p *Partition) checkRejects(main *features.Day, rejectLimit float64) error {
	p.InputRows, p.Rejected = main.RowsRead, main.RejectedCount()
	return features.CheckRejects(main, rejectLimit)
}

// computeSpilled computes partition d on the external path: the same
// kernel, bucket by bucket, the window's events spilled to local disk.
func (in *Inputs) computeSpilled(ctx context.Context, d features.Date, logic features.Logic, rejectLimit float64, est Estimate, fp string, own []objstore.Object) (*Partition, error) {
	if in.spill == nil {
		return nil, fmt.Errorf("partition %s needs the external path (window of %d rows) but no spill folder was set", d, est.WindowRows)
	}
	if logic != features.Legacy && logic != features.Corrected {
		return nil, fmt.Errorf("unknown logic %q", logic)
	}
	// Decoded days kept for in-memory partitions would count against the
	// budget the external path sizes its buckets by.
	in.cache.purge()
	res, err := in.spill.Compute(ctx, d, features.LookbackOf(d, logic), logic, est.WindowRows)
	if err != nil {
		return nil, err
	}
	p := &Partition{Date: d, Logic: logic, Day: res.Day, Fingerprint: fp, Files: own, SpilledRejects: res.Rejects}
	main := res.Day
	if main == nil {
		main = features.NewDayBuilder(d, 0).Finish()
	}
	if err := p.checkRejects(main, rejectLimit); err != nil {
		res.Rows.Close()
		return p, err
	}
	p.Spilled = res.Rows
	return p, nil
}
