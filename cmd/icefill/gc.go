package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/snapshots"
)

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
				return err
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
