package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/icefill/icefill/snapshots"
)

// A real run of the binary serves its metrics: scraped over HTTP and parsed
// with Prometheus' own parser, they agree with what the run committed.
//
// The job is split in three shards. Process A (shard 0/3, metrics) stops
// before its second commit; process B (shard 1/3) runs to the end; then A
// goes on. A's "remaining" must count the whole job as A's last commit saw
// it: B's days done, shard 2's two days not (a gauge of A's own plan would
// say 0, one counted at A's plan only 4).
func TestRunServesPrometheusMetrics(t *testing.T) {
	dir := t.TempDir()
	const days = 6
	to := (crashFrom + days - 1).String()
	cmd := exec.Command(binary, "run", "--source", crashSrc, "--from", crashFrom.String(), "--to", to, "--shard", "0/3", "--run-id", "metrics-a",
		"--branch", "m", "--workers", "1", "--catalog-db", filepath.Join(dir, "catalog.db"), "--warehouse", filepath.Join(dir, "warehouse"),
		"--metrics-addr", "127.0.0.1:0", "--metrics-linger", "2m")
	cmd.Env = append(os.Environ(), "ICEFILL_LOG_LEVEL=info", "ICEFILL_FAULT=before-commit:2:stop")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	urlCh := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/metrics)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil && strings.Contains(sc.Text(), "serving Prometheus metrics") {
				urlCh <- m[1]
			}
		}
	}()
	var url string
	select {
	case url = <-urlCh:
	case <-time.After(2 * time.Minute):
		t.Fatal("the run never said where it serves metrics")
	}

	if !waitStopped(t, cmd.Process.Pid) {
		t.Fatal("process A ended before its second commit")
	}
	if code, _, out := icefill(t, dir, nil, 0, "run", "--source", crashSrc, "--from", crashFrom.String(), "--to", to, "--shard", "1/3",
		"--branch", "m", "--workers", "1"); code != 0 {
		t.Fatalf("process B: exit %d\n%s", code, out)
	}
	cmd.Process.Signal(syscall.SIGCONT)

	// Scrape until A has committed its two days (it then lingers).
	var fams map[string]*dto.MetricFamily
	deadline := time.Now().Add(4 * time.Minute)
	for {
		fams = scrape(t, url)
		if value(fams, "icefill_partitions_done_total") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 4 minutes, partitions done = %v", value(fams, "icefill_partitions_done_total"))
		}
		time.Sleep(200 * time.Millisecond)
	}

	state, err := snapshots.LoadState(testTable(t, dir), "m")
	if err != nil {
		t.Fatal(err)
	}
	var events, ownBytes float64
	mine := 0
	for _, cp := range state.Checkpoints {
		if cp.RunID == "metrics-a" {
			mine++
			events += float64(cp.InputRows)
			ownBytes += float64(cp.Bytes)
		}
	}
	if len(state.Checkpoints) != 4 || mine != 2 || events == 0 || ownBytes == 0 {
		t.Fatalf("the branch has %d checkpoints, %d of A, %v events, %v bytes", len(state.Checkpoints), mine, events, ownBytes)
	}
	for name, want := range map[string]float64{
		"icefill_events_read_total":       events,
		"icefill_partitions_remaining":    2,
		"icefill_partitions_failed_total": 0,
	} {
		if got := value(fams, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	// Each partition reads its 7 lookback days too: far more than its own
	// day's files, which is all the counter used to count.
	t.Logf("source bytes read %v; A's own days' files %v bytes", value(fams, "icefill_source_bytes_read_total"), ownBytes)
	if got := value(fams, "icefill_source_bytes_read_total"); got <= 2*ownBytes {
		t.Errorf("source bytes read = %v, want more than twice A's own days' %v (lookback days are read too)", got, ownBytes)
	}
	if h := fams["icefill_commit_latency_seconds"]; h == nil || h.Metric[0].GetHistogram().GetSampleCount() != 2 || h.Metric[0].GetHistogram().GetSampleSum() <= 0 {
		t.Errorf("commit latency histogram: %v", h)
	}
	// A's second commit lost the race to B's commits and was retried.
	if got := value(fams, "icefill_commit_conflicts_total"); got < 1 {
		t.Errorf("commit conflicts = %v, want at least 1 (B committed while A was stopped)", got)
	}
	for _, name := range []string{"icefill_events_per_second", "process_resident_memory_bytes", "go_memstats_heap_alloc_bytes"} {
		if value(fams, name) <= 0 {
			t.Errorf("%s = %v, want > 0", name, value(fams, name))
		}
	}
	for _, name := range []string{"icefill_commit_retries_total", "icefill_spill_bytes_written_total", "icefill_spill_bytes_on_disk"} {
		if fams[name] == nil {
			t.Errorf("%s is not exposed", name)
		}
	}
	if l := fams["icefill_partitions_done_total"].Metric[0].GetLabel(); len(l) != 1 || l[0].GetName() != "branch" || l[0].GetValue() != "m" {
		t.Errorf("labels %v, want branch=m", l)
	}

	// SIGTERM ends the lingering early, with the run's own exit code.
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM while lingering: %v, want exit 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("the run kept lingering after SIGTERM")
	}
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// value is the value of a single-series counter or gauge (-1 when absent).
func value(fams map[string]*dto.MetricFamily, name string) float64 {
	f := fams[name]
	if f == nil || len(f.Metric) == 0 {
		return -1
	}
	m := f.Metric[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return -1
}

// testTable loads the table of the embedded catalog in dir.
func testTable(t *testing.T, dir string) *table.Table {
	t.Helper()
	tbl, err := openCat(t, dir).LoadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}
