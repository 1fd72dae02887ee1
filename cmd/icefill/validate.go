package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/snapshots"
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
		&cli.BoolFlag{Name: "no-record", Usage: "do not record a pass in the catalog (a recorded pass is what promote requires), nor the summary the report page shows"},
		validationHTMLFlag(),
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

What it found, pass or fail, is kept in the table (property icefill.validation-report.
<candidate>) for 'icefill report'; --html also writes it as a page of its own.

A pass is recorded in the table (property icefill.validation.<candidate>) as a
certificate of exact content: the candidate and base snapshots and, for every partition
compared, the digests of its files on both sides. promote publishes a partition only
when that certificate holds main's current files as base and the published files as
candidate, from any machine. --from/--to certify only the partitions in range (passes
of the same candidate snapshot add up); the partitions that differ outside the range
are listed and promote asks for them. Refused (exit 4) and never recorded: a ref
against itself, a range with no partition, and (when recording) a base that is not a
snapshot main has been. --no-record compares without recording (e.g. two branches).

Examples:
   icefill validate --base main --candidate clv-fix --expected docs/expected-clv-fix.yaml --report validation.json
   icefill validate --base clv-fix --candidate clv-fix-rerun --from 2024-01-01 --to 2024-03-31 --no-record

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
			cert, outside, err := certifiable(c, tbl, opts)
			if err != nil {
				return err
			}
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
			if err := publishValidation(c, cat, rep); err != nil {
				return err
			}
			if !rep.Pass {
				return (fmt.Errorf("validation of %s against %s failed: %d checks failed", opts.Candidate, opts.Base, rep.Counts[validate.StatusFail]))
			}
			if c.Bool("no-record") {
				return nil
			}
			if rep.BaseSnapshot != cert.base || rep.CandidateSnapshot != cert.cand {
				return errkind.UnavailableError(fmt.Errorf("%s or %s moved while being validated; validate again", opts.Base, opts.Candidate))
			}
			rec := snapshots.Validation{Candidate: opts.Candidate, CandidateSnapshot: rep.CandidateSnapshot, Base: opts.Base,
				BaseSnapshot: rep.BaseSnapshot, From: rep.From, To: rep.To, Checks: len(rep.Checks), Expected: c.String("expected"),
				At: time.Now().UnixMilli(), By: snapshots.Who(), Partitions: cert.partitions}
			if err := snapshots.RecordValidation(c.Context, cat.Iceberg(), cat.Ident(), rec); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "recorded: %s snapshot %d passed against %s snapshot %d (%d partitions certified)\n",
				opts.Candidate, rep.CandidateSnapshot, opts.Base, rep.BaseSnapshot, len(cert.partitions))
			if len(outside) > 0 {
				fmt.Fprintf(c.App.ErrWriter, "not compared by this pass: %d partition(s) that differ outside --from/--to (%s … %s); promote publishes them only once a pass of them is recorded\n",
					len(outside), outside[0], outside[len(outside)-1])
			}
			return nil
		},
	}
}

// certificate is what a pass of this validation will certify.
type certificate struct {
	base, cand int64
	partitions map[string]snapshots.CertEntry
}

// certifiable refuses, before comparing anything, a validation that could
// not be a pass: a ref against itself, a range holding no partition, and
// (when the pass is to be recorded) a base main has never been.
func certifiable(c *cli.Context, tbl *table.Table, opts validate.Options) (*certificate, []string, error) {
	base, err := validate.ResolveRef(tbl, opts.Base)
	if err != nil {
		return nil, nil, errkind.Usagef("--base: %v", err)
	}
	cand, err := validate.ResolveRef(tbl, opts.Candidate)
	if err != nil {
		return nil, nil, errkind.Usagef("--candidate: %v", err)
	}
	if err := snapshots.CheckValidationRefs(tbl, opts.Base, opts.Candidate, base.SnapshotID, cand.SnapshotID); err != nil {
		// Without recording, only a comparison with itself is refused:
		// two branches may be compared, it just certifies nothing.
		self := opts.Base == opts.Candidate || base.SnapshotID == cand.SnapshotID
		if self || !c.Bool("no-record") {
			return nil, nil, err
		}
	}
	parts, outside, err := snapshots.Certify(c.Context, tbl, base.SnapshotID, cand.SnapshotID, opts.From, opts.To)
	if err != nil {
		return nil, nil, errkind.UnavailableError(err)
	}
	if len(parts) == 0 {
		return nil, nil, errkind.Refusedf("%v: neither %s nor %s has a partition in the range; a comparison of nothing is not a pass", snapshots.ErrNotValidated, opts.Base, opts.Candidate)
	}
	return &certificate{base: base.SnapshotID, cand: cand.SnapshotID, partitions: parts}, outside, nil
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
	return writeFileAtomic(path, rep.WriteJSON)
}

// validateReport prints the validation report: the package's text, and its
// JSON document (the same one --report writes).
type validateReport struct{ rep *validate.Report }

func (r validateReport) writeText(w io.Writer) error  { return r.rep.WriteText(w) }
func (r validateReport) MarshalJSON() ([]byte, error) { return json.Marshal(r.rep) }
