package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/pqfile"
	"github.com/icefill/icefill/internal/synth"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/source"
	"github.com/icefill/icefill/spill"
)

// benchResult is one measured pass over the benchmark days.
type benchResult struct {
	Events       int64   `json:"events"`
	WallSeconds  float64 `json:"wall_seconds"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	EventsPerSec float64 `json:"events_per_sec"`
	PerCore      float64 `json:"events_per_sec_per_core"`
	PerCPUSecond float64 `json:"events_per_cpu_second"`
	OutputRows   int64   `json:"output_rows"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	Cores        int     `json:"cores"`
	Workers      int     `json:"workers"`
	Partitions   int     `json:"partitions"`
	Logic        string  `json:"logic"`
	Repetition   int     `json:"repetition"`
	MemoryLimit  int64   `json:"memory_limit_bytes"`
	Spilled      int64   `json:"spilled_partitions"`
	SpillBytes   int64   `json:"spill_bytes_written"`
}

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "measure compute throughput (read Parquet → logic → write Parquet) on generated data",
		Description: `Generates --days days of --events-per-day events with gen-events (once; reused
from --dir), then computes every day as a partition --repeat times and prints, per pass
and as the median: events per second per core, events per CPU-second and the process's
peak resident memory. Run one logic per process so peak memory is its own.

Example:
   icefill bench --days 10 --events-per-day 1000000 --logic corrected

` + exitCodesHelp,
		Flags: append([]cli.Flag{
			&cli.IntFlag{Name: "days", Value: 10, Usage: "number of partitions to compute"},
			&cli.IntFlag{Name: "events-per-day", Value: 1_000_000, Usage: "average events per generated day"},
			&cli.StringFlag{Name: "dir", Value: ".cache/bench", Usage: "where generated data and outputs live"},
			logicFlag(),
			&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "partitions computed at once"},
			&cli.IntFlag{Name: "repeat", Value: 3, Usage: "measured passes; the median is reported"},
			&cli.StringFlag{Name: "cpuprofile", Usage: "write a pprof CPU profile of the measured passes"},
			&cli.BoolFlag{Name: "json", Usage: "print results as JSON lines"},
			&cli.StringFlag{Name: "mode", Value: "compute", Usage: "compute (read → logic → write Parquet), run (the whole backfill into a fresh embedded catalog, commits included) commits (commit latency as a branch grows) or contention (worker processes committing to one branch while a nightly writer commits to main)"},
			&cli.IntFlag{Name: "commits", Value: 1825, Usage: "commits mode: how many one-row partitions to commit"},
			memoryFlags()[0], memoryFlags()[1],
			&cli.BoolFlag{Name: "generate-only", Usage: "generate the data and stop (so a measured process's peak memory is its own)"},
		}, append(benchCatalogFlags(), contentionFlags()...)...),
		Action: func(c *cli.Context) error {
			if _, err := workersFlag(c); err != nil {
				return err
			}
			logic, err := parseLogic(c)
			if err != nil {
				return err
			}
			if prof := c.String("cpuprofile"); prof != "" && c.String("mode") == "commits" {
				f, err := os.Create(prof)
				if err != nil {
					return err
				}
				defer f.Close()
				pprof.StartCPUProfile(f)
				defer pprof.StopCPUProfile()
			}
			switch c.String("mode") {
			case "compute", "run":
				return runBench(c, logic)
			case "commits":
				return benchCommits(c, c.Int("commits"))
			case "contention":
				return benchContention(c)
			}
			return errkind.Usagef("--mode %q: want compute, run, commits or contention", c.String("mode"))
		},
	}
}

