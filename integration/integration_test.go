//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/validate"
)

// The table and the credentials every process of the tests uses. The defaults are
// those of integration/servers/lib.sh; the servers listen on loopback only.
const (
	tableName = "analytics.clv_daily"
	bucket    = "icefill"
)

var (
	root    string // the repository
	cache   string // $ICEFILL_IT_CACHE or <root>/.cache
	bin     string // <root>/bin/icefill
	python  string // the readers' venv python
	readers string // <root>/integration/readers

	s3Endpoint string // http://127.0.0.1:PORT of the S3 server
	restURI    string // http://127.0.0.1:PORT of the REST catalog

	// The Trino server (on the REST catalog) starts in the background for the
	// whole suite (35-130 s): trinoReady is closed when trinoURI or trinoErr is set.
	trinoReady = make(chan struct{})
	trinoURI   string
	trinoErr   error
)

// servers are the scripts of integration/servers that TestMain starts, in the
// order they are stopped.
var servers = []string{"trino.sh", "rest-catalog.sh", "s3.sh"}

func TestMain(m *testing.M) { os.Exit(mainWithServers(m)) }

func mainWithServers(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		return fatalMain("getwd: %v", err)
	}
	root = filepath.Dir(wd) // go test runs in <root>/integration
	cache = os.Getenv("ICEFILL_IT_CACHE")
	if cache == "" {
		cache = filepath.Join(root, ".cache")
	}
	bin = filepath.Join(root, "bin", "icefill")
	python = filepath.Join(cache, "venv", "bin", "python")
	readers = filepath.Join(root, "integration", "readers")
	setDefaultEnv("AWS_ACCESS_KEY_ID", "icefill-it")
	setDefaultEnv("AWS_SECRET_ACCESS_KEY", "icefill-it-secret")
	setDefaultEnv("AWS_REGION", "us-east-1")
	setDefaultEnv("S3_BUCKETS", bucket)

	step := func(what string, f func() error) error {
		t0 := time.Now()
		err := f()
		fmt.Fprintf(os.Stderr, "integration: %s: %.1fs\n", what, time.Since(t0).Seconds())
		return err
	}
	if err := step("build bin/icefill", func() error {
		return runQuiet(root, "go", "build", "-o", bin, "./cmd/icefill")
	}); err != nil {
		return fatalMain("build icefill: %v", err)
	}
	if err := step("reader setup (venv, Spark jars)", func() error {
		return runQuiet(root, filepath.Join(readers, "setup.sh"))
	}); err != nil {
		return fatalMain("reader setup: %v", err)
	}

	// Leftovers of a killed earlier run would be reused with stale data: stop them.
	stopServers()
	// From here on the servers must be stopped whatever happens: normally by the
	// deferred call; on SIGINT/SIGTERM by the handler; if this process dies any
	// other way (a panicking test, -timeout), by the watchdog.
	defer stopServers()
	stopWatchdog := startWatchdog()
	defer stopWatchdog()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "integration: %v: stopping the servers\n", s)
		stopServers()
		os.Exit(130)
	}()

	if err := step("start S3 server", func() (err error) {
		s3Endpoint, err = script("s3.sh", "start")
		return err
	}); err != nil {
		return fatalMain("start the S3 server: %v", err)
	}
	if err := step("start REST catalog", func() (err error) {
		restURI, err = script("rest-catalog.sh", "start")
		return err
	}); err != nil {
		return fatalMain("start the REST catalog: %v", err)
	}
	fmt.Fprintf(os.Stderr, "integration: S3 %s, REST catalog %s\n", s3Endpoint, restURI)
	// Trino is slow to start: the tests that run first (the fault injection) do
	// not need it, so it starts meanwhile; trinoServer waits for it.
	go func() {
		defer close(trinoReady)
		t0 := time.Now()
		trinoURI, trinoErr = script("trino.sh", "start")
		fmt.Fprintf(os.Stderr, "integration: start Trino (in the background): %.1fs (%v)\n", time.Since(t0).Seconds(), trinoErr)
	}()
	return m.Run()
}

func fatalMain(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "integration: "+format+"\n", args...)
	return 1
}

func setDefaultEnv(k, v string) {
	if os.Getenv(k) == "" {
		os.Setenv(k, v)
	}
}

