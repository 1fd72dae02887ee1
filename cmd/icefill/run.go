package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
	"github.com/urfave/cli/v2"

	icecat "github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/source"
)

func rangeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "from", Usage: "first partition day, YYYY-MM-DD (required)", EnvVars: []string{"ICEFILL_FROM"}},
		&cli.StringFlag{Name: "to", Usage: "last partition day, YYYY-MM-DD, inclusive (required)", EnvVars: []string{"ICEFILL_TO"}},
		logicFlag(),
		&cli.StringFlag{Name: "order", Value: string(rewrite.NewestFirst), Usage: "newest-first (recent days repaired first) or oldest-first", EnvVars: []string{"ICEFILL_ORDER"}},
		&cli.BoolFlag{Name: "force", Usage: "recompute partitions even when their checkpoint is current"},
		&cli.StringFlag{Name: "shard", Usage: "INDEX/COUNT: take every COUNT-th partition starting at INDEX (0-based), to split one backfill across processes; " +
			"auto: INDEX from JOB_COMPLETION_INDEX, COUNT from ICEFILL_SHARD_COUNT (a Kubernetes Indexed Job; the default when JOB_COMPLETION_INDEX is set)", EnvVars: []string{"ICEFILL_SHARD"}},
	}
}

func branchFlag(required bool) cli.Flag {
	return &cli.StringFlag{Name: "branch", Required: required, Usage: "the Iceberg branch to write (never main unless you pass --branch main)", EnvVars: []string{"ICEFILL_BRANCH"}}
}

type rangeArgs struct {
	days          []features.Date
	logic         features.Logic
	order         rewrite.Order
	shard, shards int
}

func parseRange(c *cli.Context) (rangeArgs, error) {
	var r rangeArgs
	if c.String("from") == "" || c.String("to") == "" {
		return r, usageErr("--from and --to are required")
	}
	from, err := parseDateFlag(c, "from")
	if err != nil {
		return r, err
	}
	to, err := parseDateFlag(c, "to")
	if err != nil {
		return r, err
	}
	if to < from {
		return r, usageErr("--to %s is before --from %s", to, from)
	}
	r.days = features.DaysBetween(from, to)
	if r.logic, err = parseLogic(c); err != nil {
		return r, err
	}
	if r.order, err = rewrite.ParseOrder(c.String("order")); err != nil {
		return r, withCode(exitUsage, err)
	}
	if r.shard, r.shards, err = shardFromEnv(c.String("shard")); err != nil {
		return r, err
	}
	return r, nil
}

func openCatalog(c *cli.Context) (*icecat.Catalog, error) {
	cat, err := icecat.Open(c.Context, catalogConfig(c))
	if err != nil {
		return nil, withCode(exitUnavailable, fmt.Errorf("open catalog: %w", err))
	}
	return cat, nil
}

// openTable opens the catalog and loads the table; the caller closes the
// catalog. A missing table is the user's to fix (exit 2), an unreachable
// catalog is not (exit 3).
func openTable(c *cli.Context) (*icecat.Catalog, *table.Table, error) {
	cat, err := openCatalog(c)
	if err != nil {
		return nil, nil, err
	}
	tbl, err := cat.LoadTable(c.Context)
	if err != nil {
		cat.Close()
		return nil, nil, tableErr(err)
	}
	return cat, tbl, nil
}

func openInputs(c *cli.Context, workers int) (*rewrite.Inputs, error) {
	src, err := source.Open(c.Context, c.String("source"), s3Options(c))
	if err != nil {
		return nil, withCode(exitUsage, err)
	}
	opts := rewrite.InputOptions{AllowMissing: c.Bool("allow-missing"), Workers: workers}
	if c.IsSet("max-read-rate") || c.String("max-read-rate") != "" {
		rate, err := rewrite.ParseByteRate(c.String("max-read-rate"))
		if err != nil {
			return nil, withCode(exitUsage, err)
		}
		if rate > 0 {
			lim := rewrite.NewRateLimiter(rate)
			opts.Read.Throttle = lim.Wait
		}
	}
	in, err := rewrite.NewInputs(c.Context, src, opts)
	if err != nil {
		return nil, withCode(exitUnavailable, err)
	}
	return in, nil
}

