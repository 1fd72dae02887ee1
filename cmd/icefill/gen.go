package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/synth"
)

func genEventsCommand() *cli.Command {
	return &cli.Command{
		Name:      "gen-events",
		Usage:     "write a realistic synthetic source of raw events (for demos, tests and benchmarks)",
		UsageText: "icefill gen-events --out DIR|s3://bucket/prefix --from YYYY-MM-DD --to YYYY-MM-DD [--events-per-day N] [--seed S] [--v2-from YYYY-MM-DD]",
		Description: `Writes dt=YYYY-MM-DD folders of Parquet files in the source contract, with what makes
the CLV logic matter: duplicate deliveries (inside a day and re-delivered on later days),
late events, touches days before the order (the corrected logic's lookback), refunds,
null channels, amounts and countries, the "direct" channel, several files per day, the
switch from schema v1 (integer user_id) to v2 (UUID user_id) on --v2-from (that day has
both), a few heavy days, and a very small share of rows that must be rejected.
The same flags always give the same rows.

Example:
   icefill gen-events --out ./events --from 2024-01-01 --to 2024-03-31 --v2-from 2024-02-15

` + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Required: true, Usage: "destination: a path, file:// or s3://bucket/prefix URL"},
			&cli.StringFlag{Name: "from", Required: true, Usage: "first day, YYYY-MM-DD"},
			&cli.StringFlag{Name: "to", Required: true, Usage: "last day, YYYY-MM-DD (inclusive)"},
			&cli.IntFlag{Name: "events-per-day", Value: 100_000, Usage: "average events on a normal day"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "random seed; the same seed gives the same data"},
			&cli.StringFlag{Name: "v2-from", Usage: "first day written as schema v2 (default: the middle of the range)"},
			&cli.IntFlag{Name: "files-per-day", Value: 3, Usage: "Parquet files per day"},
		},
		Action: func(c *cli.Context) error {
			from, err := parseDateFlag(c, "from")
			if err != nil {
				return err
			}
			to, err := parseDateFlag(c, "to")
			if err != nil {
				return err
			}
			if to < from {
				return errkind.Usagef("--to %s is before --from %s", to, from)
			}
			v2 := from + (to-from+1)/2
			if c.String("v2-from") != "" {
				if v2, err = parseDateFlag(c, "v2-from"); err != nil {
					return err
				}
			}
			if c.Int("events-per-day") < 1 {
				return errkind.Usagef("--events-per-day must be positive")
			}
			st, err := objstore.Open(c.Context, c.String("out"), objstore.S3OptionsFromEnv())
			if err != nil {
				return err
			}
			start := time.Now()
			total := int64(0)
			days := int(to-from) + 1
			done := 0
			stats, err := synth.Generate(c.Context, st, synth.Config{
				From: from, To: to, EventsPerDay: c.Int("events-per-day"), Seed: c.Int64("seed"),
				V2From: v2, FilesPerDay: c.Int("files-per-day"),
			}, func(s synth.DayStats) {
				done++
				total += int64(s.Events)
				if isTerminal(c.App.ErrWriter) {
					fmt.Fprintf(c.App.ErrWriter, "\r  %d/%d days, %d events", done, days, total)
				}
			})
			if isTerminal(c.App.ErrWriter) {
				fmt.Fprintln(c.App.ErrWriter)
			}
			if err != nil {
				return fmt.Errorf("generate events into %s: %w", c.String("out"), err)
			}
			var events, files int64
			for _, s := range stats {
				events += int64(s.Events)
				files += int64(s.Files)
			}
			secs := time.Since(start).Seconds()
			fmt.Fprintf(c.App.Writer, "wrote %d events in %d files over %d days (%s … %s, v2 from %s) to %s in %.1fs (%.0f events/s)\n",
				events, files, len(stats), from, to, features.Date(v2), st.URL(""), secs, float64(events)/secs)
			return nil
		},
	}
}
