package rewrite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/source"
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
}

// InputOptions configure Inputs.
type InputOptions struct {
	// AllowMissing treats missing days as empty instead of failing.
	AllowMissing bool
	// Workers is how many partitions run at once; it sizes the day cache.
	Workers int
	Read    source.ReadOptions
}

// NewInputs lists the source once and prepares to read it.
func NewInputs(ctx context.Context, src *source.Source, opts InputOptions) (*Inputs, error) {
	avail, err := src.Availability(ctx)
	if err != nil {
		return nil, err
	}
	workers := max(opts.Workers, 1)
	return &Inputs{ctx: ctx, src: src, avail: avail, allowMissing: opts.AllowMissing, readOpts: opts.Read,
		cache: newDayCache(features.LookbackDays + workers + 1)}, nil
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
	return in.cache.get(ctx, d, func(context.Context) (*features.Day, error) {
		return in.src.ReadFiles(in.ctx, d, files, in.readOpts)
	})
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
	fp, own, err := in.InputFingerprint(ctx, d, logic)
	if err != nil {
		return nil, err
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
	p.InputRows, p.Rejected = main.RowsRead, main.RejectedCount()
	if err := features.CheckRejects(main, rejectLimit); err != nil {
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
