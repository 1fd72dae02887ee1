package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

func notifyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "notify-cmd", Usage: "shell command run after success, with ICEFILL_EVENT (JSON), ICEFILL_KIND, ICEFILL_TABLE, ICEFILL_FROM_SNAPSHOT, ICEFILL_TO_SNAPSHOT in its environment", EnvVars: []string{"ICEFILL_NOTIFY_CMD"}},
		&cli.StringFlag{Name: "webhook", Usage: "URL that receives the event as a JSON POST after success", EnvVars: []string{"ICEFILL_WEBHOOK"}},
	}
}

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

// checkNotify rejects a malformed --webhook before anything is published:
// afterwards the change could not be undone by fixing the flag.
func checkNotify(c *cli.Context) error {
	raw := c.String("webhook")
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errkind.Usagef("--webhook %q: want an http:// or https:// URL with a host", raw)
	}
	return nil
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
		Description: `Refuses unless the branch head has a passing validation recorded by 'icefill validate'.
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

func rollbackCommand() *cli.Command {
	flags := append(append(catalogFlags(),
		&cli.StringFlag{Name: "to", Usage: "tag or snapshot id to return to (default: the tag of the last promotion)"},
		&cli.BoolFlag{Name: "force", Usage: "restore promoted partitions even though later commits changed them again (those changes are discarded)"},
	), notifyFlags()...)
	return &cli.Command{
		Name:      "rollback",
		Usage:     "put main back as it was before the last promotion, keeping later nightly commits",
		UsageText: "icefill rollback [--to TAG|SNAPSHOT] [--force]",
		Description: `If nothing was committed to main since the promotion, main is reset to the tagged
pre-promotion snapshot. If the nightly job committed since (new days), one new commit on
main restores the promoted partitions to their pre-promotion files and leaves every other
partition as it is now; if a later commit touched one of the promoted partitions, it
refuses and names them, unless --force. Guarded against concurrent change; recorded in
the catalog; undone by promoting again.

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
			ev, err := snapshots.Rollback(c.Context, cat.Iceberg(), cat.Ident(), snapshots.RollbackOptions{To: c.String("to"), Force: c.Bool("force")})
			if err != nil {
				return refusal(err)
			}
			fmt.Fprintf(c.App.Writer, "rolled back main by %s to %s: main %d -> %d (%d partitions restored)\n", ev.Method, ev.Tag, ev.From, ev.To, len(ev.Partitions))
			if ev.Forced {
				fmt.Fprintln(c.App.Writer, "  FORCED (--force): recorded in the history")
			}
			notify(c, "rollback", strings.Join(cat.Ident(), "."), *ev)
			return nil
		},
	}
}

// notify tells downstream consumers; a failure is reported, not fatal: the
// change itself is already published.
func notify(c *cli.Context, kind, tableName string, ev snapshots.Event) {
	payload, _ := json.Marshal(struct {
		Kind  string          `json:"kind"`
		Table string          `json:"table"`
		Event snapshots.Event `json:"event"`
	}{kind, tableName, ev})
	if cmdline := c.String("notify-cmd"); cmdline != "" {
		cmd := exec.CommandContext(c.Context, "sh", "-c", cmdline)
		cmd.Env = append(os.Environ(), "ICEFILL_EVENT="+string(payload), "ICEFILL_KIND="+kind, "ICEFILL_TABLE="+tableName,
			fmt.Sprintf("ICEFILL_FROM_SNAPSHOT=%d", ev.From), fmt.Sprintf("ICEFILL_TO_SNAPSHOT=%d", ev.To))
		cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
		if err := cmd.Run(); err != nil {
			logger().Warn("notify command failed; the change itself is published", "err", err)
		}
	}
	if url := c.String("webhook"); url != "" {
		ctx, cancel := context.WithTimeout(c.Context, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(payload))
		var resp *http.Response
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
			resp, err = http.DefaultClient.Do(req)
		}
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode >= 300 {
				err = fmt.Errorf("HTTP %d", resp.StatusCode)
			}
		}
		if err != nil {
			logger().Warn("webhook failed; the change itself is published", "err", err)
		}
	}
}

func historyCommand() *cli.Command {
	flags := append(catalogFlags(), &cli.BoolFlag{Name: "json", Usage: "print as JSON"})
	return &cli.Command{
		Name:   "history",
		Usage:  "the table's story from the catalog: branches and their progress, validations, promotions, rollbacks, tags",
		Flags:  flags,
		Before: configFileBefore(flags),
		Action: func(c *cli.Context) error {
			cat, tbl, err := openTable(c)
			if err != nil {
				return err
			}
			defer cat.Close()
			events, err := snapshots.ReadHistory(tbl.Properties())
			if err != nil {
				return err
			}
			type refInfo struct {
				Name       string                `json:"name"`
				Type       string                `json:"type"`
				Snapshot   int64                 `json:"snapshot"`
				Status     *rewrite.Status       `json:"status,omitempty"`
				Validation *snapshots.Validation `json:"validation,omitempty"`
			}
			var refs []refInfo
			for name, r := range tbl.Metadata().Refs() {
				ri := refInfo{Name: name, Type: string(r.SnapshotRefType), Snapshot: r.SnapshotID}
				if r.SnapshotRefType == "branch" && name != "main" {
					if st, err := rewrite.BranchStatus(tbl, name); err == nil && st.Done > 0 {
						ri.Status = st
					}
				}
				ri.Validation, _ = snapshots.ReadValidation(tbl.Properties(), name)
				refs = append(refs, ri)
			}
			sort.Slice(refs, func(i, j int) bool {
				return refs[i].Type < refs[j].Type || refs[i].Type == refs[j].Type && refs[i].Name < refs[j].Name
			})
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"refs": refs, "events": events})
			}
			w := c.App.Writer
			fmt.Fprintf(w, "table %s\n\nREFS\n", strings.Join(cat.Ident(), "."))
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			for _, r := range refs {
				line := fmt.Sprintf("  %s\t%s\t%d", r.Type, r.Name, r.Snapshot)
				if r.Status != nil {
					line += fmt.Sprintf("\tbackfill %d/%d partitions", r.Status.Done, r.Status.Total)
				}
				if v := r.Validation; v != nil {
					state := "validated"
					if v.CandidateSnapshot != r.Snapshot {
						state = "validated an older head"
					}
					line += fmt.Sprintf("\t%s %s by %s", state, time.UnixMilli(v.At).UTC().Format(time.RFC3339), v.By)
				}
				fmt.Fprintln(tw, line)
			}
			tw.Flush()
			fmt.Fprintln(w, "\nPROMOTIONS AND ROLLBACKS")
			if len(events) == 0 {
				fmt.Fprintln(w, "  none")
			}
			for _, ev := range events {
				fmt.Fprintf(w, "  %s  %-8s %-12s branch %-10s main %d -> %d  %d partitions  by %s", time.UnixMilli(ev.At).UTC().Format(time.RFC3339),
					ev.Kind, ev.Method, ev.Branch, ev.From, ev.To, len(ev.Partitions), ev.By)
				if ev.Tag != "" {
					fmt.Fprintf(w, "  tag %s", ev.Tag)
				}
				if ev.Skipped {
					fmt.Fprint(w, "  WITHOUT VALIDATION")
				}
				if ev.RolledBack {
					fmt.Fprint(w, "  (rolled back)")
				}
				fmt.Fprintln(w)
			}
			return nil
		},
	}
}
