package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/rewrite"
)

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
		fmt.Fprintf(w, "  MIXED     %d partitions were committed by another logic version than the plan's (%s): the branch mixes logics %s\n",
			st.StaleLogic, planLogic(st), formatLogics(st.Logics))
	}
	if st.SetAside != "" && st.SetAsideCheckpoints > 0 {
		fmt.Fprintf(w, "  note      %d recorded checkpoints do not count: %s\n", st.SetAsideCheckpoints, st.SetAside)
	}
	for _, f := range st.Failed {
		fmt.Fprintf(w, "  FAILED    %s (run %s): %s\n", f.Day, f.RunID, f.Error)
	}
}

func planLogic(st *rewrite.Status) string {
	if st.Plan == nil {
		return "none"
	}
	return st.Plan.Logic
}

func formatLogics(m map[string]int) string {
	var parts []string
	for _, l := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", l, m[l]))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
