package main

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/source"
)

// scratchCatalog opens an embedded catalog in a fresh folder under dir.
func scratchCatalog(ctx context.Context, dir string) (*catalog.Catalog, func(), error) {
	tmp, err := os.MkdirTemp(dir, "catalog-")
	if err != nil {
		return nil, nil, err
	}
	cfg := catalog.DefaultConfig()
	cfg.SQLitePath, cfg.Warehouse = filepath.Join(tmp, "catalog.db"), filepath.Join(tmp, "warehouse")
	cat, err := catalog.Open(ctx, cfg)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, nil, err
	}
	return cat, func() { cat.Close(); os.RemoveAll(tmp) }, nil
}

// benchRunPass runs a whole backfill of the partitions onto a fresh
// embedded catalog: read, compute, write data files, commit.
func benchRunPass(ctx context.Context, src *source.Source, dir string, partitions []features.Date, logic features.Logic, opts rewrite.InputOptions) (benchResult, error) {
	workers := opts.Workers
	cat, done, err := scratchCatalog(ctx, dir)
	if err != nil {
		opts.SpillDir.Close()
		return benchResult{}, err
	}
	defer done()
	in, err := rewrite.NewInputs(ctx, src, opts)
	if err != nil {
		opts.SpillDir.Close()
		return benchResult{}, err
	}
	defer in.Close()
	start, cpu0 := time.Now(), cpuTime()
	res, err := rewrite.Run(ctx, cat, in, rewrite.RunOptions{Branch: "bench", Logic: logic, Days: partitions, Workers: workers,
		RejectLimit: features.DefaultRejectLimit, CompactAbove: 32, CompactEvery: 8})
	if err != nil {
		return benchResult{}, err
	}
	wall, cpu := time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds()
	cores := min(workers, maxProcs())
	return benchResult{Events: res.Events, WallSeconds: wall, CPUSeconds: cpu, EventsPerSec: float64(res.Events) / wall,
		PerCore: float64(res.Events) / wall / float64(cores), PerCPUSecond: float64(res.Events) / cpu, OutputRows: res.OutputRows,
		PeakRSSBytes: peakRSS(), Cores: cores, Workers: workers, Partitions: len(partitions), Logic: string(logic)}, nil
}

// benchCommits commits n one-row partitions to one branch, compacting
// manifests as run does, and reports the commit latency around the 1st,
// 100th and 1,000th commit (median of the 10 commits around each).
func benchCommits(c *cli.Context, n int) error {
	ctx := c.Context
	if err := os.MkdirAll(c.String("dir"), 0o755); err != nil {
		return err
	}
	cat, done, err := scratchCatalog(ctx, c.String("dir"))
	if err != nil {
		return err
	}
	defer done()
	tbl, _, err := cat.EnsureTable(ctx)
	if err != nil {
		return err
	}
	committer := &snapshots.Committer{Catalog: cat.Iceberg(), Ident: cat.Ident(), Branch: "bench"}
	base := features.MustParseDate("2020-01-01")
	lat := make([]time.Duration, 0, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		day := base + features.Date(i)
		out := &features.Output{Date: day, Logic: features.Legacy, CustomerID: []features.CustomerID{features.CustomerFromV1(int64(i))},
			Channel: []string{"email"}, Orders: []int64{1}, Gross: []int64{100}, Refund: []int64{0}, Net: []int64{100},
			Country: []string{""}, CountryOK: []bool{false}}
		rec := out.Record(memory.DefaultAllocator, features.LegacySchema)
		var files []iceberg.DataFile
		for df, err := range table.WriteRecords(ctx, tbl, features.LegacySchema, iter.Seq2[arrow.RecordBatch, error](func(y func(arrow.RecordBatch, error) bool) { y(rec, nil) })) {
			if err != nil {
				return err
			}
			files = append(files, df)
		}
		res, err := committer.Commit(ctx, snapshots.PartitionCommit{Day: iceberg.Date(day), DayText: day.String(), Files: files,
			Checkpoint: snapshots.Checkpoint{Logic: "bench", Fingerprint: fmt.Sprint(i), Attempt: fmt.Sprint(i), CommittedAt: time.Now().UnixMilli()}})
		if err != nil {
			return err
		}
		lat = append(lat, res.Latency)
		if (i+1)%8 == 0 {
			if _, err := committer.CompactManifests(ctx, 32); err != nil {
				return err
			}
		}
	}
	at := func(k int) time.Duration {
		lo, hi := max(k-5, 0), min(k+5, len(lat))
		w := slices.Clone(lat[lo:hi])
		slices.Sort(w)
		return w[len(w)/2]
	}
	fmt.Fprintf(c.App.Writer, "commits n=%d total=%.1fs latency_ms: commit_1=%.1f commit_100=%.1f commit_1000=%.1f last=%.1f (median of the 10 around each; manifests compacted above 32)\n",
		n, time.Since(start).Seconds(), ms(lat[0]), ms(at(min(99, n-1))), ms(at(min(999, n-1))), ms(at(n-1)))
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