// runQuiet runs a command in dir, its output going to stderr.
func runQuiet(dir, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// script runs integration/servers/NAME ARGS and returns its stdout (the endpoint).
func script(name string, args ...string) (string, error) {
	cmd := exec.Command(filepath.Join(root, "integration", "servers", name), args...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

func stopServers() {
	for _, s := range servers {
		if _, err := script(s, "stop"); err != nil {
			fmt.Fprintf(os.Stderr, "integration: %s stop: %v\n", s, err)
		}
	}
}

// startWatchdog starts a detached shell that waits for this process to end and then
// stops the servers; the returned func ends the watchdog (after a normal stop).
func startWatchdog() func() {
	dir := filepath.Join(root, "integration", "servers")
	prog := `pid=$1 dir=$2; shift 2
while kill -0 "$pid" 2>/dev/null; do sleep 1; done
for s in "$@"; do "$dir/$s" stop; done`
	cmd := exec.Command("bash", append([]string{"-c", prog, "watchdog", strconv.Itoa(os.Getpid()), dir}, servers...)...)
	cmd.Dir = root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// No pipes to this process: go test would wait for the watchdog to close them.
	if f, err := os.OpenFile(filepath.Join(cache, "run", "watchdog.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		cmd.Stdout, cmd.Stderr = f, f
		defer f.Close()
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: no watchdog (%v); servers may outlive a crash\n", err)
		return func() {}
	}
	go cmd.Wait() //nolint:errcheck // reaped when it ends
	return func() { cmd.Process.Kill() }
}

// ---- running icefill ----

type result struct {
	out      string
	code     int  // exit status, -1 when killed by a signal
	killed   bool // died of SIGKILL
	timedOut bool // killed because it ran over its time limit
}

// icefillTimeLimit bounds every icefill command of the tests.
const icefillTimeLimit = 10 * time.Minute

// icefillEnv is this process's environment without ICEFILL_* variables (a
// developer's settings must not leak in), plus extra.
func icefillEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ICEFILL_") {
			env = append(env, kv)
		}
	}
	return append(append(env, "ICEFILL_LOG_LEVEL=warn"), extra...)
}

func runIcefill(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runIcefillWithin(t, icefillTimeLimit, env, args...)
}

// runIcefillWithin runs icefill, killing it (SIGKILL) after limit.
func runIcefillWithin(t *testing.T, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = t.TempDir()
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	r := result{out: out.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			r.killed = true
		}
	default:
		t.Fatalf("icefill %s: %v", args[0], err)
	}
	r.timedOut = ctx.Err() != nil
	t.Logf("icefill %s (%.1fs): exit %d killed=%v\n%s", strings.Join(args, " "), time.Since(t0).Seconds(), r.code, r.killed, indent(r.out))
	if r.timedOut {
		t.Fatalf("icefill %s did not end within %s: killed", args[0], limit)
	}
	return r
}

func mustIcefill(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r := runIcefill(t, env, args...)
	if r.code != 0 || r.killed {
		t.Fatalf("icefill %s failed (exit %d)", args[0], r.code)
	}
	return r
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (no output)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// ---- readers ----

// readerArgs are the catalog arguments of the reader scripts.
type readerArgs []string

// readRefs runs a reader script for refs and returns each ref's lines.
func readRefs(t *testing.T, reader string, cat readerArgs, env []string, refs ...string) map[string][]string {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{filepath.Join(readers, "read_"+reader+".py")}, cat...)
	args = append(args, "--table", tableName, "--out-dir", dir)
	switch reader {
	case "spark":
		// The jars live in the cache run.sh installed into, which may not
		// be <repo>/.cache (ICEFILL_IT_CACHE): say where.
		args = append(args, "--jars", filepath.Join(cache, "spark-jars"))
	case "trino":
		args = append(args, "--trino-server", trinoServer(t), "--trino-cli", filepath.Join(cache, "trino", "trino-cli.jar"))
	}
	for _, r := range refs {
		args = append(args, "--ref", r)
	}
	t0 := time.Now()
	cmd := exec.Command(python, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s reader: %v\n%s", reader, err, tail(stderr.String(), 60))
	}
	t.Logf("%s reader (%.1fs):\n%s", reader, time.Since(t0).Seconds(), indent(summaryLines(stderr.String(), reader+":")))
	out := map[string][]string{}
	for _, r := range refs {
		lines, err := readLines(filepath.Join(dir, r+".rows"))
		if err != nil {
			t.Fatalf("%s reader: %v", reader, err)
		}
		out[r] = lines
	}
	return out
}

