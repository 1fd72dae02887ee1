package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/tinypart"
	"github.com/icefill/icefill/snapshots"
)

// commitPoints are the partition counts at which commit latency is
// reported: the first, and the production backfill's 1,825 days.
var commitPoints = []int{1, 100, 1000, 1825}

// benchCatalogFlags are the catalog flags of bench: without --catalog-uri
// it uses a fresh embedded catalog, with one a fresh table in that catalog.
func benchCatalogFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagCatalogURI, EnvVars: env(flagCatalogURI), Usage: "commits and contention modes: a REST catalog (http://…) to measure instead of a fresh embedded one; each pass uses a new table in namespace bench, dropped afterwards"},
		&cli.StringFlag{Name: flagWarehouse, EnvVars: env(flagWarehouse), Usage: "with --catalog-uri: the warehouse to ask for"},
		&cli.StringFlag{Name: flagS3Endpoint, EnvVars: env(flagS3Endpoint), Usage: "with --catalog-uri: S3-compatible endpoint of the warehouse"},
		&cli.StringFlag{Name: flagS3Region, EnvVars: env(flagS3Region), Usage: "with --catalog-uri: S3 region"},
		&cli.IntFlag{Name: "keep-history", Usage: "commits mode: branch snapshots each commit keeps (0: icefill's usual number; -1: all, as before history was trimmed)"},
		// Set by contention mode for its worker processes.
		&cli.StringFlag{Name: flagCatalogDB, Hidden: true},
		&cli.StringFlag{Name: flagTable, Hidden: true},
	}
}

