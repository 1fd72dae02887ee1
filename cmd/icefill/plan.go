package main

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"text/tabwriter"

	"github.com/apache/iceberg-go/catalog"
	"github.com/urfave/cli/v2"

	icecat "github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/human"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

func planCommand() *cli.Command {
	flags := append(append(append(sourceFlags(), rangeFlags()...), catalogFlags()...), branchFlagUsage("the backfill branch whose checkpoints say what is done"),
		jsonFlag(), memoryFlags()[0])
	flags = append(flags, estimateFlags()...)
	return &cli.Command{
		Name:      "plan",
		Usage:     "show what run would do: missing input days, partitions done and to do, volume",
		UsageText: "icefill plan --source DIR|s3://… --from YYYY-MM-DD --to YYYY-MM-DD --branch NAME",
		Description: `Checks that every partition day and every lookback day exists in the source (missing
ones are listed and the exit code is 2 unless --allow-missing), then compares each partition
with the branch's checkpoints: done (skipped), todo, source-changed or logic-changed
(recomputed), failed (retried). Reads listings and the catalog only; writes nothing, and
works before the first run (every partition is then to do). With --allow-missing each
missing day is named in a warning and marked in the plan.

--estimate prices the partitions to compute instead: it times one representative
partition (or reads the durations recorded in recent checkpoints of this logic) and
prints the core-hours, the wall time with --workers-per-job workers of --cores-per-worker
cores, the workers needed to finish by --deadline, and the source read rate all that
implies, against --read-budget (the share of the source the live pipeline leaves).

Examples:
   icefill plan --source ./events --from 2024-01-01 --to 2024-03-31 --branch clv-fix
   icefill plan --source s3://raw/events --from 2021-01-01 --to 2025-12-31 --branch clv-fix --json

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			r, err := parseRange(c)
			if err != nil {
				return err
			}
			in, err := openInputs(c, runtime.NumCPU())
			if err != nil {
				return err
			}
			defer in.Close()
			state, err := branchState(c)
			if err != nil {
				return err
			}
			rewrite.WarnOtherSource(logger(), state, c.String("source"))
			plan, err := rewrite.MakePlan(c.Context, in, state, rewrite.PlanOptions{Days: r.days, Logic: r.logic, Order: r.order, Force: c.Bool("force"), Shard: r.shard, Shards: r.shards})
			if c.Bool("estimate") {
				if err != nil {
					return err
				}
				return printEstimate(c, in, plan, state, r.logic)
			}
			if plan == nil {
				return err
			}
			if c.Bool("allow-missing") {
				warnMissing(plan)
			}
			if perr := printReport(c, newPlanReport(plan, planEstimates(c, in, plan, r.logic))); perr != nil && err == nil {
				err = perr
			}
			return err
		},
	}
}

// planReport is what plan prints.
type planReport struct {
	Partitions           []planEntry `json:"partitions"`
	MissingPartitionDays []string    `json:"missing_partition_days"`
	MissingLookbackDays  []string    `json:"missing_lookback_days"`
	Done                 int         `json:"done"`
	ToCompute            int         `json:"to_compute"`
	ToComputeBytes       int64       `json:"to_compute_bytes"`
}

type planEntry struct {
	Day    string `json:"day"`
	Status string `json:"status"`
	Files  int    `json:"files"`
	Bytes  int64  `json:"bytes"`
	// MissingInput: the day (or a lookback day) is missing and counts as
	// empty (--allow-missing).
	MissingInput bool `json:"missing_input"`
	// WindowRows and Mode estimate the partition's compute: the rows of
	// its window and whether it fits in memory or spills (0 and "" when
	// not estimated: a partition not to compute).
	WindowRows int64  `json:"window_rows"`
	Mode       string `json:"mode"`
}

func newPlanReport(p *rewrite.Plan, ests map[features.Date]rewrite.Estimate) *planReport {
	r := &planReport{Partitions: []planEntry{}, MissingPartitionDays: days(p.MissingPartitions), MissingLookbackDays: days(p.MissingLookback),
		Done: p.Count(rewrite.StatusDone), ToCompute: len(p.Todo()), ToComputeBytes: p.TodoBytes()}
	for _, pp := range p.Partitions {
		e := planEntry{Day: pp.Day.String(), Status: string(pp.Status), Files: pp.Files, Bytes: pp.Bytes, MissingInput: pp.MissingInput}
		if est, ok := ests[pp.Day]; ok {
			e.WindowRows, e.Mode = est.WindowRows, est.Mode()
		}
		r.Partitions = append(r.Partitions, e)
	}
	return r
}

func (r *planReport) writeText(w io.Writer) error {
	if len(r.MissingPartitionDays)+len(r.MissingLookbackDays) > 0 {
		fmt.Fprintf(w, "missing source days: %d partition days, %d lookback days\n", len(r.MissingPartitionDays), len(r.MissingLookbackDays))
	}
	fmt.Fprintf(w, "%d partitions: %d done, %d to compute (%s of source files)\n", len(r.Partitions), r.Done, r.ToCompute, human.Bytes(r.ToComputeBytes))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DAY\tSTATUS\tFILES\tBYTES\tWINDOW ROWS\tMODE")
	for _, pp := range r.Partitions {
		rows, mode := "-", "-"
		if pp.Mode != "" {
			rows, mode = fmt.Sprint(pp.WindowRows), pp.Mode
		}
		note := ""
		if pp.MissingInput {
			note = "  (input missing, counted as empty)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s%s\n", pp.Day, pp.Status, pp.Files, human.Bytes(pp.Bytes), rows, mode, note)
	}
	return tw.Flush()
}

// branchState reads the branch's checkpoints. Before the first run there is
// no catalog file or no table yet: then every partition is to do.
func branchState(c *cli.Context) (*snapshots.State, error) {
	branch := c.String("branch")
	cat, tbl, err := openTable(c)
	switch {
	case errors.Is(err, icecat.ErrNoCatalog), errors.Is(err, catalog.ErrNoSuchTable), errors.Is(err, catalog.ErrNoSuchNamespace):
		logger().Info("no table yet: every partition is to do", "reason", err)
		return snapshots.NewState(branch), nil
	case err != nil:
		return nil, err
	}
	defer cat.Close()
	return snapshots.LoadState(tbl, branch)
}
