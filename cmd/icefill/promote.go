package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/snapshots"
)

// refusal keeps the kind snapshots marked its errors with (a refusal is
// 4, a missing ref 2); an unmarked one is the catalog's.
func refusal(err error) error {
	if err == nil {
		return nil
	}
	if _, marked := errkind.Of(err); marked {
		return err
	}
	return tableErr(err)
}

func promoteCommand() *cli.Command {
	flags := append(append(catalogFlags(), branchFlag(true),
		&cli.BoolFlag{Name: "skip-validation", Usage: "publish without a passing validation of the branch head (logged loudly and recorded)"},
		&cli.BoolFlag{Name: "accept-risk", Usage: "publish even when the retention settings could make a rollback impossible"},
		&cli.DurationFlag{Name: "tag-retention", Value: snapshots.TagRetention, Usage: "how long the pre-promotion tag is kept (shorter than a year needs --accept-risk)"},
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

` + exitCodesHelp,
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			if err := checkNotify(c); err != nil {
				return err
			}
			cat, err := openCatalog(c)
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
				return refusal(err)
			}
			ev := res.Event
			fmt.Fprintf(c.App.Writer, "promoted %s onto main by %s: main %d -> %d (%d partitions)\n", ev.Branch, ev.Method, ev.From, ev.To, len(ev.Partitions))
			if ev.Tag != "" {
				fmt.Fprintf(c.App.Writer, "  previous main kept as tag %s; undo with: icefill rollback\n", ev.Tag)
			}
			if ev.Skipped {
				fmt.Fprintln(c.App.Writer, "  WARNING: published without validation (--skip-validation)")
			}
			notify(c, "promote", strings.Join(cat.Ident(), "."), ev)
			return nil
		},
	}
}