// openBenchCatalog opens the catalog a commits or contention pass measures:
// a fresh embedded one, or a fresh table (name) in the --catalog-uri one.
func openBenchCatalog(ctx context.Context, c *cli.Context, name string) (*catalog.Catalog, func(), error) {
	if c.String(flagCatalogURI) == "" {
		if err := os.MkdirAll(c.String("dir"), 0o755); err != nil {
			return nil, nil, err
		}
		return scratchCatalog(ctx, c.String("dir"))
	}
	cfg := catalogConfig(c)
	cfg.Table = "bench." + name
	cat, err := catalog.Open(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cat, func() {
		if err := cat.Iceberg().DropTable(context.WithoutCancel(ctx), cat.Ident()); err != nil {
			fmt.Fprintf(c.App.ErrWriter, "bench: could not drop %s: %v\n", strings.Join(cat.Ident(), "."), err)
		}
		cat.Close()
	}, nil
}

func benchCatalogKind(c *cli.Context) string {
	if c.String(flagCatalogURI) == "" {
		return "sqlite"
	}
	return "rest"
}

// tinyPartition writes a one-row partition of day i (days from 2020-01-01)
// and returns its data files.
func tinyPartition(ctx context.Context, tbl *table.Table, i int) (iceberg.Date, string, []iceberg.DataFile, error) {
	day, files, err := tinypart.Write(ctx, tbl, i)
	if err != nil {
		return 0, "", nil, err
	}
	return iceberg.Date(day), day.String(), files, nil
}

// benchCommits commits n one-row partitions to one branch, compacting
// manifests as run does, --repeat times on a fresh table, and reports the
// commit latency at each of commitPoints (the median of the 10 commits
// around it; the median over the passes).
func benchCommits(c *cli.Context, n int) error {
	if n < 1 {
		return errkind.Usagef("--commits must be positive")
	}
	points := []int{}
	for _, p := range commitPoints {
		if p < n {
			points = append(points, p)
		}
	}
	points = append(points, n)
	latPoints, cpuPoints := make([][]float64, len(points)), make([][]float64, len(points))
	kind := benchCatalogKind(c)
	for rep := 1; rep <= max(c.Int("repeat"), 1); rep++ {
		start := time.Now()
		lat, cpu, err := commitSeries(c, n, fmt.Sprintf("commits_%d_%d", time.Now().UnixNano(), rep))
		if err != nil {
			return err
		}
		lv, cv := make([]float64, len(points)), make([]float64, len(points))
		for i, p := range points {
			lv[i], cv[i] = ms(medianAround(lat, p-1)), ms(medianAround(cpu, p-1))
			latPoints[i], cpuPoints[i] = append(latPoints[i], lv[i]), append(cpuPoints[i], cv[i])
		}
		fmt.Fprintf(c.App.Writer, "commits pass=%d catalog=%s n=%d total=%.1fs load1=%s latency_ms: %s cpu_ms: %s\n",
			rep, kind, n, time.Since(start).Seconds(), loadAverage(), pointList(points, lv), pointList(points, cv))
	}
	lm, cm := make([]float64, len(points)), make([]float64, len(points))
	for i := range points {
		lm[i], cm[i] = median(latPoints[i]), median(cpuPoints[i])
	}
	fmt.Fprintf(c.App.Writer, "commits median catalog=%s n=%d latency_ms: %s last/first=%.2f cpu_ms: %s last/first=%.2f (median of the %d commits around each point, median of %d passes; manifests compacted above 32)\n",
		kind, n, pointList(points, lm), lm[len(lm)-1]/lm[0], pointList(points, cm), cm[len(cm)-1]/cm[0], window, len(latPoints[0]))
	return nil
}

// loadAverage is the machine's 1-minute load average, to read wall-clock
// figures by: on a shared machine they measure the neighbours too.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// commitSeries commits n tiny partitions to branch "bench" of a fresh table
// and returns each commit's latency and the process CPU time it took.
func commitSeries(c *cli.Context, n int, name string) (lat, cpu []time.Duration, err error) {
	ctx := c.Context
	cat, done, err := openBenchCatalog(ctx, c, name)
	if err != nil {
		return nil, nil, err
	}
	defer done()
	tbl, _, err := cat.EnsureTable(ctx)
	if err != nil {
		return nil, nil, err
	}
	committer := &snapshots.Committer{Catalog: cat.Iceberg(), Ident: cat.Ident(), Branch: "bench", KeepHistory: c.Int("keep-history")}
	for i := 0; i < n; i++ {
		day, dayText, files, err := tinyPartition(ctx, tbl, i)
		if err != nil {
			return nil, nil, err
		}
		cpu0 := cpuTime()
		var res snapshots.CommitResult
		// Labelled so that a --cpuprofile compares the first commits with
		// the last: go tool pprof -tagfocus commits=last-100.
		pprof.Do(ctx, pprof.Labels("commits", commitBucket(i, n)), func(ctx context.Context) {
			res, err = committer.Commit(ctx, snapshots.PartitionCommit{Day: day, DayText: dayText, Files: files,
				Checkpoint: snapshots.Checkpoint{Logic: "bench", Fingerprint: fmt.Sprint(i), Attempt: fmt.Sprint(i), CommittedAt: time.Now().UnixMilli()}})
		})
		if err != nil {
			return nil, nil, err
		}
		lat, cpu = append(lat, res.Latency), append(cpu, cpuTime()-cpu0)
		if (i+1)%8 == 0 {
			if _, err := committer.CompactManifests(ctx, 32); err != nil {
				return nil, nil, err
			}
		}
	}
	return lat, cpu, nil
}

// commitBucket names the profile label of commit i of n.
func commitBucket(i, n int) string {
	switch {
	case i < 100:
		return "first-100"
	case i >= n-100:
		return "last-100"
	}
	return "middle"
}

// window is how many commits around each point its median is taken of: on
// a shared machine a single commit's time says little.
const window = 50

// medianAround is the median of the (up to) window values around index k.
func medianAround(lat []time.Duration, k int) time.Duration {
	lo := max(k-window/2, 0)
	hi := min(lo+window, len(lat))
	lo = max(hi-window, 0)
	w := slices.Clone(lat[lo:hi])
	slices.Sort(w)
	return w[len(w)/2]
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	w := slices.Clone(v)
	slices.Sort(w)
	return w[len(w)/2]
}

func pointList(points []int, vals []float64) string {
	parts := make([]string, len(points))
	for i, p := range points {
		parts[i] = fmt.Sprintf("at_%d=%.1f", p, vals[i])
	}
	return strings.Join(parts, " ")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