// trinoLimit bounds the wait for the Trino server started by TestMain.
const trinoLimit = 6 * time.Minute

// trinoServer waits for the Trino server TestMain started and returns its URI.
func trinoServer(t *testing.T) string {
	t.Helper()
	select {
	case <-trinoReady:
	case <-time.After(trinoLimit):
		t.Fatalf("the Trino server has not started within %s (log: %s)", trinoLimit, filepath.Join(cache, "run", "trino.log"))
	}
	if trinoErr != nil {
		t.Fatalf("the Trino server did not start: %v (log: %s)", trinoErr, filepath.Join(cache, "run", "trino.log"))
	}
	return trinoURI
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

func summaryLines(s, prefix string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// openTable opens the catalog and loads the table, failing the test if
// either fails; the caller closes the catalog.
func openTable(ctx context.Context, t *testing.T, cfg catalog.Config) (*catalog.Catalog, *table.Table) {
	t.Helper()
	c, err := catalog.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	tbl, err := c.LoadTable(ctx)
	if err != nil {
		c.Close()
		t.Fatalf("load table: %v", err)
	}
	return c, tbl
}

// goRows is what icefill's own scan sees: validate.RefRows for each ref.
// The table must live under wantLocation.
func goRows(t *testing.T, cfg catalog.Config, wantLocation string, refs ...string) map[string][]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, tbl := openTable(ctx, t, cfg)
	defer c.Close()
	t.Logf("icefill reads %s at %s", c.Describe(), tbl.Location())
	if !strings.HasPrefix(tbl.Location(), wantLocation) {
		t.Fatalf("table location %s, want it under %s", tbl.Location(), wantLocation)
	}
	out := map[string][]string{}
	for _, r := range refs {
		rows, err := validate.RefRows(ctx, tbl, r)
		if err != nil {
			t.Fatalf("RefRows %s: %v", r, err)
		}
		out[r] = rows
	}
	return out
}

// sameRows fails the test unless got (a reader's lines of ref) equals want
// (icefill's), showing a few lines on each side of the difference.
func sameRows(t *testing.T, catalogKind, reader, ref string, want, got []string) {
	t.Helper()
	t.Logf("reader-summary: %-13s %-9s ref=%-8s rows=%d (icefill: %d)", catalogKind, reader, ref, len(got), len(want))
	if len(want) == 0 {
		t.Errorf("icefill sees no rows in %s: nothing to compare", ref)
	}
	if strings.Join(want, "\n") == strings.Join(got, "\n") {
		return
	}
	onlyWant, onlyGot := diff(want, got)
	t.Errorf("%s reads %d rows of %s, icefill %d; %d rows only in icefill's, %d only in %s's; first of each:\n  icefill: %s\n  %s: %s",
		reader, len(got), ref, len(want), len(onlyWant), len(onlyGot), reader,
		strings.Join(first(onlyWant, 3), "\n           "), reader, strings.Join(first(onlyGot, 3), "\n           "))
}

// diff returns the lines of a not in b and of b not in a (both sorted, as multisets).
func diff(a, b []string) (onlyA, onlyB []string) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			i++
			j++
		case a[i] < b[j]:
			onlyA = append(onlyA, a[i])
			i++
		default:
			onlyB = append(onlyB, b[j])
			j++
		}
	}
	return append(onlyA, a[i:]...), append(onlyB, b[j:]...)
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// partitions counts the distinct event_date values of canonical lines.
func partitions(lines []string) int {
	days := map[string]bool{}
	for _, l := range lines {
		if d, _, ok := strings.Cut(l, " "); ok {
			days[d] = true
		}
	}
	return len(days)
}

var alreadyDone = regexp.MustCompile(`(\d+) already done, (\d+) committed now, (\d+) failed`)

// ---- the tests ----

