package main

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/metrics"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/source"
	"github.com/icefill/icefill/spill"
)

// metricsFlags are run's --metrics-addr and --metrics-linger.
func metricsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "metrics-addr", EnvVars: []string{"ICEFILL_METRICS_ADDR"},
			Usage: "serve Prometheus metrics at http://HOST:PORT/metrics while the run lasts, e.g. :9464 (port 0 picks one; the address is logged)"},
		&cli.DurationFlag{Name: "metrics-linger", EnvVars: []string{"ICEFILL_METRICS_LINGER"},
			Usage: "with --metrics-addr: keep serving this long after the run ends, so a last scrape sees the final values; SIGTERM or Ctrl-C ends it early"},
	}
}

// startMetrics serves the run's metrics when --metrics-addr is set and
// returns the progress to hand the run (prog, also feeding the metrics) and
// the function that stops serving, after --metrics-linger.
func startMetrics(c *cli.Context, prog rewrite.Progress) (rewrite.Progress, func(), error) {
	addr := c.String("metrics-addr")
	if addr == "" {
		return prog, func() {}, nil
	}
	m := metrics.New(c.String("branch"), metrics.Counters{SpillBytesWritten: spill.BytesWritten.Load, SpillBytesOnDisk: spill.BytesOnDisk.Load,
		SourceBytesRead: source.BytesRead.Load})
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.Context))
	bound, err := m.Serve(ctx, addr)
	if err != nil {
		cancel()
		return nil, nil, errkind.Usagef("--metrics-addr %s: %v", addr, err)
	}
	logger().Info("serving Prometheus metrics", "url", "http://"+bound+"/metrics")
	stop := func() {
		if linger := c.Duration("metrics-linger"); linger > 0 {
			logger().Info("run ended; still serving metrics", "url", "http://"+bound+"/metrics", "for", linger.String())
			t := time.NewTimer(linger)
			select {
			case <-t.C:
			case <-c.Context.Done():
			}
			t.Stop()
		}
		cancel()
	}
	return &metricsProgress{Progress: prog, m: m}, stop, nil
}

// metricsProgress feeds the metrics from the run's progress events.
type metricsProgress struct {
	rewrite.Progress
	m    *metrics.Run
	plan atomic.Pointer[rewrite.Plan]
}

func (p *metricsProgress) Planned(plan *rewrite.Plan) {
	p.Progress.Planned(plan)
	p.plan.Store(plan)
	p.m.Remaining(0, plan.Remaining(nil))
}

// Committed also counts what remains of the whole job in the state the
// commit left: every shard's checkpoints are in it, so each process's
// gauge follows the others' progress too.
func (p *metricsProgress) Committed(day features.Date, part *rewrite.Partition, res snapshots.CommitResult, took time.Duration) {
	p.Progress.Committed(day, part, res, took)
	p.m.Committed(part.InputRows, res.Latency, res.Attempts, res.Conflicts, res.Recovered, part.Spilled != nil)
	if plan := p.plan.Load(); plan != nil && res.State != nil {
		p.m.Remaining(res.State.Checkpoints[day.String()].Seq, plan.Remaining(res.State))
	}
}

func (p *metricsProgress) Failed(day features.Date, err error) {
	p.Progress.Failed(day, err)
	p.m.Failed()
}
