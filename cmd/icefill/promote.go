package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/snapshots"
)

func promoteCommand() *cli.Command {
	flags := append(append(catalogFlags(), branchFlagUsage("the validated branch to publish onto main"),
		&cli.BoolFlag{Name: "skip-validation", Usage: "publish without a passing validation of the branch head (logged loudly and recorded)"},
		&cli.BoolFlag{Name: "accept-risk", Usage: "publish even when the retention settings could make a rollback impossible"},
		&cli.DurationFlag{Name: "tag-retention", Value: snapshots.TagRetention, Usage: "how long the pre-promotion tag is kept (shorter than a year needs --accept-risk)"},
		jsonFlag(),
	), notifyFlags()...)
	return &cli.Command{
		Name:      "promote",
		Usage:     "publish a validated branch onto main atomically (tagging main first)",
		UsageText: "icefill promote --branch clv-fix [--notify-cmd CMD] [--webhook URL]",
		Description: `Publishes only what a validation certified: icefill lists, file set by file set, the
partitions publishing changes on main, and refuses (exit 4, naming them and the validate
to run) unless the branch's recorded validation certifies each with exactly main's
current files as base and the published files as candidate.
Tags main's current snapshot (pre-promote-<branch>-<time>-<snapshot>, kept for 100 years)
so it can always be rolled back to, then:
  - if main has not moved since the branch was made, fast-forwards main to the branch head
    in one catalog commit guarded by main's old snapshot id;
  - if the nightly job moved main on, lists the partitions main changed since the fork.
    If the branch recomputed all of them after the change, it rebuilds the branch's
    partitions on top of main's head (metadata only: the branch's files replace main's for
    those days, every other day of main is kept), then fast-forwards. Otherwise it refuses
    and names the days: 'icefill run --catch-up' recomputes exactly those.
Never loses a commit that landed on main: if main moves during the promotion, nothing is
published and the command says so (exit 4). The promotion is recorded in the catalog.

Examples:
   icefill promote --branch clv-fix
   icefill promote --branch clv-fix --webhook https://hooks.example.com/icefill --json

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			if err := checkNotify(c); err != nil {
				return err
			}
			cat, err := openCatalog(c, false)
			if err != nil {
				return err
			}
			defer cat.Close()
			res, err := snapshots.Promote(c.Context, cat.Iceberg(), cat.Ident(), snapshots.PromoteOptions{
				Branch: c.String("branch"), SkipValidation: c.Bool("skip-validation"), AcceptRisk: c.Bool("accept-risk"),
				TagRetention: c.Duration("tag-retention"), Log: logger(),
			})
			if res != nil {
				for _, r := range res.Risks {
					fmt.Fprintf(c.App.ErrWriter, "retention risk: %s\n", r)
				}
			}
			if err != nil {
				return err
			}
			if err := printReport(c, newPublishReport(res.Event, res.Risks)); err != nil {
				return err
			}
			notify(c, "promote", strings.Join(cat.Ident(), "."), res.Event)
			return nil
		},
	}
}

// publishReport is what promote and rollback print: the event they
// recorded in the catalog, every field present.
type publishReport struct {
	Kind       string                `json:"kind"`   // promote | rollback
	Method     string                `json:"method"` // fast-forward | rebase | reset | restore
	Branch     string                `json:"branch"`
	From       int64                 `json:"from"` // main's snapshot before
	To         int64                 `json:"to"`   // and after
	Tag        string                `json:"tag"`
	Partitions []string              `json:"partitions"`
	Validation *snapshots.Validation `json:"validation"` // null when published without one
	Skipped    bool                  `json:"validation_skipped"`
	Forced     bool                  `json:"forced"`
	RolledBack bool                  `json:"rolled_back"` // a promotion a later rollback undid
	At         time.Time             `json:"at"`
	By         string                `json:"by"`
	Risks      []string              `json:"retention_risks"` // accepted with --accept-risk
}

func newPublishReport(ev snapshots.Event, risks []string) *publishReport {
	return &publishReport{Kind: ev.Kind, Method: ev.Method, Branch: ev.Branch, From: ev.From, To: ev.To, Tag: ev.Tag,
		Partitions: orEmpty(ev.Partitions), Validation: ev.Validation, Skipped: ev.Skipped, Forced: ev.Forced, RolledBack: ev.RolledBack,
		At: time.UnixMilli(ev.At).UTC(), By: ev.By, Risks: orEmpty(risks)}
}

func (r *publishReport) writeText(w io.Writer) error {
	if r.Kind == "rollback" {
		fmt.Fprintf(w, "rolled back main by %s to %s: main %d -> %d (%d partitions restored)\n", r.Method, r.Tag, r.From, r.To, len(r.Partitions))
		if r.Forced {
			fmt.Fprintln(w, "  FORCED (--force): recorded in the history")
		}
		return nil
	}
	fmt.Fprintf(w, "promoted %s onto main by %s: main %d -> %d (%d partitions)\n", r.Branch, r.Method, r.From, r.To, len(r.Partitions))
	if r.Tag != "" {
		fmt.Fprintf(w, "  previous main kept as tag %s; undo with: icefill rollback\n", r.Tag)
	}
	if r.Skipped {
		fmt.Fprintln(w, "  WARNING: published without validation (--skip-validation)")
	}
	return nil
}
