package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/validate"
)

func totalsCommand() *cli.Command {
	flags := append(catalogFlags(),
		&cli.StringFlag{Name: "refs", Value: "main", Usage: "comma-separated branches, tags or snapshot ids to total side by side"},
		&cli.BoolFlag{Name: "json", Usage: "print as JSON"})
	return &cli.Command{
		Name:      "totals",
		Usage:     "print rows, customers, orders and revenue of one or more refs side by side",
		UsageText: "icefill totals --refs main,clv-fix",
		Flags:     flags,
		Before:    configFileBefore(flags),
		Action: func(c *cli.Context) error {
			cat, tbl, err := openTable(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			var all []*validate.Totals
			for _, ref := range strings.Split(c.String("refs"), ",") {
				t, err := validate.RefTotals(c.Context, tbl, strings.TrimSpace(ref), nil, nil)
				if err != nil {
					return withCode(exitUsage, err)
				}
				all = append(all, t)
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(all)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintln(tw, "REF\tSNAPSHOT\tPARTITIONS\tROWS\tCUSTOMERS\tORDERS\tGROSS\tREFUNDS\tNET\tWITH FEATURES\t")
			for _, t := range all {
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%d\t\n", t.Ref, t.SnapshotID, t.Partitions, t.Rows, t.Customers,
					t.Orders, money(t.Gross), money(t.Refund), money(t.Net), t.WithFeatures)
			}
			return tw.Flush()
		},
	}
}