// TestRESTBackfillReadersAgree: events on S3, main built with the legacy logic and
// the corrected backfill on branch clv-fix through the REST catalog (warehouse on
// S3), the backfill killed with SIGKILL once and resumed; Spark and PyIceberg must
// then read exactly the rows icefill's own scan sees, for main and for clv-fix.
// Then the publishing story (publishStory): validate, promote, roll back, a
// nightly commit on main, the refused promotion, catch-up and the rebased
// promotion, each step checked through icefill's scan and both readers.
func TestRESTBackfillReadersAgree(t *testing.T) {
	const (
		eventsFrom = "2024-02-24" // a week of lookback before the first partition
		from, to   = "2024-03-02", "2024-03-11"
		v2From     = "2024-03-06" // the v1 -> v2 user_id switch inside the range
	)
	events := "s3://" + bucket + "/events"
	env := icefillEnv("ICEFILL_S3_ENDPOINT="+s3Endpoint, "AWS_REGION="+os.Getenv("AWS_REGION"))
	cat := []string{"--catalog-uri", restURI, "--table", tableName}

	mustIcefill(t, env, "gen-events", "--out", events, "--from", eventsFrom, "--to", to,
		"--events-per-day", "3000", "--v2-from", v2From, "--seed", "7")
	mustIcefill(t, env, append([]string{"run", "--source", events, "--from", from, "--to", to,
		"--logic", "legacy", "--branch", "main", "--write-main", "--order", "oldest-first"}, cat...)...)

	backfill := append([]string{"run", "--source", events, "--from", from, "--to", to,
		"--branch", "clv-fix", "--gc-min-age", "0s"}, cat...)
	killed := runIcefill(t, append(env, "ICEFILL_FAULT=before-commit:3"), backfill...)
	if !killed.killed {
		t.Fatalf("the faulted backfill was supposed to die of SIGKILL; exit %d", killed.code)
	}
	resumed := mustIcefill(t, env, backfill...)
	m := alreadyDone.FindStringSubmatch(resumed.out)
	if m == nil {
		t.Fatalf("no run summary in the resumed run's output")
	}
	if done, _ := strconv.Atoi(m[1]); done < 1 || m[3] != "0" {
		t.Fatalf("the resumed run should continue after the partitions committed before the kill with no failures: %q", m[0])
	}

	cfg := restConfig(tableName)
	want := goRows(t, cfg, "s3://"+bucket+"/warehouse/", "main", "clv-fix")
	for _, ref := range []string{"main", "clv-fix"} {
		if n := partitions(want[ref]); n != 10 {
			t.Fatalf("icefill sees %d partitions in %s, want 10", n, ref)
		}
	}
	if strings.Join(want["main"], "\n") == strings.Join(want["clv-fix"], "\n") {
		t.Fatalf("main and clv-fix hold the same rows: the backfill changed nothing")
	}

	rd := newRESTReaders(t)
	rd.check(t, "REST+S3", want, "main", "clv-fix")
	if t.Failed() {
		return
	}

	// Publishing: validate, promote, roll back, and promote after main moved
	// (publish_test.go), read by the same readers after every step.
	publishStory(t, &restStory{
		env: env, cat: cat, cfg: cfg, events: events, v2From: v2From, from: from, to: to, rd: rd,
	}, want["main"], want["clv-fix"])
}

// restConfig is a direct (un-proxied) connection to table on the REST
// catalog and the S3 server, as the tests' own checks use it.
func restConfig(table string) catalog.Config {
	return catalog.Config{URI: restURI, Table: table, S3: objstore.S3Options{
		Endpoint: s3Endpoint, Region: os.Getenv("AWS_REGION"),
		AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID"), SecretAccessKey: os.Getenv("AWS_SECRET_ACCESS_KEY"),
	}}
}