func runCommand() *cli.Command {
	flags := append(append(append(sourceFlags(), rangeFlags()...), catalogFlags()...),
		branchFlag(true),
		&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "partitions computed at once in this process", EnvVars: []string{"ICEFILL_WORKERS"}},
		&cli.StringFlag{Name: "max-read-rate", Usage: "cap on source reads of this process, e.g. 200MiB/s (default: unlimited)", EnvVars: []string{"ICEFILL_MAX_READ_RATE"}},
		&cli.StringFlag{Name: "pause-window", Usage: "HH:MM-HH:MM (UTC): no new partition starts inside it, running ones finish", EnvVars: []string{"ICEFILL_PAUSE_WINDOW"}},
		&cli.StringFlag{Name: "run-id", Usage: "name this run in checkpoints (default: a timestamp)"},
		&cli.BoolFlag{Name: "catch-up", Usage: "instead of --from/--to: recompute exactly the partitions main changed since the branch forked that the branch has not recomputed since (what promote asks for)"},
		&cli.DurationFlag{Name: "gc-min-age", Value: rewrite.DefaultGCMinAge, Usage: "at start, delete unreferenced data files older than this; younger ones may belong to a live writer, so use 0s only when no other run is active"},
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
			cat, err := openCatalog(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			prog := newProgress(c.App.ErrWriter, logger())
			res, err := rewrite.Run(c.Context, cat, in, rewrite.RunOptions{
				Branch: c.String("branch"), Logic: r.logic, Days: r.days, Order: r.order, Workers: workers,
				Force: c.Bool("force") || c.Bool("catch-up"), RejectLimit: c.Float64("max-reject-rate"), PauseWindow: pause,
				RunID: c.String("run-id"), Shard: r.shard, Shards: r.shards, GCMinAge: gcMinAge(c.Duration("gc-min-age")),
				CompactAbove: 32, CompactEvery: 8, S3: s3Options(c), Fault: fault, Progress: prog,
				SourceName: c.String("source"), Log: logger(),
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
	state, err := snapshots.ReadState(tbl.Properties(), c.String("branch"))
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
	if res.Recovered > 0 {
		fmt.Fprintf(w, "  commits whose answer was lost and were found landed: %d\n", res.Recovered)
	}
	for _, f := range res.Failed {
		fmt.Fprintf(w, "  FAILED %s: %v\n", f.Day, f.Err)
	}
}

func planCommand() *cli.Command {
	flags := append(append(append(sourceFlags(), rangeFlags()...), catalogFlags()...), branchFlag(true),
		&cli.BoolFlag{Name: "json", Usage: "print the plan as JSON"})
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what run would do: missing input days, partitions done and to do, volume",
		UsageText: "icefill plan --source DIR|s3://… --from YYYY-MM-DD --to YYYY-MM-DD --branch NAME",
		Description: `Checks that every partition day and every lookback day exists in the source (missing
ones are listed and the exit code is 2 unless --allow-missing), then compares each partition
with the branch's checkpoints: done (skipped), todo, source-changed or logic-changed
(recomputed), failed (retried). Reads listings and the catalog only; writes nothing.`,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			r, err := parseRange(c)
			if err != nil {
				return err
			}
			in, err := openInputs(c, 1)
			if err != nil {
				return err
			}
			cat, err := openCatalog(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			state := snapshots.NewState(c.String("branch"))
			if tbl, err := cat.LoadTable(c.Context); err == nil {
				if state, err = snapshots.ReadState(tbl.Properties(), c.String("branch")); err != nil {
					return err
				}
			} else if !errors.Is(err, catalog.ErrNoSuchTable) {
				return withCode(exitUnavailable, err)
			}
			plan, err := rewrite.MakePlan(c.Context, in, state, rewrite.PlanOptions{Days: r.days, Logic: r.logic, Order: r.order, Force: c.Bool("force"), Shard: r.shard, Shards: r.shards})
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if encErr := enc.Encode(planJSON(plan)); encErr != nil {
					return encErr
				}
				return err
			}
			printPlan(c, plan)
			return err
		},
	}
}

type planEntry struct {
	Day    string `json:"day"`
	Status string `json:"status"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
}

func planJSON(p *rewrite.Plan) map[string]any {
	var entries []planEntry
	var missP, missL []string
	for _, pp := range p.Partitions {
		entries = append(entries, planEntry{Day: pp.Day.String(), Status: string(pp.Status), Files: pp.Files, Bytes: pp.Bytes})
	}
	for _, d := range p.MissingPartitions {
		missP = append(missP, d.String())
	}
	for _, d := range p.MissingLookback {
		missL = append(missL, d.String())
	}
	return map[string]any{"partitions": entries, "missing_partition_days": missP, "missing_lookback_days": missL,
		"to_compute": len(p.Todo()), "to_compute_bytes": p.TodoBytes()}
}

func printPlan(c *cli.Context, p *rewrite.Plan) {
	w := c.App.Writer
	if len(p.MissingPartitions)+len(p.MissingLookback) > 0 {
		fmt.Fprintf(w, "missing source days: %d partition days, %d lookback days\n", len(p.MissingPartitions), len(p.MissingLookback))
	}
	counts := map[rewrite.PartitionStatus]int{}
	for _, pp := range p.Partitions {
		counts[pp.Status]++
	}
	fmt.Fprintf(w, "%d partitions: %d done, %d to compute (%s of source files)\n", len(p.Partitions), counts[rewrite.StatusDone], len(p.Todo()), humanBytes(p.TodoBytes()))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DAY\tSTATUS\tFILES\tBYTES")
	for _, pp := range p.Partitions {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", pp.Day, pp.Status, pp.Files, humanBytes(pp.Bytes))
	}
	tw.Flush()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func statusCommand() *cli.Command {
	flags := append(catalogFlags(), branchFlag(true), &cli.BoolFlag{Name: "json", Usage: "print as JSON"})
	return &cli.Command{
		Name:      "status",
		Usage:     "progress of a backfill branch, read from the catalog alone (works from any machine)",
		UsageText: "icefill status --branch NAME [--json]",
		Flags:     flags,
		Before:    configFileBefore(flags),
		Action: func(c *cli.Context) error {
			cat, tbl, err := openTable(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			st, err := rewrite.BranchStatus(tbl, c.String("branch"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(c, st)
			if !st.Exists {
				return withCode(exitUsage, fmt.Errorf("branch %q has no checkpoints on %s", st.Branch, st.Table))
			}
			return nil
		},
	}
}

func printStatus(c *cli.Context, st *rewrite.Status) {
	w := c.App.Writer
	fmt.Fprintf(w, "table %s  branch %s", st.Table, st.Branch)
	if st.HeadID != 0 {
		fmt.Fprintf(w, "  head %d", st.HeadID)
	}
	fmt.Fprintln(w)
	if st.Plan != nil {
		fmt.Fprintf(w, "  plan      %s … %s, logic %s, source %s\n", st.Plan.From, st.Plan.To, st.Plan.Logic, st.Plan.Source)
	}
	pct := 0.0
	if st.Total > 0 {
		pct = 100 * float64(st.Done) / float64(st.Total)
	}
	fmt.Fprintf(w, "  done      %d / %d partitions (%.1f%%), %d remaining, %d failed\n", st.Done, st.Total, pct, st.Remaining, len(st.Failed))
	fmt.Fprintf(w, "  events    %d read, %d rows written\n", st.Events, st.OutputRows)
	if !st.LastCommit.IsZero() {
		fmt.Fprintf(w, "  last      commit at %s\n", st.LastCommit.Format(time.RFC3339))
	}
	if st.PartitionsPerHour > 0 {
		fmt.Fprintf(w, "  rate      %.1f partitions/h, %.0f events/s (last hour of commits)\n", st.PartitionsPerHour, st.EventsPerSecond)
	}
	if st.ETA > 0 {
		fmt.Fprintf(w, "  ETA       %s at that rate\n", st.ETA.Round(time.Minute))
	}
	if st.StaleLogic > 0 {
		fmt.Fprintf(w, "  note      %d partitions were committed by another logic version and will be recomputed\n", st.StaleLogic)
	}
	for _, f := range st.Failed {
		fmt.Fprintf(w, "  FAILED    %s (run %s): %s\n", f.Day, f.RunID, f.Error)
	}
}

func gcCommand() *cli.Command {
	flags := append(catalogFlags(),
		&cli.DurationFlag{Name: "min-age", Value: time.Hour, Usage: "only delete unreferenced files older than this; younger ones may belong to a run still writing"},
		&cli.BoolFlag{Name: "dry-run", Usage: "list what would be deleted, delete nothing"})
	return &cli.Command{
		Name:  "gc",
		Usage: "delete data files that no snapshot references (left by interrupted runs)",
		Description: `Lists the table's data files and deletes those no snapshot in the table metadata
references and that are older than --min-age. Files any snapshot references are never
touched. Keep --min-age above the longest partition compute-and-commit time when other
runs may be active: their written-but-not-yet-committed files look unreferenced.`,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			cat, tbl, err := openTable(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			res, err := snapshots.CollectGarbage(c.Context, tbl, s3Options(c), c.Duration("min-age"), c.Bool("dry-run"), time.Now())
			if err != nil {
				return withCode(exitUnavailable, err)
			}
			w := c.App.Writer
			for _, o := range res.Orphans {
				verb := "deleted"
				if c.Bool("dry-run") {
					verb = "would delete"
				}
				fmt.Fprintf(w, "%s %s (%s, %s old)\n", verb, o.URL, humanBytes(o.Size), time.Since(o.ModTime).Round(time.Second))
			}
			fmt.Fprintf(w, "%d data files, %d referenced, %d unreferenced (%d deleted, %d younger than %s kept)\n",
				res.Scanned, res.Referenced, len(res.Orphans)+res.Young, res.Deleted, res.Young, c.Duration("min-age"))
			return nil
		},
	}
}

func s3Options(c *cli.Context) objstore.S3Options { return catalogConfig(c).S3 }
