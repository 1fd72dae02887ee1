package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

func historyCommand() *cli.Command {
	flags := append(catalogFlags(), &cli.BoolFlag{Name: "json", Usage: "print as JSON"})
	return &cli.Command{
		Name:   "history",
		Usage:  "the table's story from the catalog: branches and their progress, validations, promotions, rollbacks, tags",
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
			type refInfo struct {
				Name       string                `json:"name"`
				Type       string                `json:"type"`
				Snapshot   int64                 `json:"snapshot"`
				Status     *rewrite.Status       `json:"status,omitempty"`
				Validation *snapshots.Validation `json:"validation,omitempty"`
			}
			var refs []refInfo
			for name, r := range tbl.Metadata().Refs() {
				ri := refInfo{Name: name, Type: string(r.SnapshotRefType), Snapshot: r.SnapshotID}
				if r.SnapshotRefType == "branch" && name != "main" {
					if st, err := rewrite.BranchStatus(tbl, name); err == nil && st.Done > 0 {
						ri.Status = st
					}
				}
				ri.Validation, _ = snapshots.ReadValidation(tbl.Properties(), name)
				refs = append(refs, ri)
			}
			sort.Slice(refs, func(i, j int) bool {
				return refs[i].Type < refs[j].Type || refs[i].Type == refs[j].Type && refs[i].Name < refs[j].Name
			})
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"refs": refs, "events": events})
			}
			w := c.App.Writer
			fmt.Fprintf(w, "table %s\n\nREFS\n", strings.Join(cat.Ident(), "."))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, r := range refs {
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
			if len(events) == 0 {
				fmt.Fprintln(w, "  none")
			}
			for _, ev := range events {
				fmt.Fprintf(w, "  %s  %-8s %-12s branch %-10s main %d -> %d  %d partitions  by %s", time.UnixMilli(ev.At).UTC().Format(time.RFC3339),
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
		},
	}
}