// TestSQLiteCatalogReadersAgree: PyIceberg (SqlCatalog) and Spark (JdbcCatalog on
// sqlite-jdbc) open the embedded SQLite catalog icefill wrote, under its catalog
// name, and read the same rows as icefill.
func TestSQLiteCatalogReadersAgree(t *testing.T) {
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	db := filepath.Join(dir, "catalog.db")
	wh := filepath.Join(dir, "warehouse")
	env := icefillEnv()
	cat := []string{"--catalog-db", db, "--warehouse", wh, "--catalog-name", "icefill", "--table", tableName}

	mustIcefill(t, env, "gen-events", "--out", events, "--from", "2024-05-01", "--to", "2024-05-12",
		"--events-per-day", "1500", "--v2-from", "2024-05-10", "--seed", "3")
	mustIcefill(t, env, append([]string{"run", "--source", events, "--from", "2024-05-08", "--to", "2024-05-12",
		"--logic", "legacy", "--branch", "main", "--write-main"}, cat...)...)
	mustIcefill(t, env, append([]string{"run", "--source", events, "--from", "2024-05-08", "--to", "2024-05-12",
		"--branch", "clv-fix"}, cat...)...)

	want := goRows(t, catalog.Config{SQLitePath: db, Warehouse: wh, Name: "icefill", Table: tableName}, "file://"+wh, "main", "clv-fix")
	rargs := readerArgs{"--sqlite", db, "--warehouse", wh, "--catalog-name", "icefill"}
	for _, reader := range []string{"pyiceberg", "spark"} {
		got := readRefs(t, reader, rargs, icefillEnv(), "main", "clv-fix")
		for _, ref := range []string{"main", "clv-fix"} {
			sameRows(t, "SQLite+local", reader, ref, want[ref], got[ref])
		}
	}
}

// TestCanonicalFormatMatchesArrow keeps the readers' formatter (readers/canon.py)
// identical to arrow-go's ValueStr, which validate.RefRows uses: float64 edge cases
// and random values, dates and nulls, through real Arrow arrays.
func TestCanonicalFormatMatchesArrow(t *testing.T) {
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.1, 1.5, 99999.5, 999999, 1e6, 1234567, 1e21,
		1e-4, 1e-5, 0.00012345, 1.0 / 3, 5e-324, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 47.983333333333334}
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		floats = append(floats, r.Float64()*500, float64(r.IntN(10_000_000))/float64(1+r.IntN(3600)),
			math.Float64frombits(r.Uint64()), r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)))
	}
	fb := array.NewFloat64Builder(memory.DefaultAllocator)
	defer fb.Release()
	fb.AppendValues(floats, nil)
	fb.AppendNull()
	fa := fb.NewFloat64Array()
	defer fa.Release()

	days := []int32{-719162, -1, 0, 19723, 19783, 2932896} // 0001-01-01 … 9999-12-31
	db := array.NewDate32Builder(memory.DefaultAllocator)
	defer db.Release()
	for _, d := range days {
		db.Append(arrow.Date32(d))
	}
	db.AppendNull()
	da := db.NewDate32Array()
	defer da.Release()

	var in strings.Builder
	var want []string
	for i := 0; i < fa.Len(); i++ {
		if fa.IsNull(i) {
			in.WriteString("f null\n")
		} else {
			fmt.Fprintf(&in, "f %016x\n", math.Float64bits(fa.Value(i)))
		}
		want = append(want, fa.ValueStr(i))
	}
	for i := 0; i < da.Len(); i++ {
		if da.IsNull(i) {
			in.WriteString("d null\n")
		} else {
			fmt.Fprintf(&in, "d %d\n", da.Value(i))
		}
		want = append(want, da.ValueStr(i))
	}
	const prog = `
import datetime, struct, sys
sys.path.insert(0, sys.argv[1])
import canon
for line in sys.stdin:
    kind, v = line.split()
    if v == "null":
        x = None
    elif kind == "f":
        x = struct.unpack(">d", bytes.fromhex(v))[0]
    else:
        x = datetime.date(1970, 1, 1) + datetime.timedelta(days=int(v))
    print(canon.value_str(x))
`
	cmd := exec.Command(python, "-c", prog, readers)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("canon.py: %v", err)
	}
	got := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("canon.py printed %d values for %d inputs", len(got), len(want))
	}
	bad := 0
	for i := range want {
		if got[i] != want[i] {
			if bad++; bad <= 10 {
				t.Errorf("value %d: arrow-go prints %q, canon.py %q", i, want[i], got[i])
			}
		}
	}
	t.Logf("canon.py matches arrow-go's ValueStr on %d values (%d mismatches)", len(want), bad)
}
