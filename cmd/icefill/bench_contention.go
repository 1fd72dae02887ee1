package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/snapshots"
)

// The contention benchmark: N worker processes commit tiny partitions to
// one branch while a nightly writer commits to main, as 150 pods and the
// nightly job would, and the result is checked partition by partition.

func contentionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "procs", Value: "1,4,16", Usage: "contention mode: numbers of worker processes to measure, comma separated"},
		&cli.IntFlag{Name: "partitions-per-proc", Value: 8, Usage: "contention mode: partitions each worker process commits"},
		&cli.DurationFlag{Name: "nightly-every", Value: time.Second, Usage: "contention mode: how often the nightly writer commits to main"},
		// Set by the parent for its worker processes.
		&cli.IntFlag{Name: "contention-worker", Hidden: true},
	}
}

// commitRecord is one partition commit of a worker process, as it reports it.
type commitRecord struct {
	Day       string  `json:"day"`
	Attempt   string  `json:"attempt"`
	TotalMS   float64 `json:"total_ms"`  // Commit() including retries and backoff
	CallMS    float64 `json:"call_ms"`   // the successful catalog call
	Attempts  int     `json:"attempts"`  // 1 + retries
	Conflicts int     `json:"conflicts"` // attempts that lost the race
	Err       string  `json:"err,omitempty"`
	Start     int64   `json:"start_us"` // Unix microseconds
	End       int64   `json:"end_us"`
}

// contentionDay is the day of partition i of worker w among n.
func contentionDay(w, n, i int) int { return i*n + w }

// benchContention measures every --procs count, --repeat times each, and
// prints per pass and the medians.
func benchContention(c *cli.Context) error {
	if c.IsSet("contention-worker") {
		return contentionWorker(c)
	}
	var counts []int
	for _, s := range strings.Split(c.String("procs"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return errkind.Usagef("--procs %q: want counts such as 1,4,16", c.String("procs"))
		}
		counts = append(counts, n)
	}
	per := c.Int("partitions-per-proc")
	if per < 1 {
		return errkind.Usagef("--partitions-per-proc must be positive")
	}
	for _, n := range counts {
		var passes []contentionResult
		for rep := 1; rep <= max(c.Int("repeat"), 1); rep++ {
			r, err := contentionPass(c, n, per, rep)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "contention pass=%d %s\n", rep, r)
			passes = append(passes, r)
		}
		fmt.Fprintf(c.App.Writer, "contention median %s\n", medianContention(passes))
	}
	return nil
}

type contentionResult struct {
	Catalog                        string
	Procs, Partitions              int
	Seconds, CommitsPerSec         float64
	ConflictsPerCommit, RetriesPer float64
	P50, P99, CallP50              float64 // ms
	Nightly                        int
	Lost, Doubled                  int
}

func (r contentionResult) String() string {
	return fmt.Sprintf("catalog=%s procs=%d partitions=%d wall=%.1fs commits/s=%.2f conflicts/commit=%.2f retries/commit=%.2f commit_ms: p50=%.0f p99=%.0f call_p50=%.0f nightly_commits=%d lost=%d doubled=%d",
		r.Catalog, r.Procs, r.Partitions, r.Seconds, r.CommitsPerSec, r.ConflictsPerCommit, r.RetriesPer, r.P50, r.P99, r.CallP50, r.Nightly, r.Lost, r.Doubled)
}

