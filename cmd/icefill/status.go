package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

func statusCommand() *cli.Command {
	flags := append(catalogFlags(), branchFlagUsage("the backfill branch to report on"), jsonFlag())
	return &cli.Command{
		Name:      "status",
		Usage:     "progress of a backfill branch, read from the catalog alone (works from any machine)",
		UsageText: "icefill status --branch NAME [--json]",
		Description: `Reads the branch's checkpoints from the table's properties (no source, no data files)
and prints the plan, partitions done and to do, events and rows, the last commit, the
rate over the last hour of commits and an ETA, partitions of another logic version,
checkpoints that do not count, and failed partitions with their error. Exit 2 when the
branch has no checkpoints (the report is printed first).

Examples:
   icefill status --branch clv-fix
   watch -n 60 icefill status --branch clv-fix
   icefill status --branch clv-fix --json

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
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
			if err := printReport(c, newStatusReport(st)); err != nil {
				return err
			}
			if !st.Exists {
				return errkind.Usagef("branch %q has no checkpoints on %s", st.Branch, st.Table)
			}
			return nil
		},
	}
}

// statusReport is what status prints.
type statusReport struct {
	Table      string          `json:"table"`
	Branch     string          `json:"branch"`
	Exists     bool            `json:"exists"`
	HeadID     int64           `json:"head_snapshot_id"` // 0: the branch has no snapshot
	Plan       *snapshots.Plan `json:"plan"`             // null: no run recorded a plan
	Done       int             `json:"done"`
	Total      int             `json:"total"`
	Remaining  int             `json:"remaining"`
	Failed     []statusFailure `json:"failed"`
	Events     int64           `json:"events"`
	Bytes      int64           `json:"bytes"`
	OutputRows int64           `json:"output_rows"`
	LastCommit *time.Time      `json:"last_commit"` // null: nothing committed
	// Rates over the last hour of commits (or all of them if fewer).
	PartitionsPerHour float64 `json:"partitions_per_hour"`
	EventsPerSecond   float64 `json:"events_per_second"`
	ETASeconds        float64 `json:"eta_seconds"`
	// StaleLogic counts partitions committed by another logic version
	// than the plan's; Logics counts checkpoints per logic version when
	// the branch holds more than one (such a branch is never complete).
	StaleLogic int            `json:"other_logic_version"`
	Logics     map[string]int `json:"logics"`
	// SetAsideCheckpoints counts recorded checkpoints that do not count,
	// and SetAside says why ("" when none).
	SetAsideCheckpoints int    `json:"checkpoints_set_aside"`
	SetAside            string `json:"checkpoints_set_aside_because"`
	// MissingAsEmpty are the source days runs counted as empty
	// (--allow-missing).
	MissingAsEmpty []string `json:"missing_as_empty"`
}

type statusFailure struct {
	Day   string    `json:"day"`
	Error string    `json:"error"`
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
}

func newStatusReport(st *rewrite.Status) *statusReport {
	r := &statusReport{Table: st.Table, Branch: st.Branch, Exists: st.Exists, HeadID: st.HeadID, Plan: st.Plan,
		Done: st.Done, Total: st.Total, Remaining: st.Remaining, Failed: []statusFailure{}, Events: st.Events, Bytes: st.Bytes,
		OutputRows: st.OutputRows, PartitionsPerHour: st.PartitionsPerHour, EventsPerSecond: st.EventsPerSecond,
		ETASeconds: st.ETA.Seconds(), StaleLogic: st.StaleLogic, Logics: map[string]int{},
		SetAsideCheckpoints: st.SetAsideCheckpoints, SetAside: st.SetAside, MissingAsEmpty: orEmpty(st.MissingAsEmpty)}
	maps.Copy(r.Logics, st.Logics)
	if !st.LastCommit.IsZero() {
		t := st.LastCommit.UTC()
		r.LastCommit = &t
	}
	for _, f := range st.Failed {
		r.Failed = append(r.Failed, statusFailure{Day: f.Day, Error: f.Error, RunID: f.RunID, At: f.At.UTC()})
	}
	return r
}

func (st *statusReport) writeText(w io.Writer) error {
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
	if st.LastCommit != nil {
		fmt.Fprintf(w, "  last      commit at %s\n", st.LastCommit.Format(time.RFC3339))
	}
	if st.PartitionsPerHour > 0 {
		fmt.Fprintf(w, "  rate      %.1f partitions/h, %.0f events/s (last hour of commits)\n", st.PartitionsPerHour, st.EventsPerSecond)
	}
	if st.ETASeconds > 0 {
		fmt.Fprintf(w, "  ETA       %s at that rate\n", formatETA(time.Duration(st.ETASeconds*float64(time.Second))))
	}
	if st.StaleLogic > 0 {
		fmt.Fprintf(w, "  MIXED     %d partitions were committed by another logic version than the plan's (%s): the branch mixes logics %s\n",
			st.StaleLogic, st.planLogic(), formatLogics(st.Logics))
	}
	if n := len(st.MissingAsEmpty); n > 0 {
		fmt.Fprintf(w, "  missing   %d source day(s) counted as empty (--allow-missing): %s\n", n, shortList(st.MissingAsEmpty, 10))
	}
	if st.SetAside != "" && st.SetAsideCheckpoints > 0 {
		fmt.Fprintf(w, "  note      %d recorded checkpoints do not count: %s\n", st.SetAsideCheckpoints, st.SetAside)
	}
	for _, f := range st.Failed {
		fmt.Fprintf(w, "  FAILED    %s (run %s): %s\n", f.Day, f.RunID, f.Error)
	}
	return nil
}

func (st *statusReport) planLogic() string {
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
