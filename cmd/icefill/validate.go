package main

import (
	"encoding/json"
	"io"
	"time"

	"fmt"
	"os"
	"strings"

	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/snapshots"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/validate"
)

func validateCommand() *cli.Command {
	flags := append(catalogFlags(),
		&cli.StringFlag{Name: "base", Value: "main", Usage: "the reference: a branch, tag or snapshot id", EnvVars: []string{"ICEFILL_BASE"}},
		&cli.StringFlag{Name: "candidate", Usage: "the ref to validate: a branch, tag or snapshot id (required)", EnvVars: []string{"ICEFILL_CANDIDATE"}},
		&cli.StringFlag{Name: "from", Usage: "first partition day compared, YYYY-MM-DD (default: the first of either ref)"},
		&cli.StringFlag{Name: "to", Usage: "last partition day compared, YYYY-MM-DD, inclusive (default: the last of either ref)"},
		&cli.StringFlag{Name: "expected", TakesFile: true, Usage: "YAML `FILE` declaring the intended differences and rule overrides (see docs/expected-clv-fix.yaml)"},
		&cli.StringFlag{Name: "report", TakesFile: true, Usage: "also write the full report as JSON to `FILE`"},
		&cli.IntFlag{Name: "sample", Value: validate.DefaultSample, Usage: "differing keys shown old beside new (0 for none)"},
		&cli.IntFlag{Name: "workers", Usage: "partitions compared at once", DefaultText: "min(CPUs, 4)", EnvVars: []string{"ICEFILL_WORKERS"}},
		jsonFlag(),
		&cli.BoolFlag{Name: "no-record", Usage: "do not record a pass in the catalog (a recorded pass is what promote requires)"},
	)
	return &cli.Command{
		Name:      "validate",
		Usage:     "compare a candidate ref with a base ref and judge the differences against the declared ones",
		UsageText: "icefill validate --base main --candidate clv-fix [--from YYYY-MM-DD --to YYYY-MM-DD] [--expected expected.yaml] [--report report.json] [--sample N]",
		Description: `Reads both refs once (partition by partition) and compares:
   - partitions present on one side only (they fail unless declared, metric "partitions");
   - rows and the sums of orders, gross_revenue_cents, refund_cents, net_revenue_cents
     overall, per partition, per month, per country and per channel, with the relative
     difference of each group;
   - the null rate of every column; new columns (absent or all null on base) and dropped
     ones are reported apart;
   - customer lifetime value (sum of net_revenue_cents per customer): p50, p90, p99 and
     the two-sample Kolmogorov-Smirnov statistic D with its approximate p-value;
   - invariants of the candidate: (event_date, customer_id, channel) unique,
     net = gross - refund, orders, refund_cents, touches_7d, distinct_channels_7d >= 0;
   - a sample of keys whose values differ, old beside new.

A metric passes when at least 95% of a dimension's groups differ by less than 0.5%
(both adjustable per metric and dimension in the expected file). Differences declared
in --expected (metric, dimension, direction up|down|any, bound, reason) are reported as
expected when they stay within their direction and bound, and fail otherwise. Invariant
violations always fail.

A pass is recorded in the table (property icefill.validation.<candidate>: which candidate
snapshot was validated against which base snapshot, when, by whom, with which expected
file), pinned to both snapshots: promote requires it for the branch head, from any
machine. --no-record skips that.

Examples:
   icefill validate --base main --candidate clv-fix --expected docs/expected-clv-fix.yaml --report validation.json
   icefill validate --base clv-fix --candidate clv-fix-rerun --from 2024-01-01 --to 2024-03-31

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			opts, err := validateOptions(c)
			if err != nil {
				return err
			}
			cat, tbl, err := openTable(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			logger().Info("validating", "table", cat.Describe(), "base", opts.Base, "candidate", opts.Candidate)
			rep, err := validate.Compare(c.Context, tbl, opts)
			if err != nil {
				return fmt.Errorf("validate: %w", err)
			}
			if path := c.String("report"); path != "" {
				if err := writeReportFile(path, rep); err != nil {
					return errkind.Usagef("--report: %w", err)
				}
			}
			if err := printReport(c, validateReport{rep}); err != nil {
				return err
			}
			if !rep.Pass {
				return fmt.Errorf("validation of %s against %s failed: %d checks failed", opts.Candidate, opts.Base, rep.Counts[validate.StatusFail])
			}
			if c.Bool("no-record") {
				return nil
			}
			rec := snapshots.Validation{Candidate: opts.Candidate, CandidateSnapshot: rep.CandidateSnapshot, Base: opts.Base,
				BaseSnapshot: rep.BaseSnapshot, From: rep.From, To: rep.To, Checks: len(rep.Checks), Expected: c.String("expected"),
				At: time.Now().UnixMilli(), By: snapshots.Who()}
			if err := snapshots.RecordValidation(c.Context, cat.Iceberg(), cat.Ident(), rec); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "recorded: %s snapshot %d passed against %s snapshot %d\n", opts.Candidate, rep.CandidateSnapshot, opts.Base, rep.BaseSnapshot)
			return nil
		},
	}
}

// validateOptions reads the flags; every problem is a usage error.
func validateOptions(c *cli.Context) (validate.Options, error) {
	opts := validate.Options{
		Base:      strings.TrimSpace(c.String("base")),
		Candidate: strings.TrimSpace(c.String("candidate")),
		Sample:    c.Int("sample"),
		Workers:   c.Int("workers"),
	}
	if opts.Candidate == "" {
		return opts, errkind.Usagef("--candidate is required: the branch, tag or snapshot id to validate")
	}
	if opts.Base == "" {
		return opts, errkind.Usagef("--base must name a branch, tag or snapshot id")
	}
	if opts.Sample == 0 {
		opts.Sample = -1 // Options reads 0 as the default
	} else if opts.Sample < 0 {
		return opts, errkind.Usagef("--sample %d: want a count >= 0", opts.Sample)
	}
	if c.IsSet("workers") || opts.Workers != 0 {
		if _, err := workersFlag(c); err != nil {
			return opts, err
		}
	}
	for _, name := range []string{"from", "to"} {
		if strings.TrimSpace(c.String(name)) == "" {
			continue
		}
		d, err := parseDateFlag(c, name)
		if err != nil {
			return opts, err
		}
		if name == "from" {
			opts.From = &d
		} else {
			opts.To = &d
		}
	}
	if opts.From != nil && opts.To != nil && *opts.To < *opts.From {
		return opts, errkind.Usagef("--to %s is before --from %s", *opts.To, *opts.From)
	}
	if path := c.String("expected"); path != "" {
		exp, err := validate.LoadExpected(path)
		if err != nil {
			return opts, errkind.Usagef("--expected: %v", err)
		}
		opts.Expected = exp
	}
	return opts, nil
}

// writeReportFile writes the JSON report, replacing the file only once the
// whole report is written.
func writeReportFile(path string, rep *validate.Report) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if err := rep.WriteJSON(f); err != nil {
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

// validateReport prints the validation report: the package's text, and its
// JSON document (the same one --report writes).
type validateReport struct{ rep *validate.Report }

func (r validateReport) writeText(w io.Writer) error  { return r.rep.WriteText(w) }
func (r validateReport) MarshalJSON() ([]byte, error) { return json.Marshal(r.rep) }