func medianContention(rs []contentionResult) contentionResult {
	m := rs[0]
	pick := func(f func(contentionResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		return median(v)
	}
	m.Seconds = pick(func(r contentionResult) float64 { return r.Seconds })
	m.CommitsPerSec = pick(func(r contentionResult) float64 { return r.CommitsPerSec })
	m.ConflictsPerCommit = pick(func(r contentionResult) float64 { return r.ConflictsPerCommit })
	m.RetriesPer = pick(func(r contentionResult) float64 { return r.RetriesPer })
	m.P50 = pick(func(r contentionResult) float64 { return r.P50 })
	m.P99 = pick(func(r contentionResult) float64 { return r.P99 })
	m.CallP50 = pick(func(r contentionResult) float64 { return r.CallP50 })
	m.Nightly = int(pick(func(r contentionResult) float64 { return float64(r.Nightly) }))
	for _, r := range rs {
		m.Lost, m.Doubled = max(m.Lost, r.Lost), max(m.Doubled, r.Doubled)
	}
	return m
}

// contentionPass runs n worker processes against a fresh table and checks
// the branch and main afterwards.
func contentionPass(c *cli.Context, n, per, rep int) (contentionResult, error) {
	ctx := c.Context
	name := fmt.Sprintf("contention_%d_%d_%d", time.Now().UnixNano(), n, rep)
	res := contentionResult{Catalog: benchCatalogKind(c), Procs: n, Partitions: n * per}
	cat, done, err := openBenchCatalog(ctx, c, name)
	if err != nil {
		return res, err
	}
	defer done()
	if _, _, err := cat.EnsureTable(ctx); err != nil {
		return res, err
	}
	// main gets one partition, the branch forks from it.
	nightly := &nightlyWriter{cat: cat}
	if err := nightly.commit(ctx); err != nil {
		return res, fmt.Errorf("seed main: %w", err)
	}
	if _, err := snapshots.EnsureBranch(ctx, cat.Iceberg(), cat.Ident(), "bench"); err != nil {
		return res, err
	}
	nctx, stopNightly := context.WithCancel(ctx)
	var nwg sync.WaitGroup
	nwg.Add(1)
	var nightlyErr error
	go func() {
		defer nwg.Done()
		nightlyErr = nightly.run(nctx, c.Duration("nightly-every"))
	}()

	exe, err := os.Executable()
	if err != nil {
		stopNightly()
		return res, err
	}
	start := time.Now()
	var mu sync.Mutex
	var records []commitRecord
	var wg sync.WaitGroup
	errs := make([]error, n)
	for w := 0; w < n; w++ {
		args := []string{"bench", "--mode", "contention", "--" + flagTable, strings.Join(cat.Ident(), "."), "--contention-worker", strconv.Itoa(w),
			"--procs", strconv.Itoa(n), "--partitions-per-proc", strconv.Itoa(per), "--dir", c.String("dir")}
		for _, f := range []string{flagCatalogURI, flagWarehouse, flagS3Endpoint, flagS3Region} {
			if v := c.String(f); v != "" {
				args = append(args, "--"+f, v)
			}
		}
		if benchCatalogKind(c) == "sqlite" {
			args = append(args, "--"+flagCatalogDB, cat.Config().SQLitePath, "--"+flagWarehouse, cat.Config().Warehouse)
		}
		cmd := exec.CommandContext(ctx, exe, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			stopNightly()
			return res, err
		}
		if err := cmd.Start(); err != nil {
			stopNightly()
			return res, err
		}
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var r commitRecord
				if json.Unmarshal(sc.Bytes(), &r) == nil {
					mu.Lock()
					records = append(records, r)
					mu.Unlock()
				}
			}
			errs[w] = cmd.Wait()
		}(w)
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	stopNightly()
	nwg.Wait()
	if err := errors.Join(append(errs, nightlyErr)...); err != nil {
		return res, fmt.Errorf("contention with %d processes: %w", n, err)
	}
	var total, call []float64
	conflicts, retries := 0, 0
	first, last := int64(1<<62), int64(0)
	for _, r := range records {
		first, last = min(first, r.Start), max(last, r.End)
		if r.Err != "" {
			return res, fmt.Errorf("worker commit of %s failed: %s", r.Day, r.Err)
		}
		total, call = append(total, r.TotalMS), append(call, r.CallMS)
		conflicts += r.Conflicts
		retries += r.Attempts - 1
	}
	if len(records) != n*per {
		return res, fmt.Errorf("%d commits reported, want %d", len(records), n*per)
	}
	slices.Sort(total)
	// From the first commit's start to the last one's end: the processes'
	// start-up is not commit throughput.
	res.CommitsPerSec = float64(len(records)) / (float64(last-first) / 1e6)
	res.ConflictsPerCommit, res.RetriesPer = float64(conflicts)/float64(len(records)), float64(retries)/float64(len(records))
	res.P50, res.P99, res.CallP50 = total[len(total)/2], total[min(len(total)-1, len(total)*99/100)], median(call)
	res.Nightly = int(nightly.commits.Load())
	res.Lost, res.Doubled, err = checkContention(ctx, cat, n, per, records, nightly)
	if err != nil {
		return res, err
	}
	if res.Lost+res.Doubled > 0 {
		return res, fmt.Errorf("contention with %d processes: %d partitions lost, %d doubled (%s)", n, res.Lost, res.Doubled, res)
	}
	return res, nil
}

// checkContention counts, on the branch and on main, the partitions that
// are missing (lost) or hold more than their one row (doubled), and checks
// that the branch state records each partition with its worker's attempt.
func checkContention(ctx context.Context, cat *catalog.Catalog, n, per int, records []commitRecord, nightly *nightlyWriter) (lost, doubled int, err error) {
	tbl, err := cat.LoadTable(ctx)
	if err != nil {
		return 0, 0, err
	}
	rows := func(ref string) (map[string]int64, error) {
		out := map[string]int64{}
		files, err := snapshots.FilesByPartition(ctx, tbl, tbl.SnapshotByName(ref).SnapshotID)
		if err != nil {
			return nil, err
		}
		for d, fs := range files {
			for _, f := range fs {
				out[d.String()] += f.Count()
			}
		}
		return out, nil
	}
	branch, err := rows("bench")
	if err != nil {
		return 0, 0, err
	}
	main, err := rows(table.MainBranch)
	if err != nil {
		return 0, 0, err
	}
	state, err := snapshots.LoadState(tbl, "bench")
	if err != nil {
		return 0, 0, err
	}
	attempts := map[string]string{}
	for _, r := range records {
		attempts[r.Day] = r.Attempt
	}
	for w := 0; w < n; w++ {
		for i := 0; i < per; i++ {
			day := (features.MustParseDate("2020-01-01") + features.Date(contentionDay(w, n, i))).String()
			switch {
			case branch[day] == 0 || state.Checkpoints[day].Attempt != attempts[day]:
				lost++
			case branch[day] > 1:
				doubled++
			}
			if main[day] != 0 {
				doubled++ // a branch partition must never reach main
			}
		}
	}
	if len(state.Checkpoints) != n*per {
		doubled += max(len(state.Checkpoints)-n*per, 0)
	}
	for _, day := range nightly.days() {
		switch {
		case main[day] == 0:
			lost++
		case main[day] > 1:
			doubled++
		}
	}
	return lost, doubled, nil
}

