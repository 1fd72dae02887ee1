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
references and that are older than --min-age, by the storage's clock. Files any snapshot
references are never touched. Before deleting anything it commits a fence (tag
icefill-gc-fence): a run that wrote files and has not committed them yet (even one paused
for hours) cannot commit them any more; it writes them again. So --min-age is safe with
runs active; a small value only makes slow runs rewrite files.`,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			cat, _, err := openTable(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			res, err := snapshots.CollectGarbage(c.Context, cat.Iceberg(), cat.Ident(), snapshots.GCOptions{
				S3: s3Options(c), MinAge: c.Duration("min-age"), DryRun: c.Bool("dry-run"), By: "gc " + snapshots.Who()})
			if err != nil {
				return withCode(exitUnavailable, err)
			}
			w := c.App.Writer
			for _, o := range res.Orphans {
				verb := "deleted"
				if c.Bool("dry-run") {
					verb = "would delete"
				}
				fmt.Fprintf(w, "%s %s (%s, %s old)\n", verb, o.URL, humanBytes(o.Size), res.StorageNow.Sub(o.ModTime).Round(time.Second))
			}
			fmt.Fprintf(w, "%d data files, %d referenced, %d unreferenced (%d deleted, %d younger than %s kept)\n",
				res.Scanned, res.Referenced, len(res.Orphans)+res.Young, res.Deleted, res.Young, c.Duration("min-age"))
			return nil
		},
	}
}
