package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/apache/iceberg-go/catalog"
	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

func planCommand() *cli.Command {
	flags := append(append(append(sourceFlags(), rangeFlags()...), catalogFlags()...), branchFlag(true),
		&cli.BoolFlag{Name: "json", Usage: "print the plan as JSON"}, memoryFlags()[0])
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
			in, err := openInputs(c, runtime.NumCPU())
			if err != nil {
				return err
			}
			defer in.Close()
			cat, err := openCatalog(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			state := snapshots.NewState(c.String("branch"))
			if tbl, err := cat.LoadTable(c.Context); err == nil {
				if state, err = snapshots.LoadState(tbl, c.String("branch")); err != nil {
					return err
				}
			} else if !errors.Is(err, catalog.ErrNoSuchTable) {
				return withCode(exitUnavailable, err)
			}
			plan, err := rewrite.MakePlan(c.Context, in, state, rewrite.PlanOptions{Days: r.days, Logic: r.logic, Order: r.order, Force: c.Bool("force"), Shard: r.shard, Shards: r.shards})
			ests := planEstimates(c, in, plan, r.logic)
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				if encErr := enc.Encode(planJSON(plan, ests)); encErr != nil {
					return encErr
				}
				return err
			}
			printPlan(c, plan, ests)
			return err
		},
	}
}

type planEntry struct {
	Day        string `json:"day"`
	Status     string `json:"status"`
	Files      int    `json:"files"`
	Bytes      int64  `json:"bytes"`
	WindowRows int64  `json:"window_rows,omitempty"`
	Mode       string `json:"mode,omitempty"`
}

func planJSON(p *rewrite.Plan, ests map[features.Date]rewrite.Estimate) map[string]any {
	var entries []planEntry
	var missP, missL []string
	for _, pp := range p.Partitions {
		e := planEntry{Day: pp.Day.String(), Status: string(pp.Status), Files: pp.Files, Bytes: pp.Bytes}
		if est, ok := ests[pp.Day]; ok {
			e.WindowRows, e.Mode = est.WindowRows, est.Mode()
		}
		entries = append(entries, e)
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

func printPlan(c *cli.Context, p *rewrite.Plan, ests map[features.Date]rewrite.Estimate) {
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
	fmt.Fprintln(tw, "DAY\tSTATUS\tFILES\tBYTES\tWINDOW ROWS\tMODE")
	for _, pp := range p.Partitions {
		rows, mode := "-", "-"
		if est, ok := ests[pp.Day]; ok {
			rows, mode = fmt.Sprint(est.WindowRows), est.Mode()
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", pp.Day, pp.Status, pp.Files, humanBytes(pp.Bytes), rows, mode)
	}
	tw.Flush()
}
