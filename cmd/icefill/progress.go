package main

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

// progress shows a run as it goes: a line redrawn in place when both
// standard output and standard error are terminals (a person is watching),
// one structured log line per partition otherwise, with no terminal escape
// codes. Log lines written while the live line shows clear it first (see
// Writer).
type progress struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	termMu   sync.Mutex // orders writes to w; guards drawn
	drawn    bool       // the live line is on the screen
	log      *slog.Logger
	start    time.Time
	total    int
	done     int
	failed   int
	events   int64
	paused   time.Time
	lastDraw time.Time
}

// newProgress draws on w when tty; log must write through p.Writer() for
// its lines to clear the live line (see run).
func newProgress(w io.Writer, tty bool) *progress {
	return &progress{w: w, tty: tty, log: slog.Default(), start: time.Now()}
}

// Writer is w for log lines: it clears the live line before each write;
// the next draw puts it back.
func (p *progress) Writer() io.Writer { return clearingWriter{p} }

type clearingWriter struct{ p *progress }

func (cw clearingWriter) Write(b []byte) (int, error) {
	p := cw.p
	p.termMu.Lock()
	defer p.termMu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	return p.w.Write(b)
}

func (p *progress) Planned(plan *rewrite.Plan) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = len(plan.Todo())
	warnMissing(plan) // only an --allow-missing run gets this far with days missing
	p.log.Info("plan", "partitions", len(plan.Partitions), "to_compute", p.total, "already_done", plan.Count(rewrite.StatusDone),
		"source_changed", plan.Count(rewrite.StatusSourceChanged), "logic_changed", plan.Count(rewrite.StatusLogicChanged),
		"retrying_failed", plan.Count(rewrite.StatusFailed), "source_bytes", plan.TodoBytes())
}

func (p *progress) Started(features.Date) {}

func (p *progress) Committed(day features.Date, part *rewrite.Partition, res snapshots.CommitResult, took time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.events += part.InputRows
	if !p.tty {
		p.log.Info("partition committed", "partition", day.String(), "events", part.InputRows, "rows", part.Rows(),
			"rejected", part.Rejected, "attempts", res.Attempts, "commit_ms", res.Latency.Milliseconds(), "took_ms", took.Milliseconds(),
			"done", p.done, "total", p.total, "eta", formatETA(p.eta()))
		return
	}
	p.draw(false)
}

func (p *progress) Failed(day features.Date, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed++
	p.log.Error("partition failed; the next run retries it", "partition", day.String(), "err", err)
	p.draw(true)
}

func (p *progress) Paused(until time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.paused.Equal(until.Truncate(time.Minute)) {
		p.paused = until.Truncate(time.Minute)
		p.log.Info("inside the pause window: no new partition starts", "until", until.UTC().Format("15:04 UTC"))
	}
}

func (p *progress) eta() time.Duration {
	if p.done == 0 || p.total <= p.done {
		return 0
	}
	per := time.Since(p.start) / time.Duration(p.done)
	return per * time.Duration(p.total-p.done)
}

func (p *progress) draw(force bool) {
	if !p.tty || (!force && time.Since(p.lastDraw) < 200*time.Millisecond && p.done < p.total) {
		return
	}
	p.lastDraw = time.Now()
	rate := float64(p.events) / time.Since(p.start).Seconds()
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.done) / float64(p.total)
	}
	p.termMu.Lock()
	defer p.termMu.Unlock()
	fmt.Fprintf(p.w, "\r\033[K[%d/%d] %3.0f%%  %.2fM events/s  ETA %s  failed %d",
		p.done, p.total, pct, rate/1e6, formatETA(p.eta()), p.failed)
	p.drawn = true
}

// finish ends the redrawn line.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.total > 0 {
		p.draw(true)
		p.termMu.Lock()
		fmt.Fprintln(p.w)
		p.drawn = false
		p.termMu.Unlock()
	}
}
