package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/spill"
)

func runCommand() *cli.Command {
	flags := append(append(append(sourceFlags(), rangeFlags()...), catalogFlags()...),
		branchFlagUsage("the Iceberg branch to write (main only with --write-main)"),
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
		jsonFlag(),
	)
	flags = append(flags, metricsFlags()...)
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
			var catchUp []string // nil unless --catch-up
			if c.Bool("catch-up") {
				r, err = catchUpRange(c)
				catchUp = days(r.days)
			} else {
				r, err = parseRange(c)
			}
			if err != nil {
				return err
			}
			if catchUp != nil && len(catchUp) == 0 {
				return printReport(c, newRunReport("", c.String("branch"), catchUp, false, nil))
			}
			pause, err := rewrite.ParsePauseWindow(c.String("pause-window"))
			if err != nil {
				return errkind.Usagef("--pause-window: %w", err)
			}
			fault, err := faultFromEnv()
			if err != nil {
				return errkind.UsageError(err)
			}
			workers, err := workersFlag(c)
			if err != nil {
				return err
			}
			in, err := openInputs(c, workers)
			if err != nil {
				return err
			}
			defer in.Close()
			cat, err := openCatalog(c, true)
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
			prog := newProgress(c.App.ErrWriter, isTerminal(c.App.ErrWriter) && isTerminal(c.App.Writer))
			if prog.tty {
				logTo(prog.Writer())
				defer logTo(c.App.ErrWriter)
				prog.log = logger()
			}
			progress, stopMetrics, err := startMetrics(c, prog)
			if err != nil {
				return err
			}
			defer stopMetrics()
			res, err := rewrite.Run(c.Context, cat, in, rewrite.RunOptions{
				Branch: c.String("branch"), Logic: r.logic, Days: r.days, Order: r.order, Workers: workers,
				Force: c.Bool("force") || c.Bool("catch-up"), RejectLimit: c.Float64("max-reject-rate"), PauseWindow: pause,
				RunID: runID, Shard: r.shard, Shards: r.shards, GCMinAge: gcMinAge(c.Duration("gc-min-age")),
				CompactAbove: 32, CompactEvery: 8, S3: s3Options(c), Fault: fault, Progress: progress,
				SourceName: c.String("source"), Log: logger(), AllowMixedLogic: c.Bool("allow-mixed-logic"), Verify: c.Bool("verify"),
			})
			prog.finish()
			if res != nil && res.Plan != nil {
				if perr := printReport(c, newRunReport(cat.Describe(), c.String("branch"), catchUp, c.Bool("verify"), res)); perr != nil && err == nil {
					err = perr
				}
			}
			if errors.Is(err, context.Canceled) && res != nil && res.Plan != nil {
				todo := len(res.Plan.Todo())
				return fmt.Errorf("interrupted: %d of the %d partitions to compute remain (%d committed before the interrupt); run the same command again to continue: %w",
					todo-len(res.Committed), todo, len(res.Committed), err)
			}
			// A partition too large for the budget fails again whatever
			// the retry: its error says which budget would do instead.
			if errors.Is(err, rewrite.ErrPartitionsFailed) && !errors.Is(err, spill.ErrTooLarge) {
				return fmt.Errorf("%w; run the same command again to retry them", err)
			}
			return err
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
		return r, err
	}
	for _, d := range days {
		day, err := features.ParseDate(d)
		if err != nil {
			return r, err
		}
		r.days = append(r.days, day)
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

// runReport is what run prints.
type runReport struct {
	RunID   string `json:"run_id"`
	Catalog string `json:"catalog"`
	Branch  string `json:"branch"`
	// CatchUp is set by --catch-up; CatchUpDays are the days it chose.
	CatchUp     bool     `json:"catch_up"`
	CatchUpDays []string `json:"catch_up_days"`
	Planned     int      `json:"planned"`
	AlreadyDone int      `json:"already_done"`
	Committed   []string `json:"committed"`
	Failed      []failed `json:"failed"`
	// SetAsideCheckpoints counts recorded checkpoints that did not count,
	// and SetAside says why ("" when none).
	SetAsideCheckpoints int    `json:"set_aside_checkpoints"`
	SetAside            string `json:"set_aside"`
	// Verified is set by --verify; Bad are the checkpoints it found with
	// files not as committed (recomputed).
	Verified   bool     `json:"verified"`
	Bad        []failed `json:"verify_bad"`
	Events     int64    `json:"events"`
	OutputRows int64    `json:"output_rows"`
	Seconds    float64  `json:"seconds"`
	// Recovered counts commits whose answer was lost and were found landed.
	Recovered int `json:"recovered_commits"`
}

type failed struct {
	Day   string `json:"day"`
	Error string `json:"error"`
}

func newRunReport(catalog, branch string, catchUp []string, verified bool, res *rewrite.RunResult) *runReport {
	r := &runReport{Catalog: catalog, Branch: branch, CatchUp: catchUp != nil, CatchUpDays: orEmpty(catchUp),
		Committed: []string{}, Failed: []failed{}, Verified: verified, Bad: []failed{}}
	if res == nil {
		return r
	}
	r.RunID, r.Committed, r.Events, r.OutputRows = res.RunID, days(res.Committed), res.Events, res.OutputRows
	r.Seconds, r.Recovered = res.Elapsed.Seconds(), res.Recovered
	r.SetAsideCheckpoints, r.SetAside = res.SetAsideCheckpoints, res.SetAside
	for _, day := range slices.Sorted(maps.Keys(res.Bad)) {
		r.Bad = append(r.Bad, failed{Day: day, Error: res.Bad[day]})
	}
	if res.Plan != nil {
		r.Planned, r.AlreadyDone = len(res.Plan.Partitions), res.Plan.Count(rewrite.StatusDone)
	}
	for _, f := range res.Failed {
		r.Failed = append(r.Failed, failed{Day: f.Day.String(), Error: f.Err.Error()})
	}
	return r
}

func (r *runReport) writeText(w io.Writer) error {
	if r.CatchUp {
		if len(r.CatchUpDays) == 0 {
			fmt.Fprintf(w, "nothing to catch up: branch %s covers every partition main changed since it forked\n", r.Branch)
			return nil
		}
		fmt.Fprintf(w, "catching up %d partition(s) main changed since the fork: %s\n", len(r.CatchUpDays), strings.Join(r.CatchUpDays, ", "))
	}
	fmt.Fprintf(w, "run %s on %s, branch %s\n", r.RunID, r.Catalog, r.Branch)
	fmt.Fprintf(w, "  partitions: %d planned, %d already done, %d committed now, %d failed\n",
		r.Planned, r.AlreadyDone, len(r.Committed), len(r.Failed))
	if r.Seconds > 0 && r.Events > 0 {
		fmt.Fprintf(w, "  events: %d in %s (%.0f events/s)\n", r.Events, time.Duration(r.Seconds*float64(time.Second)).Round(time.Millisecond), float64(r.Events)/r.Seconds)
	}
	if r.SetAsideCheckpoints > 0 {
		fmt.Fprintf(w, "  checkpoints set aside: %d recorded checkpoints do not count: %s\n", r.SetAsideCheckpoints, r.SetAside)
	}
	if r.Verified {
		fmt.Fprintf(w, "  verified: %d checkpoints with files not as committed, recomputed\n", len(r.Bad))
		for _, b := range r.Bad {
			fmt.Fprintf(w, "    %s: %s\n", b.Day, b.Error)
		}
	}
	if r.Recovered > 0 {
		fmt.Fprintf(w, "  commits whose answer was lost and were found landed: %d\n", r.Recovered)
	}
	for _, f := range r.Failed {
		fmt.Fprintf(w, "  FAILED %s: %s\n", f.Day, f.Error)
	}
	return nil
}