// contentionWorker is one worker process: it commits its partitions to the
// branch and reports each commit as a JSON line on standard output.
func contentionWorker(c *cli.Context) error {
	ctx := c.Context
	cat, err := catalog.Open(ctx, catalogConfig(c))
	if err != nil {
		return err
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(ctx)
	if err != nil {
		return err
	}
	w, n := c.Int("contention-worker"), c.Int("procs")
	committer := &snapshots.Committer{Catalog: cat.Iceberg(), Ident: cat.Ident(), Branch: "bench"}
	enc := json.NewEncoder(c.App.Writer)
	for i := 0; i < c.Int("partitions-per-proc"); i++ {
		k := contentionDay(w, n, i)
		day, dayText, files, err := tinyPartition(ctx, tbl, k)
		if err != nil {
			return err
		}
		attempt := fmt.Sprintf("w%d-%d-%d", w, i, time.Now().UnixNano())
		start := time.Now()
		res, err := committer.Commit(ctx, snapshots.PartitionCommit{Day: day, DayText: dayText, Files: files,
			Checkpoint: snapshots.Checkpoint{Logic: "bench", Fingerprint: strconv.Itoa(k), Attempt: attempt, CommittedAt: time.Now().UnixMilli()}})
		rec := commitRecord{Day: dayText, Attempt: attempt, TotalMS: ms(time.Since(start)), CallMS: ms(res.Latency), Attempts: res.Attempts, Conflicts: res.Conflicts,
			Start: start.UnixMicro(), End: time.Now().UnixMicro()}
		if err != nil {
			rec.Err = err.Error()
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	return nil
}

// nightlyWriter commits one-row partitions to main, as the nightly job
// does, each day before 2020 (the branch's days start in 2020), with its
// own reload-and-retry on conflicts as any writer has.
type nightlyWriter struct {
	cat     *catalog.Catalog
	commits atomic.Int64
	mu      sync.Mutex
	written []string
}

func (nw *nightlyWriter) days() []string {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return slices.Clone(nw.written)
}

func (nw *nightlyWriter) run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := nw.commit(ctx); err != nil && ctx.Err() == nil {
				return fmt.Errorf("nightly writer: %w", err)
			}
		}
	}
}

func (nw *nightlyWriter) commit(ctx context.Context) error {
	k := int(nw.commits.Load())
	i := -1 - k // days before 2020-01-01
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		if ctx.Err() != nil {
			return nil
		}
		tbl, err := nw.cat.LoadTable(ctx)
		if err != nil {
			return err
		}
		day := (features.MustParseDate("2020-01-01") + features.Date(i)).String()
		if attempt > 0 && nightlyLanded(tbl, day) {
			// The failed attempt had landed: its answer was lost.
			return nw.landed(day)
		}
		_, dayText, files, err := tinyPartition(ctx, tbl, i)
		if err != nil {
			return err
		}
		txn := tbl.NewTransaction()
		if err := txn.AddDataFiles(ctx, files, iceberg.Properties{"nightly": dayText}); err != nil {
			return err
		}
		if _, err := txn.Commit(ctx); err != nil {
			lastErr = err
			time.Sleep(time.Duration(20+attempt*10) * time.Millisecond)
			continue
		}
		return nw.landed(dayText)
	}
	return fmt.Errorf("nightly commit gave up: %w", lastErr)
}

func (nw *nightlyWriter) landed(day string) error {
	nw.commits.Add(1)
	nw.mu.Lock()
	nw.written = append(nw.written, day)
	nw.mu.Unlock()
	return nil
}

// nightlyLanded reports whether main's recent history has day's commit.
func nightlyLanded(tbl *table.Table, day string) bool {
	main := tbl.CurrentSnapshot()
	if main == nil {
		return false
	}
	n := 0
	for _, s := range table.AncestorsOf(main.SnapshotID, tbl.Metadata().SnapshotByID) {
		if s.Summary != nil && s.Summary.Properties["nightly"] == day {
			return true
		}
		if n++; n > 50 {
			break
		}
	}
	return false
}
