package main

import (
	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/rewrite"
)

func sourceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "source", Required: true, Usage: "raw events root: a path, file:// or s3://bucket/prefix URL holding dt=YYYY-MM-DD folders", EnvVars: []string{"ICEFILL_SOURCE"}},
		&cli.BoolFlag{Name: "allow-missing", Usage: "treat missing source days as empty instead of stopping"},
		&cli.Float64Flag{Name: "max-reject-rate", Value: features.DefaultRejectLimit, Usage: "fail a partition whose rejected rows exceed this share of its rows (0.001 = 0.1%)"},
	}
}

func logicFlag() cli.Flag {
	return &cli.StringFlag{Name: "logic", Value: string(features.Corrected), Usage: "business logic: corrected (the fix, default) or legacy (the production bug, for reproducing main)", EnvVars: []string{"ICEFILL_LOGIC"}}
}

func parseLogic(c *cli.Context) (features.Logic, error) {
	l, ok := features.ParseLogic(c.String("logic"))
	if !ok {
		return "", errkind.Usagef("--logic %q: want corrected or legacy", c.String("logic"))
	}
	return l, nil
}

func parseDateFlag(c *cli.Context, name string) (features.Date, error) {
	d, err := features.ParseDate(c.String(name))
	if err != nil {
		return 0, errkind.Usagef("--%s: %v", name, err)
	}
	return d, nil
}

func rangeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "from", Usage: "first partition day, YYYY-MM-DD (required)", EnvVars: []string{"ICEFILL_FROM"}},
		&cli.StringFlag{Name: "to", Usage: "last partition day, YYYY-MM-DD, inclusive (required)", EnvVars: []string{"ICEFILL_TO"}},
		logicFlag(),
		&cli.StringFlag{Name: "order", Value: string(rewrite.NewestFirst), Usage: "newest-first (recent days repaired first) or oldest-first", EnvVars: []string{"ICEFILL_ORDER"}},
		&cli.BoolFlag{Name: "force", Usage: "recompute partitions even when their checkpoint is current"},
		&cli.StringFlag{Name: "shard", Usage: "INDEX/COUNT: take every COUNT-th partition starting at INDEX (0-based), to split one backfill across processes; " +
			"auto: INDEX from JOB_COMPLETION_INDEX, COUNT from ICEFILL_SHARD_COUNT (a Kubernetes Indexed Job; the default when JOB_COMPLETION_INDEX is set)", EnvVars: []string{"ICEFILL_SHARD"}},
	}
}

// branchFlagUsage is a required --branch with a command's own wording.
func branchFlagUsage(usage string) cli.Flag {
	return &cli.StringFlag{Name: "branch", Required: true, Usage: usage, EnvVars: []string{"ICEFILL_BRANCH"}, Action: checkBranchFlag}
}

type rangeArgs struct {
	days          []features.Date
	logic         features.Logic
	order         rewrite.Order
	shard, shards int
}

func parseRange(c *cli.Context) (rangeArgs, error) {
	var r rangeArgs
	if c.String("from") == "" || c.String("to") == "" {
		return r, errkind.Usagef("--from and --to are required")
	}
	from, err := parseDateFlag(c, "from")
	if err != nil {
		return r, err
	}
	to, err := parseDateFlag(c, "to")
	if err != nil {
		return r, err
	}
	if to < from {
		return r, errkind.Usagef("--to %s is before --from %s", to, from)
	}
	r.days = features.DaysBetween(from, to)
	if r.logic, err = parseLogic(c); err != nil {
		return r, err
	}
	if r.order, err = rewrite.ParseOrder(c.String("order")); err != nil {
		return r, errkind.Usagef("--order: %w", err)
	}
	if r.shard, r.shards, err = shardFromEnv(c.String("shard")); err != nil {
		return r, err
	}
	return r, nil
}

// workersFlag reads --workers: a count of at least 1.
func workersFlag(c *cli.Context) (int, error) {
	n := c.Int("workers")
	if n < 1 {
		return 0, errkind.Usagef("--workers %d: want a count of at least 1", n)
	}
	return n, nil
}
