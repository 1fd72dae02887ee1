package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/spill"
)

// memoryFlags are the memory budget flags of run, compute, bench and plan.
func memoryFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "memory-limit", EnvVars: []string{"ICEFILL_MEMORY_LIMIT"},
			Usage: "memory budget of this process, e.g. 512MiB or 12GiB (at least 256MiB): the process's peak resident memory stays within it (measured, not a bound in run: the write and commit of one partition beside the next one's compute are not reserved in it; docs/performance.md). A partition whose window of days (from the Parquet footers) does not fit runs on the external path: its events are bucketed on local disk and computed bucket by bucket, with identical rows; a window too large for the budget fails before anything is computed (run: before any partition is committed), a single customer too large for it fails its partition; both exit 2 naming the budget they need. Go's soft memory limit is set to the budget less the executable's own pages. Default: 60% of the container's cgroup limit, or of physical memory (used with a warning when below 256MiB)"},
		&cli.StringFlag{Name: "spill-dir", EnvVars: []string{"ICEFILL_SPILL_DIR"},
			Usage: "local folder for the external path's files (default: the temp directory); they are removed when the process ends, and leftovers of a killed process by the next run"},
	}
}

// memoryOptions reads the budget flags into opts, prints the budget, sets
// Go's soft memory limit and opens this process's spill folder (owned by
// the Inputs made from opts: Inputs.Close removes it).
func memoryOptions(c *cli.Context, opts *rewrite.InputOptions) error {
	limit, from := spill.DefaultLimit()
	if s := c.String("memory-limit"); s != "" {
		v, err := spill.ParseSize(s)
		if err != nil {
			return errkind.Usagef("--memory-limit: %v", err)
		}
		if v < spill.MinLimit {
			return errkind.Usagef("--memory-limit %s: below the minimum of %s", s, spill.FormatSize(spill.MinLimit))
		}
		limit, from = v, "--memory-limit"
	} else if msg := lowDefault(limit, from); msg != "" {
		logger().Warn(msg)
	}
	opts.MemoryLimit = limit
	if v := os.Getenv("ICEFILL_SPILL_BUCKETS"); v != "" {
		// Tests: every partition on the external path, in v buckets.
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errkind.Usagef("ICEFILL_SPILL_BUCKETS=%q: want a positive number", v)
		}
		opts.SpillBuckets = n
	}
	if v := os.Getenv("ICEFILL_SPILL_EVENT_BYTES"); v != "" {
		// Tests: what one event of a bucket counts for, so that a
		// customer of a few events is too heavy for the budget.
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return errkind.Usagef("ICEFILL_SPILL_EVENT_BYTES=%q: want a positive number", v)
		}
		opts.SpillEventBytes = n
	}
	if !hasFlag(c, "spill-dir") {
		// plan: sizes partitions, computes nothing.
		return nil
	}
	// Go's soft limit is the budget less what the runtime cannot count
	// (the executable's mapped pages): the budget bounds the resident set.
	goLimit := spill.Budget{Limit: limit}.GoLimit()
	debug.SetMemoryLimit(goLimit)
	dir, err := spill.OpenDir(c.String("spill-dir"))
	if err != nil {
		return err
	}
	logger().Info("memory budget", "limit", spill.FormatSize(limit), "from", from, "go_limit", spill.FormatSize(goLimit), "spill_dir", dir.Path)
	opts.SpillDir = dir
	return nil
}

// lowDefault is the warning for a default budget below spill.MinLimit (a
// small container): the executable's pages and the runtime leave too
// little of it for the events, so Go's collector runs almost constantly
// and the external path's buckets are tiny. "" when the budget is not low.
func lowDefault(limit int64, from string) string {
	if limit >= spill.MinLimit {
		return ""
	}
	return fmt.Sprintf("the default memory budget, %s (%s), is below the %s a budget needs: expect a slow run; give the container more memory, or set --memory-limit to at least %s if it has room",
		spill.FormatSize(limit), from, spill.FormatSize(spill.MinLimit), spill.FormatSize(spill.MinLimit))
}

func hasFlag(c *cli.Context, name string) bool {
	for _, f := range c.Command.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

// planEstimates sizes the partitions to compute from their Parquet
// footers: the window's rows and whether it runs in memory or spills.
func planEstimates(c *cli.Context, in *rewrite.Inputs, p *rewrite.Plan, logic features.Logic) map[features.Date]rewrite.Estimate {
	ests := map[features.Date]rewrite.Estimate{}
	if p == nil {
		return ests
	}
	for _, pp := range p.Todo() {
		est, err := in.Estimate(c.Context, pp.Day, logic)
		if err != nil {
			logger().Warn("cannot size partition", "day", pp.Day, "err", err)
			continue
		}
		if est.TooLarge != nil {
			logger().Warn("partition too large for the memory budget", "day", pp.Day, "err", est.TooLarge)
		}
		ests[pp.Day] = est
	}
	return ests
}
