package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/validate"
)

func totalsCommand() *cli.Command {
	flags := append(catalogFlags(),
		&cli.StringFlag{Name: "refs", Value: "main", Usage: "comma-separated branches, tags or snapshot ids to total side by side"},
		jsonFlag())
	return &cli.Command{
		Name:      "totals",
		Usage:     "print rows, customers, orders and revenue of one or more refs side by side",
		UsageText: "icefill totals --refs main,clv-fix [--json]",
		Description: `Scans each ref once and prints, side by side: snapshot, partitions, rows, customers,
orders, gross, refunds and net revenue (as currency amounts) and rows with features. A
quick look by eye; icefill validate is the judgement.

Example:
   icefill totals --refs main,clv-fix

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			cat, tbl, err := openTable(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			all := []*validate.Totals{}
			for _, ref := range strings.Split(c.String("refs"), ",") {
				t, err := validate.RefTotals(c.Context, tbl, strings.TrimSpace(ref), nil, nil)
				if err != nil {
					return err
				}
				all = append(all, t)
			}
			return printReport(c, &totalsReport{Refs: all})
		},
	}
}

// totalsReport is what totals prints.
type totalsReport struct {
	Refs []*validate.Totals `json:"refs"`
}

func (r *totalsReport) writeText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "REF\tSNAPSHOT\tPARTITIONS\tROWS\tCUSTOMERS\tORDERS\tGROSS\tREFUNDS\tNET\tWITH FEATURES\t")
	for _, t := range r.Refs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t\n", t.Ref, t.SnapshotID, t.Partitions, t.Rows, t.Customers,
			t.Orders, money(t.Gross), money(t.Refund), money(t.Net), t.WithFeatures)
	}
	return tw.Flush()
}
