package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

func historyCommand() *cli.Command {
	flags := append(catalogFlags(), jsonFlag())
	return &cli.Command{
		Name:      "history",
		Usage:     "the table's story from the catalog: branches and their progress, validations, promotions, rollbacks, tags",
		UsageText: "icefill history [--json]",
		Description: `Lists every ref (type, name, snapshot; backfill progress of branches with checkpoints;
validation state), then every promotion, rollback and direct write of main: when, how,
main's snapshot before and after, partitions, who, the tag kept.

Example:
   icefill history

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			cat, tbl, err := openTable(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			events, err := snapshots.ReadHistory(tbl.Properties())
			if err != nil {
				return err
			}
			refs := []refInfo{}
			for name, r := range tbl.Metadata().Refs() {
				ri := refInfo{Name: name, Type: string(r.SnapshotRefType), Snapshot: r.SnapshotID}
				if r.SnapshotRefType == "branch" && name != "main" {
					if st, err := rewrite.BranchStatus(tbl, name); err == nil && st.Done > 0 {
						ri.Status = newStatusReport(st)
					}
				}
				ri.Validation, _ = snapshots.ReadValidation(tbl.Properties(), name)
				refs = append(refs, ri)
			}
			sort.Slice(refs, func(i, j int) bool {
				return refs[i].Type < refs[j].Type || refs[i].Type == refs[j].Type && refs[i].Name < refs[j].Name
			})
			return printReport(c, &historyReport{Table: strings.Join(cat.Ident(), "."), Refs: refs, Events: historyEvents(events)})
		},
	}
}

// historyReport is what history prints.
type historyReport struct {
	Table  string           `json:"table"`
	Refs   []refInfo        `json:"refs"`
	Events []*publishReport `json:"events"`
}

type refInfo struct {
	Name       string                `json:"name"`
	Type       string                `json:"type"`
	Snapshot   int64                 `json:"snapshot"`
	Status     *statusReport         `json:"status"`     // null unless a backfill branch with commits
	Validation *snapshots.Validation `json:"validation"` // null unless validated
}

func (r *historyReport) writeText(w io.Writer) error {
	fmt.Fprintf(w, "table %s\n\nREFS\n", r.Table)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range r.Refs {
		line := fmt.Sprintf("  %s\t%s\t%d", r.Type, r.Name, r.Snapshot)
		if r.Status != nil {
			line += fmt.Sprintf("\tbackfill %d/%d partitions", r.Status.Done, r.Status.Total)
		}
		if v := r.Validation; v != nil {
			state := "validated"
			if v.CandidateSnapshot != r.Snapshot {
				state = "validated an older head"
			}
			line += fmt.Sprintf("\t%s %s by %s", state, time.UnixMilli(v.At).UTC().Format(time.RFC3339), v.By)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nPROMOTIONS AND ROLLBACKS")
	if len(r.Events) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, ev := range r.Events {
		fmt.Fprintf(w, "  %s  %-8s %-12s branch %-10s main %d -> %d  %d partitions  by %s", ev.At.Format(time.RFC3339),
			ev.Kind, ev.Method, ev.Branch, ev.From, ev.To, len(ev.Partitions), ev.By)
		if ev.Tag != "" {
			fmt.Fprintf(w, "  tag %s", ev.Tag)
		}
		if ev.Skipped {
			fmt.Fprint(w, "  WITHOUT VALIDATION")
		}
		if ev.RolledBack {
			fmt.Fprint(w, "  (rolled back)")
		}
		fmt.Fprintln(w)
	}
	return nil
}

func historyEvents(events []snapshots.Event) []*publishReport {
	out := make([]*publishReport, 0, len(events))
	for _, ev := range events {
		out = append(out, newPublishReport(ev, nil))
	}
	return out
}