func runBench(c *cli.Context, logic features.Logic) error {
	ctx := c.Context
	days, perDay := c.Int("days"), c.Int("events-per-day")
	if days < 1 || perDay < 1 {
		return errkind.Usagef("--days and --events-per-day must be positive")
	}
	// Generate LookbackDays extra days before the measured ones so every
	// measured partition has a full lookback, as in a real backfill.
	from := features.MustParseDate("2024-01-01")
	genFrom, to := from, from.AddDays(features.LookbackDays+days-1)
	dataDir := filepath.Join(c.String("dir"), fmt.Sprintf("events-%dx%d", days+features.LookbackDays, perDay))
	if err := ensureBenchData(ctx, c, dataDir, synth.Config{From: genFrom, To: to, EventsPerDay: perDay, Seed: 1, V2From: from.AddDays(features.LookbackDays + days/2)}); err != nil {
		return err
	}
	if c.Bool("generate-only") {
		return nil
	}
	src, err := source.Open(ctx, dataDir, objstore.S3Options{})
	if err != nil {
		return err
	}
	outStore, err := objstore.NewLocal(filepath.Join(c.String("dir"), "out"))
	if err != nil {
		return err
	}
	partitions := features.DaysBetween(from.AddDays(features.LookbackDays), to)
	slices.Reverse(partitions) // newest first, as run does by default
	if prof := c.String("cpuprofile"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var results []benchResult
	for rep := 1; rep <= c.Int("repeat"); rep++ {
		var r benchResult
		opts := rewrite.InputOptions{Workers: c.Int("workers")}
		if err := memoryOptions(c, &opts); err != nil {
			return err
		}
		spilled0, bytes0 := spill.Partitions.Load(), spill.BytesWritten.Load()
		if c.String("mode") == "run" {
			r, err = benchRunPass(ctx, src, c.String("dir"), partitions, logic, opts)
		} else {
			r, err = benchPass(ctx, src, outStore, partitions, logic, opts)
		}
		if err != nil {
			return err
		}
		r.MemoryLimit = opts.MemoryLimit
		r.Spilled, r.SpillBytes = spill.Partitions.Load()-spilled0, spill.BytesWritten.Load()-bytes0
		r.Repetition = rep
		results = append(results, r)
		printBench(c, "pass", r)
	}
	med := slices.Clone(results)
	slices.SortFunc(med, func(a, b benchResult) int {
		switch {
		case a.PerCore < b.PerCore:
			return -1
		case a.PerCore > b.PerCore:
			return 1
		}
		return 0
	})
	m := med[len(med)/2]
	m.Repetition = 0
	printBench(c, "median", m)
	return nil
}

func ensureBenchData(ctx context.Context, c *cli.Context, dir string, cfg synth.Config) error {
	marker := filepath.Join(dir, ".complete")
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	os.RemoveAll(dir)
	st, err := objstore.NewLocal(dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "generating benchmark data in %s (once)…\n", dir)
	if _, err := synth.Generate(ctx, st, cfg, nil); err != nil {
		return fmt.Errorf("generate benchmark data: %w", err)
	}
	return os.WriteFile(marker, nil, 0o644)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func peakRSS() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Maxrss * 1024 // kilobytes on Linux
}

// benchPass computes every partition once with a fresh day cache, writing
// each partition's rows to Parquet as a real run would before committing.
func benchPass(ctx context.Context, src *source.Source, out objstore.Store, partitions []features.Date, logic features.Logic, opts rewrite.InputOptions) (benchResult, error) {
	runtime.GC()
	workers := opts.Workers
	in, err := rewrite.NewInputs(ctx, src, opts)
	if err != nil {
		opts.SpillDir.Close()
		return benchResult{}, err
	}
	defer in.Close()
	schema := features.FullSchema
	if logic == features.Legacy {
		schema = features.LegacySchema
	}
	start, cpu0 := time.Now(), cpuTime()
	in.ReadAhead(ctx, partitions, logic) // reads the footers, as Compute would
	var mu sync.Mutex
	var firstErr error
	var events, rows int64
	next := make(chan features.Date)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				p, err := in.Compute(ctx, d, logic, features.DefaultRejectLimit)
				if err == nil {
					err = pqfile.WriteSeq(ctx, out, d.String()+".parquet", schema, p.Records(ctx, schema))
				}
				p.Release() // a failed Compute may return its spill files too
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if p != nil {
					events += p.InputRows
					rows += p.Rows()
				}
				mu.Unlock()
			}
		}()
	}
	for _, d := range partitions {
		next <- d
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return benchResult{}, firstErr
	}
	wall, cpu := time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds()
	cores := min(workers, maxProcs())
	return benchResult{
		Events: events, WallSeconds: wall, CPUSeconds: cpu,
		EventsPerSec: float64(events) / wall, PerCore: float64(events) / wall / float64(cores),
		PerCPUSecond: float64(events) / cpu, OutputRows: rows, PeakRSSBytes: peakRSS(),
		Cores: cores, Workers: workers, Partitions: len(partitions), Logic: string(logic),
	}, nil
}

func maxProcs() int { return runtime.GOMAXPROCS(0) }

func printBench(c *cli.Context, label string, r benchResult) {
	if c.Bool("json") {
		b, _ := json.Marshal(struct {
			Label string `json:"label"`
			benchResult
		}{label, r})
		fmt.Fprintln(c.App.Writer, string(b))
		return
	}
	fmt.Fprintf(c.App.Writer, "%-6s mode=%s logic=%-9s partitions=%d events=%d wall=%.2fs cpu=%.2fs events/s=%.0f events/s/core=%.0f events/cpu-s=%.0f peak_rss=%.0fMiB memory_limit=%.0fMiB spilled=%d spill_bytes=%.0fMiB\n",
		label, c.String("mode"), r.Logic, r.Partitions, r.Events, r.WallSeconds, r.CPUSeconds, r.EventsPerSec, r.PerCore, r.PerCPUSecond, float64(r.PeakRSSBytes)/(1<<20),
		float64(r.MemoryLimit)/(1<<20), r.Spilled, float64(r.SpillBytes)/(1<<20))
}
