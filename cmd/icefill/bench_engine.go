package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/rewrite"
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
