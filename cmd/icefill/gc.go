package main

import (
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/internal/human"
	"github.com/icefill/icefill/snapshots"
)

func gcCommand() *cli.Command {
	flags := append(catalogFlags(),
		&cli.DurationFlag{Name: "min-age", Value: time.Hour, Usage: "only delete unreferenced files older than this; younger ones may belong to a run still writing"},
		&cli.BoolFlag{Name: "dry-run", Usage: "list what would be deleted, delete nothing"},
		jsonFlag())
	return &cli.Command{
		Name:  "gc",
		Usage: "delete data files that no snapshot references (left by interrupted runs)",
		Description: `Lists the table's data files and deletes those no snapshot in the table metadata
references and that are older than --min-age, by the storage's clock. Files any snapshot
references are never touched. Before deleting anything it commits a fence (tag
icefill-gc-fence): a run that wrote files and has not committed them yet (even one paused
for hours) cannot commit them any more; it writes them again. So --min-age is safe with
runs active; a small value only makes slow runs rewrite files.

Examples:
   icefill gc --dry-run
   icefill gc --min-age 24h --json

` + exitCodesHelp,
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
				return err
			}
			return printReport(c, newGCReport(res, c.Bool("dry-run"), c.Duration("min-age"), res.StorageNow))
		},
	}
}

// gcReport is what gc prints.
type gcReport struct {
	DryRun       bool     `json:"dry_run"`
	MinAge       string   `json:"min_age"`
	Scanned      int      `json:"data_files"`
	Referenced   int      `json:"referenced"`
	Unreferenced int      `json:"unreferenced"`
	Deleted      int      `json:"deleted"`
	Young        int      `json:"young_kept"`
	Files        []gcFile `json:"files"` // deleted, or with --dry-run those that would be
}

type gcFile struct {
	URL        string  `json:"url"`
	Bytes      int64   `json:"bytes"`
	AgeSeconds float64 `json:"age_seconds"`
}

func newGCReport(res *snapshots.GCResult, dryRun bool, minAge time.Duration, now time.Time) *gcReport {
	r := &gcReport{DryRun: dryRun, MinAge: minAge.String(), Scanned: res.Scanned, Referenced: res.Referenced,
		Unreferenced: len(res.Orphans) + res.Young, Deleted: res.Deleted, Young: res.Young, Files: []gcFile{}}
	for _, o := range res.Orphans {
		r.Files = append(r.Files, gcFile{URL: o.URL, Bytes: o.Size, AgeSeconds: now.Sub(o.ModTime).Round(time.Second).Seconds()})
	}
	return r
}

func (r *gcReport) writeText(w io.Writer) error {
	verb := "deleted"
	if r.DryRun {
		verb = "would delete"
	}
	for _, f := range r.Files {
		fmt.Fprintf(w, "%s %s (%s, %s old)\n", verb, f.URL, human.Bytes(f.Bytes), time.Duration(f.AgeSeconds)*time.Second)
	}
	_, err := fmt.Fprintf(w, "%d data files, %d referenced, %d unreferenced (%d deleted, %d younger than %s kept)\n",
		r.Scanned, r.Referenced, r.Unreferenced, r.Deleted, r.Young, r.MinAge)
	return err
}
