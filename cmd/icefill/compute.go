package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/pqfile"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/source"
)

type computeSummary struct {
	Date          string               `json:"date"`
	Logic         string               `json:"logic"`
	LogicVersion  string               `json:"logic_version"`
	Fingerprint   string               `json:"source_fingerprint"`
	InputRows     int64                `json:"input_rows"`
	Rejected      int64                `json:"rejected_rows"`
	RejectReasons []source.ReasonCount `json:"reject_reasons"`
	OutputRows    int64                `json:"output_rows"`
	Totals        features.Totals      `json:"totals"`
	Seconds       float64              `json:"seconds"`
	Output        string               `json:"output"`
	Rejects       string               `json:"rejects"`
}

func computeCommand() *cli.Command {
	return &cli.Command{
		Name:      "compute",
		Usage:     "compute one partition from the source, without any catalog",
		UsageText: "icefill compute --source DIR|s3://… --date YYYY-MM-DD [--logic corrected|legacy] [--out rows.parquet]",
		Description: `Reads the source day --date (and, for the corrected logic, the seven days before it),
applies the logic and prints a summary of the partition. With --out the rows are written
to a Parquet file; rejected rows go beside it as <out>.rejects.parquet. Nothing is
committed anywhere: this is for looking at one partition.

Example:
   icefill compute --source ./events --date 2024-03-01 --out /tmp/2024-03-01.parquet
   icefill compute --source ./events --date 2024-03-01 --logic legacy --json

` + exitCodesHelp,
		Flags: append(sourceFlags(),
			&cli.StringFlag{Name: "date", Required: true, Usage: "the partition day, YYYY-MM-DD"},
			logicFlag(),
			&cli.StringFlag{Name: "out", Usage: "write the rows to this Parquet file (local path or s3:// URL)"},
			jsonFlag(),
			memoryFlags()[0], memoryFlags()[1],
		),
		Action: func(c *cli.Context) error {
			d, err := parseDateFlag(c, "date")
			if err != nil {
				return err
			}
			logic, err := parseLogic(c)
			if err != nil {
				return err
			}
			return runCompute(c, d, logic)
		},
	}
}

func runCompute(c *cli.Context, d features.Date, logic features.Logic) error {
	ctx := c.Context
	start := time.Now()
	src, err := source.Open(ctx, c.String("source"), objstore.S3OptionsFromEnv())
	if err != nil {
		return err
	}
	opts := rewrite.InputOptions{AllowMissing: c.Bool("allow-missing")}
	if err := memoryOptions(c, &opts); err != nil {
		return err
	}
	in, err := rewrite.NewInputs(ctx, src, opts)
	if err != nil {
		opts.SpillDir.Close()
		return err
	}
	defer in.Close()
	if _, _, err := in.CheckMissing([]features.Date{d}, logic); err != nil {
		return err
	}
	p, err := in.Compute(ctx, d, logic, c.Float64("max-reject-rate"))
	if err != nil {
		return err
	}
	sum := computeSummary{
		Date: d.String(), Logic: string(logic), LogicVersion: logic.Version(), Fingerprint: p.Fingerprint,
		InputRows: p.InputRows, Rejected: p.Rejected, OutputRows: p.Rows(), Totals: p.Totals(),
	}
	defer p.Release()
	sum.RejectReasons = p.RejectReasons()
	if out := c.String("out"); out != "" {
		dir, base := filepath.Split(out)
		st, err := objstore.Open(ctx, dirOrDot(dir), objstore.S3OptionsFromEnv())
		if err != nil {
			return err
		}
		schema := features.FullSchema
		if logic == features.Legacy {
			schema = features.LegacySchema
		}
		if err := pqfile.WriteSeq(ctx, st, base, schema, p.Records(ctx, schema)); err != nil {
			return err
		}
		sum.Output = st.URL(base)
		if p.Rejected > 0 {
			if err := p.WriteRejects(ctx, st, base+".rejects.parquet"); err != nil {
				return err
			}
			sum.Rejects = st.URL(base + ".rejects.parquet")
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	return printReport(c, &sum)
}

// MarshalJSON keeps reject_reasons an array when nothing was rejected.
func (sum *computeSummary) MarshalJSON() ([]byte, error) {
	type plain computeSummary
	p := plain(*sum)
	p.RejectReasons = orEmpty(p.RejectReasons)
	return json.Marshal(p)
}

func (sum *computeSummary) writeText(w io.Writer) error {
	fmt.Fprintf(w, "partition %s  logic %s (%s)\n", sum.Date, sum.Logic, sum.LogicVersion)
	fmt.Fprintf(w, "  input rows      %d (rejected %d)\n", sum.InputRows, sum.Rejected)
	for _, r := range sum.RejectReasons {
		fmt.Fprintf(w, "    rejected: %-28s %d\n", r.Reason, r.Count)
	}
	fmt.Fprintf(w, "  output rows     %d\n", sum.OutputRows)
	fmt.Fprintf(w, "  orders          %d\n", sum.Totals.Orders)
	fmt.Fprintf(w, "  gross cents     %d\n", sum.Totals.Gross)
	fmt.Fprintf(w, "  refund cents    %d\n", sum.Totals.Refund)
	fmt.Fprintf(w, "  net cents       %d\n", sum.Totals.Net)
	fmt.Fprintf(w, "  fingerprint     %s\n", sum.Fingerprint)
	if sum.Output != "" {
		fmt.Fprintf(w, "  rows written to %s\n", sum.Output)
	}
	if sum.Rejects != "" {
		fmt.Fprintf(w, "  rejected rows   %s\n", sum.Rejects)
	}
	_, err := fmt.Fprintf(w, "  took            %.2fs\n", sum.Seconds)
	return err
}

func dirOrDot(dir string) string {
	if dir == "" {
		return "."
	}
	return dir
}
