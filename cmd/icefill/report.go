package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	icecat "github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/report"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/validate"
)

func reportCommand() *cli.Command {
	flags := append(catalogFlags(), branchFlagUsage("the backfill branch to report on"),
		&cli.StringFlag{Name: "html", Required: true, TakesFile: true, Usage: "write the page to `FILE`"},
		&cli.StringFlag{Name: "base", Value: "main", Usage: "the branch the backfill is published onto"},
	)
	return &cli.Command{
		Name:      "report",
		Usage:     "write a self-contained HTML page of a backfill: partitions, progress, last validation, history",
		UsageText: "icefill report --branch clv-fix --html report.html [--base main]",
		Description: `Reads the catalog alone (no source listing, no data files) and writes one HTML file
with inline CSS and SVG that loads nothing from anywhere:
   - a calendar of every partition of the branch's plan, one square per day, by state:
     done, failed, to do, source changed (its input files changed since it was committed,
     as the last run found), logic changed; hovering a square shows the day and the error;
   - progress: done / total, events and bytes read, commits over time, rate and ETA;
   - the last validation of the branch (pass or fail, recorded by icefill validate):
     every metric by every dimension as bars against the tolerance band and the declared
     bounds, lifetime value quantiles and the KS statistic, the sample of differing keys;
   - the history of promotions, rollbacks and tags: who, when, from and to which snapshot.
The page names the table, catalog, branch, snapshot ids and when it was made, so a saved
copy is evidence of what was known then.

Example:
   icefill report --branch clv-fix --html clv-fix.html

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			cat, tbl, err := openTable(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			page, err := report.Collect(tbl, cat.Describe(), c.String("branch"), c.String("base"), time.Now())
			if err != nil {
				return fmt.Errorf("report: %w", err)
			}
			path := c.String("html")
			if err := writeFileAtomic(path, func(w io.Writer) error { return report.Render(w, page) }); err != nil {
				return errkind.Usagef("--html: %w", err)
			}
			abs, _ := filepath.Abs(path)
			fmt.Fprintln(c.App.Writer, abs)
			return nil
		},
	}
}

// validationHTMLFlag is validate's --html.
func validationHTMLFlag() cli.Flag {
	return &cli.StringFlag{Name: "html", TakesFile: true, Usage: "also write the validation as a self-contained HTML page to `FILE`"}
}

// publishValidation keeps what a validation found: the summary in the
// catalog (pass or fail, for `icefill report`; unless --no-record) and the
// --html page. Failing to record the summary is only a warning: it is not
// what promote relies on.
func publishValidation(c *cli.Context, cat *icecat.Catalog, rep *validate.Report) error {
	sum := report.Summarize(rep, time.Now(), snapshots.Who())
	if path := c.String("html"); path != "" {
		err := writeFileAtomic(path, func(w io.Writer) error {
			return report.RenderValidation(w, sum, report.ValidationMeta{Table: strings.Join(cat.Ident(), "."), Catalog: cat.Describe(), Generated: time.Now()})
		})
		if err != nil {
			return errkind.Usagef("--html: %w", err)
		}
	}
	if !c.Bool("no-record") {
		if err := snapshots.RecordValidationReport(c.Context, cat.Iceberg(), cat.Ident(), rep.Candidate, sum); err != nil {
			logger().Warn("could not keep the validation summary in the catalog (the report page will not show it)", "err", err)
		}
	}
	return nil
}

// writeFileAtomic writes path through a temporary file renamed into place
// once complete.
func writeFileAtomic(path string, write func(io.Writer) error) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
