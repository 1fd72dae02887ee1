// Package metrics exposes a backfill run to Prometheus: what an operator
// watches over a two-week job (partitions done, failed and remaining, read
// volume and rate, commit latency, conflicts and retries, spill and memory).
//
// It uses the Prometheus Go client (github.com/prometheus/client_golang)
// rather than a hand-written exposition: the text format's escaping,
// histogram buckets, content negotiation (OpenMetrics) and the standard
// process_* and go_* collectors (resident memory, heap, GC) come with it,
// exactly as every Prometheus server and agent parses them.
package metrics

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Run holds the metrics of one run. Its methods are safe for concurrent use.
type Run struct {
	reg   *prometheus.Registry
	start time.Time

	done, failed       prometheus.Counter
	remaining          prometheus.Gauge
	remainingSeq       int64 // the table sequence number remaining was counted at
	remainingMu        sync.Mutex
	events             prometheus.Counter
	eventsTotal        atomic.Int64
	commitLatency      prometheus.Histogram
	conflicts, retries prometheus.Counter
	recovered          prometheus.Counter
	spilledPartitions  prometheus.Counter
}

// Counters reads the process-wide counters other packages keep: the spill
// counters (spill.BytesWritten and BytesOnDisk) and the source bytes read
// (source.BytesRead).
type Counters struct {
	SpillBytesWritten, SpillBytesOnDisk, SourceBytesRead func() int64
}

// New registers a run's metrics (labelled with branch) and the standard
// process and Go runtime collectors on a registry of its own.
func New(branch string, counters Counters) *Run {
	reg := prometheus.NewRegistry()
	labels := prometheus.Labels{"branch": branch}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "icefill", Name: name, Help: help, ConstLabels: labels})
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "icefill", Name: name, Help: help, ConstLabels: labels})
	}
	r := &Run{reg: reg, start: time.Now(),
		done:      counter("partitions_done_total", "Partitions committed by this process."),
		failed:    counter("partitions_failed_total", "Partitions that failed in this process (the next run retries them)."),
		remaining: gauge("partitions_remaining", "Partitions of the whole job (every shard's) not yet committed with this run's logic and current input, as of the branch state this process last read (at its plan and at each of its commits)."),
		events:    counter("events_read_total", "Source events read by the partitions committed."),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "icefill", Name: "commit_latency_seconds",
			Help: "Duration of the successful catalog commit call of each partition.", ConstLabels: labels,
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		conflicts:         counter("commit_conflicts_total", "Commit attempts that lost the race for the branch head (another writer or the nightly job committed first)."),
		retries:           counter("commit_retries_total", "Commit attempts after the first, for any cause (conflicts and catalog errors)."),
		recovered:         counter("commit_recovered_total", "Commits whose answer was lost but which had landed (found by reading the table back)."),
		spilledPartitions: counter("spilled_partitions_total", "Partitions computed on the external (spill to disk) path."),
	}
	reg.MustRegister(r.done, r.failed, r.remaining, r.events, r.commitLatency, r.conflicts, r.retries, r.recovered,
		r.spilledPartitions,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "icefill", Name: "events_per_second",
			Help: "Source events read per second since the run started.", ConstLabels: labels}, r.eventsPerSecond),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if counters.SourceBytesRead != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "icefill", Name: "source_bytes_read_total",
			Help: "Bytes read from source files by this process: partition and lookback days, Parquet footers, each read counted (a day read again counts again).", ConstLabels: labels},
			func() float64 { return float64(counters.SourceBytesRead()) }))
	}
	if counters.SpillBytesWritten != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "icefill", Name: "spill_bytes_written_total",
			Help: "Bytes written to local disk by the external path.", ConstLabels: labels},
			func() float64 { return float64(counters.SpillBytesWritten()) }))
	}
	if counters.SpillBytesOnDisk != nil {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "icefill", Name: "spill_bytes_on_disk",
			Help: "Spill bytes on local disk now.", ConstLabels: labels},
			func() float64 { return float64(counters.SpillBytesOnDisk()) }))
	}
	return r
}

func (r *Run) eventsPerSecond() float64 {
	s := time.Since(r.start).Seconds()
	if s <= 0 {
		return 0
	}
	return float64(r.eventsTotal.Load()) / s
}

// Remaining sets the partitions of the job left to commit, counted in the
// branch state at table sequence number seq (0: the state the plan read).
// A count from an older state than the last one set is ignored: commits of
// concurrent workers report in any order.
func (r *Run) Remaining(seq int64, n int) {
	r.remainingMu.Lock()
	defer r.remainingMu.Unlock()
	if seq < r.remainingSeq {
		return
	}
	r.remainingSeq = seq
	r.remaining.Set(float64(n))
}

// Committed records a committed partition.
func (r *Run) Committed(events int64, latency time.Duration, attempts, conflicts int, recovered, spilled bool) {
	r.done.Inc()
	r.events.Add(float64(events))
	r.eventsTotal.Add(events)
	if latency > 0 {
		r.commitLatency.Observe(latency.Seconds())
	}
	r.retries.Add(float64(max(attempts-1, 0)))
	r.conflicts.Add(float64(conflicts))
	if recovered {
		r.recovered.Inc()
	}
	if spilled {
		r.spilledPartitions.Inc()
	}
}

// Failed records a failed partition (it stays remaining: a later run
// retries it).
func (r *Run) Failed() { r.failed.Inc() }

// Handler serves the metrics in the Prometheus text or OpenMetrics format.
func (r *Run) Handler() http.Handler {
	return promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: r.reg})
}

// Serve listens on addr (e.g. 127.0.0.1:9464 or :9464) and serves
// /metrics until ctx ends. It returns the address actually bound (useful
// with port 0) once listening.
func (r *Run) Serve(ctx context.Context, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", r.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	go srv.Serve(ln) // ends with ErrServerClosed at shutdown
	return ln.Addr().String(), nil
}
