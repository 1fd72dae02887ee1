package main

import (
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/urfave/cli/v2"

	icecat "github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

func runCommand() *cli.Command {
	flags := append(append(append(sourceFlags(), rangeFlags()...), catalogFlags()...),
		branchFlag(true),
		&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "partitions computed at once in this process", EnvVars: []string{"ICEFILL_WORKERS"}},
		&cli.StringFlag{Name: "max-read-rate", Usage: "cap on source reads of this process, e.g. 200MiB/s (default: unlimited)", EnvVars: []string{"ICEFILL_MAX_READ_RATE"}},
		&cli.StringFlag{Name: "pause-window", Usage: "HH:MM-HH:MM (UTC): no new partition starts inside it, running ones finish", EnvVars: []string{"ICEFILL_PAUSE_WINDOW"}},
		&cli.StringFlag{Name: "run-id", Usage: "name this run in checkpoints (default: a timestamp)"},
		memoryFlags()[0], memoryFlags()[1],
		&cli.BoolFlag{Name: "catch-up", Usage: "instead of --from/--to: recompute exactly the partitions main changed since the branch forked that the branch has not recomputed since (what promote asks for)"},
		&cli.BoolFlag{Name: "verify", Usage: "first check that every checkpoint in range has its data files on storage with their committed sizes and rows; recompute those that do not"},
		&cli.BoolFlag{Name: "allow-mixed-logic", Usage: "let this run's --logic differ from the logic of the branch's checkpoints (refused otherwise, exit 4): days outside the range keep their logic"},
		&cli.DurationFlag{Name: "gc-min-age", Value: rewrite.DefaultGCMinAge, Usage: "at start, delete unreferenced data files older than this (storage time); gc fences the table, so a live writer whose files it deletes writes them again"},
		writeMainFlag(),
	)
	return &cli.Command{
		Name:      "run",
		Usage:     "recompute partitions onto a branch, one checkpointed commit per partition; re-run to resume",
		UsageText: "icefill run --source DIR|s3://… --from YYYY-MM-DD --to YYYY-MM-DD --branch NAME [--logic corrected|legacy] [--workers N]",
		Description: `Creates the table (and the branch, from main's current snapshot) if needed, then for every
partition of --from … --to that is not already committed on the branch with the same logic
and the same input files: reads the source day (and its 7-day lookback), computes the rows,
writes them as data files and commits them as one atomic overwrite of exactly that
partition on the branch. The commit records a checkpoint; after any failure or kill, run
the same command again and it continues where it stopped. Readers of main see nothing
until you promote.

Several processes may run on one branch at once (split with --shard). A failed partition
does not stop the others: the run ends with exit code 1 and the list, and the next run
retries them. Missing source days stop the run before anything is written.

Examples:
   icefill run --source s3://raw/events --from 2021-01-01 --to 2025-12-31 --branch clv-fix
   icefill run --source ./events --from 2024-01-01 --to 2024-03-31 --branch clv-fix --workers 2 --pause-window 01:00-05:00

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			if err := guardWriteMain(c); err != nil {
				return err
			}
			if err := snapshots.CheckRunID(c.String("run-id")); err != nil {
				return err
			}
			var r rangeArgs
			var err error
			if c.Bool("catch-up") {
				r, err = catchUpRange(c)
			} else {
				r, err = parseRange(c)
			}
			if err != nil || (c.Bool("catch-up") && len(r.days) == 0) {
				return err
			}
			pause, err := rewrite.ParsePauseWindow(c.String("pause-window"))
			if err != nil {
				return withCode(exitUsage, err)
			}
			fault, err := faultFromEnv()
			if err != nil {
				return withCode(exitUsage, err)
			}
			workers := max(c.Int("workers"), 1)
			in, err := openInputs(c, workers)
			if err != nil {
				return err
			}
			defer in.Close()
			cat, err := openCatalog(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			runID := c.String("run-id")
			if runID == "" {
				runID = rewrite.NewRunID()
			}
			finishMain, err := beginWriteMain(c, cat, runID)
			if err != nil {
				return err
			}
			defer finishMain()
			prog := newProgress(c.App.ErrWriter, logger())
			res, err := rewrite.Run(c.Context, cat, in, rewrite.RunOptions{
				Branch: c.String("branch"), Logic: r.logic, Days: r.days, Order: r.order, Workers: workers,
				Force: c.Bool("force") || c.Bool("catch-up"), RejectLimit: c.Float64("max-reject-rate"), PauseWindow: pause,
				RunID: runID, Shard: r.shard, Shards: r.shards, GCMinAge: gcMinAge(c.Duration("gc-min-age")),
				CompactAbove: 32, CompactEvery: 8, S3: s3Options(c), Fault: fault, Progress: prog,
				SourceName: c.String("source"), Log: logger(), AllowMixedLogic: c.Bool("allow-mixed-logic"), Verify: c.Bool("verify"),
			})
			prog.finish()
			printRunResult(c, cat, res)
			return classifyRunErr(err)
		},
	}
}

// catchUpRange asks the catalog which days promote would refuse for.
func catchUpRange(c *cli.Context) (rangeArgs, error) {
	var r rangeArgs
	logic, err := parseLogic(c)
	if err != nil {
		return r, err
	}
	r.logic, r.order = logic, rewrite.NewestFirst
	cat, tbl, err := openTable(c)
	if err != nil {
		return r, err
	}
	defer cat.Close()
	state, err := snapshots.LoadState(tbl, c.String("branch"))
	if err != nil {
		return r, err
	}
	days, err := snapshots.UncoveredDays(c.Context, tbl, c.String("branch"), state)
	if err != nil {
		return r, withCode(exitUnavailable, err)
	}
	for _, d := range days {
		day, err := features.ParseDate(d)
		if err != nil {
			return r, err
		}
		r.days = append(r.days, day)
	}
	if len(r.days) == 0 {
		fmt.Fprintf(c.App.Writer, "nothing to catch up: branch %s covers every partition main changed since it forked\n", c.String("branch"))
	} else {
		fmt.Fprintf(c.App.Writer, "catching up %d partition(s) main changed since the fork: %s\n", len(days), strings.Join(days, ", "))
	}
	return r, nil
}

// gcMinAge maps an explicit --gc-min-age 0s to "immediately" (the engine
// reads zero as its safe default).
func gcMinAge(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Nanosecond
	}
	return d
}

func classifyRunErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rewrite.ErrPartitionsFailed):
		return withCode(exitFailed, fmt.Errorf("%w; run the same command again to retry them", err))
	case errors.Is(err, catalog.ErrNoSuchTable):
		return withCode(exitUsage, err)
	}
	if exitCode(err) == exitFailed {
		// Neither bad input nor a failed partition: the catalog or storage.
		return withCode(exitUnavailable, err)
	}
	return err
}

func printRunResult(c *cli.Context, cat *icecat.Catalog, res *rewrite.RunResult) {
	if res == nil || res.Plan == nil {
		return
	}
	w := c.App.Writer
	fmt.Fprintf(w, "run %s on %s, branch %s\n", res.RunID, cat.Describe(), c.String("branch"))
	fmt.Fprintf(w, "  partitions: %d planned, %d already done, %d committed now, %d failed\n",
		len(res.Plan.Partitions), res.Plan.Count(rewrite.StatusDone), len(res.Committed), len(res.Failed))
	if res.Elapsed > 0 && res.Events > 0 {
		fmt.Fprintf(w, "  events: %d in %s (%.0f events/s)\n", res.Events, res.Elapsed.Round(time.Millisecond), float64(res.Events)/res.Elapsed.Seconds())
	}
	if res.SetAsideCheckpoints > 0 {
		fmt.Fprintf(w, "  checkpoints set aside: %d recorded checkpoints do not count: %s\n", res.SetAsideCheckpoints, res.SetAside)
	}
	if c.Bool("verify") {
		fmt.Fprintf(w, "  verified: %d checkpoints with files not as committed, recomputed\n", len(res.Bad))
		for _, day := range slices.Sorted(maps.Keys(res.Bad)) {
			fmt.Fprintf(w, "    %s: %s\n", day, res.Bad[day])
		}
	}
	if res.Recovered > 0 {
		fmt.Fprintf(w, "  commits whose answer was lost and were found landed: %d\n", res.Recovered)
	}
	for _, f := range res.Failed {
		fmt.Fprintf(w, "  FAILED %s: %v\n", f.Day, f.Err)
	}
}
