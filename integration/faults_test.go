//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/snapshots"
)

// The fault tests' source and range: 8 partitions, v1 -> v2 inside.
const (
	faultEventsFrom    = "2024-04-01"
	faultFrom, faultTo = "2024-04-08", "2024-04-15"
	faultV2From        = "2024-04-11"
	faultPartitions    = 8
	// faultMaxRuns bounds the re-runs of one faulted backfill, faultRunLimit
	// each run: with the proxies' own bounds (count and time) the loop ends.
	faultMaxRuns  = 12
	faultRunLimit = 4 * time.Minute
)

var (
	lostFound = regexp.MustCompile(`commits whose answer was lost and were found landed: (\d+)`)
	gcCounts  = regexp.MustCompile(`(\d+) data files, (\d+) referenced, (\d+) unreferenced \((\d+) deleted, (\d+) younger than`)
)

// faultSeed is ICEFILL_IT_FAULT_SEED, or a fixed default: a failure can be
// replayed with the seed it printed (up to the arrival order of concurrent
// requests).
func faultSeed(t *testing.T) uint64 {
	seed := uint64(20261122)
	if s := os.Getenv("ICEFILL_IT_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ICEFILL_IT_FAULT_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("fault seed %d (set ICEFILL_IT_FAULT_SEED to change it)", seed)
	return seed
}

// scaled multiplies a policy's random fault rates (at most 0.9) and its
// fault budget by ICEFILL_IT_FAULT_SCALE (default 1), to explore harsher
// conditions by hand.
func scaled(t *testing.T, pol faultPolicy) faultPolicy {
	s := os.Getenv("ICEFILL_IT_FAULT_SCALE")
	if s == "" {
		return pol
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		t.Fatalf("ICEFILL_IT_FAULT_SCALE=%q: want a positive number", s)
	}
	rates := map[string]float64{}
	for k, v := range pol.Rate {
		rates[k] = min(v*f, 0.9)
	}
	pol.Rate = rates
	pol.MaxFaults = int(float64(pol.MaxFaults) * max(f, 1))
	t.Logf("fault rates and budget scaled by %g", f)
	return pol
}

var allFaultKinds = []faultKind{fault500, fault503, faultDrop, faultDelay, faultLost503, faultLostDrop}

// catalogFaultPolicy faults the REST catalog. Forced faults make every kind
// happen whatever the seed; above all the first and third partition commits
// land on the server and the client gets a 503, then a closed connection,
// instead of the success. The first two other commits (the schema change and
// the branch creation of the run) lose their answers too.
func catalogFaultPolicy(seed uint64) faultPolicy {
	before := []faultKind{fault500, fault503, faultDrop, faultDelay}
	return faultPolicy{
		Seed: seed, Classify: classifyREST, MaxDelay: 1500 * time.Millisecond, MaxFaults: 40, Window: 4 * time.Minute,
		Forced: map[string]map[int]faultKind{
			"partition-commit": {1: faultLost503, 2: fault503, 3: faultLostDrop, 4: faultDelay, 5: faultDrop, 7: fault500},
			"commit":           {1: faultLostDrop, 2: faultLost503},
			// read 2 is the run's first table load (after GET /v1/config): a 500
			// there is not retried, the first run stops at once (exit 3).
			"read": {2: fault500, 4: fault503, 9: faultDrop, 14: fault500},
		},
		Rate:  map[string]float64{"partition-commit": 0.3, "commit": 0.2, "read": 0.05, "other-write": 0.1},
		Kinds: map[string][]faultKind{"partition-commit": allFaultKinds, "commit": allFaultKinds, "read": before, "other-write": before},
	}
}

// s3FaultPolicy faults S3: source listing and reads, data and manifest
// writes and reads, gc's listing and deletes. An outage of 24 GETs in a row
// (more than the AWS SDK's 3 attempts) makes some partitions fail: the run
// exits 1 and the next one resumes.
func s3FaultPolicy(seed uint64) faultPolicy {
	get := map[int]faultKind{2: fault500, 5: faultDrop, 9: faultLostDrop, 12: fault503, 15: faultDelay}
	for n := 150; n < 174; n++ {
		get[n] = fault503
	}
	return faultPolicy{
		S3: true, Seed: seed + 1, Classify: classifyS3, MaxDelay: time.Second, MaxFaults: 90, Window: 4 * time.Minute,
		Forced: map[string]map[int]faultKind{
			"list": {1: fault503},
			"get":  get,
			"put":  {1: fault503, 3: faultDrop, 5: faultLostDrop, 7: fault500, 9: faultLost503},
			"head": {1: fault503},
		},
		Rate: map[string]float64{"list": 0.1, "get": 0.04, "put": 0.08, "head": 0.05, "delete": 0.2},
		Kinds: map[string][]faultKind{"list": allFaultKinds, "get": allFaultKinds, "put": allFaultKinds,
			"head": allFaultKinds, "delete": allFaultKinds},
	}
}

// TestFaultInjection runs the corrected backfill (--workers 2) through a
// fault-injecting proxy (faultproxy_test.go), in front of the REST catalog
// ("catalog") and in front of S3 ("s3"), re-running `icefill run` until it
// exits 0, and checks the result against a fault-free run of the same
// backfill on another table:
//   - the branch's rows (validate.RefRows, direct connection) are exactly the
//     fault-free run's, so no partition is missing or doubled, and the branch
//     state has one checkpoint per partition and no failure;
//   - every file the branch's snapshots reference (manifest lists, manifests,
//     data files, in the head and every ancestor) exists with its size;
//   - `icefill gc --min-age 0s` deletes the orphans of failed attempts and
//     leaves the branch readable with the same rows;
//   - catalog: lost answers to partition commits that had landed happened, and
//     icefill reported exactly that many as "found landed";
//   - failed runs exit 1 or 3 (retryable), never 2 or 4.
//
// Then "shared-day-load": one partition's unreadable input must fail that
// partition only, not a neighbour sharing a lookback day with it;
// "transient-source-error": a storage error is not reported as a corrupt
// source file; and
// "publish-lost-answers" (after "catalog", on its table): promote and
// rollback through the proxy with their publishing commits' answers lost.
func TestFaultInjection(t *testing.T) {
	seed := faultSeed(t)
	events := "s3://" + bucket + "/events-faults"
	direct := icefillEnv("ICEFILL_S3_ENDPOINT="+s3Endpoint, "AWS_REGION="+os.Getenv("AWS_REGION"))
	mustIcefill(t, direct, "gen-events", "--out", events, "--from", faultEventsFrom, "--to", faultTo,
		"--events-per-day", "2000", "--v2-from", faultV2From, "--seed", "11")

	// The reference: the same backfill with no proxy.
	const cleanTable = "analytics.clv_faults_clean"
	legacyMain(t, direct, cleanTable, events)
	mustIcefill(t, direct, "run", "--source", events, "--from", faultFrom, "--to", faultTo, "--branch", "clv-fix",
		"--workers", "2", "--catalog-uri", restURI, "--table", cleanTable)
	want := goRows(t, restConfig(cleanTable), "s3://"+bucket+"/warehouse/", "clv-fix")["clv-fix"]
	if n := partitions(want); n != faultPartitions {
		t.Fatalf("the fault-free run has %d partitions, want %d", n, faultPartitions)
	}

	catalogOK := t.Run("catalog", func(t *testing.T) {
		px := startFaultProxy(t, "REST catalog", restURI, scaled(t, catalogFaultPolicy(seed)))
		faultedBackfill(t, faultCase{table: "analytics.clv_faults_catalog", proxy: px, catalogURI: px.URL, s3: s3Endpoint,
			events: events, want: want, lostCommits: true})
	})
	t.Run("s3", func(t *testing.T) {
		px := startFaultProxy(t, "S3", s3Endpoint, scaled(t, s3FaultPolicy(seed)))
		faultedBackfill(t, faultCase{table: "analytics.clv_faults_s3", proxy: px, catalogURI: restURI, s3: px.URL,
			events: events, want: want})
	})
	t.Run("shared-day-load", func(t *testing.T) {
		sharedDayLoad(t, events, want)
	})
	t.Run("transient-source-error", func(t *testing.T) {
		transientSourceError(t, events)
	})
	if catalogOK {
		t.Run("publish-lost-answers", func(t *testing.T) {
			publishLostAnswers(t, seed, "analytics.clv_faults_catalog", events)
		})
	}
}

func legacyMain(t *testing.T, env []string, table, events string) {
	t.Helper()
	mustIcefill(t, env, "run", "--source", events, "--from", faultFrom, "--to", faultTo, "--logic", "legacy",
		"--branch", "main", "--write-main", "--catalog-uri", restURI, "--table", table)
}

type faultCase struct {
	table       string
	proxy       *faultProxy
	catalogURI  string // the proxy's or the REST catalog's
	s3          string // the proxy's or the S3 server's
	events      string
	want        []string // the fault-free run's rows
	lostCommits bool     // check the lost answers to commits (REST)
}

func faultedBackfill(t *testing.T, c faultCase) {
	direct := icefillEnv("ICEFILL_S3_ENDPOINT="+s3Endpoint, "AWS_REGION="+os.Getenv("AWS_REGION"))
	legacyMain(t, direct, c.table, c.events) // main as production has it, without faults

	env := icefillEnv("ICEFILL_S3_ENDPOINT="+c.s3, "AWS_REGION="+os.Getenv("AWS_REGION"))
	args := []string{"run", "--source", c.events, "--from", faultFrom, "--to", faultTo, "--branch", "clv-fix",
		"--workers", "2", "--gc-min-age", "0s", "--catalog-uri", c.catalogURI, "--table", c.table}
	recovered := 0
	var codes []string
	for run := 1; ; run++ {
		if run > faultMaxRuns {
			c.proxy.passthrough()
			t.Log(c.proxy.stats().report(c.proxy.name))
			t.Fatalf("icefill run did not succeed in %d runs through the fault proxy (exit codes %v)", faultMaxRuns, codes)
		}
		r := runIcefillWithin(t, faultRunLimit, env, args...)
		codes = append(codes, strconv.Itoa(r.code))
		if m := lostFound.FindStringSubmatch(r.out); m != nil {
			n, _ := strconv.Atoi(m[1])
			recovered += n
		}
		if r.code == 0 && !r.killed {
			break
		}
		if r.code != 1 && r.code != 3 {
			t.Errorf("run %d exited %d under transient faults; want 1 (partitions failed) or 3 (catalog or storage unavailable), the codes that tell a script to retry", run, r.code)
		}
	}
	c.proxy.passthrough()
	st := c.proxy.stats()
	t.Log(st.report(c.proxy.name))
	landed := st.landedLost("partition-commit")
	var kinds []string
	for _, k := range allFaultKinds {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k.short(), st.Counts[k]))
	}
	lost := ""
	if c.lostCommits {
		lost = fmt.Sprintf("; lost answers to partition commits that had landed %d, icefill reported %d found landed", landed, recovered)
	}
	t.Logf("fault-summary: %-12s %d run(s), exit codes %s; %d requests, %d faults: %s%s",
		c.proxy.name, len(codes), strings.Join(codes, ","), st.Requests, st.Faults, strings.Join(kinds, " "), lost)
	for _, k := range allFaultKinds {
		if st.Counts[k] == 0 {
			t.Errorf("the proxy never injected %q: the test did not exercise it", k)
		}
	}

	cfg := restConfig(c.table)
	wh := "s3://" + bucket + "/warehouse/"
	got := goRows(t, cfg, wh, "clv-fix")["clv-fix"]
	sameLines(t, "clv-fix after the faulted runs (vs the fault-free run)", c.want, got)
	samePartitions(t, c.want, got)
	checkState(t, cfg, "clv-fix")
	checkBranchFiles(t, cfg, "clv-fix")

	before := gcDryRun(t, direct, c.table)
	t.Logf("before gc: %s data files, %s referenced, %s unreferenced (orphans of failed attempts)", before[1], before[2], before[3])
	mustIcefill(t, direct, "gc", "--min-age", "0s", "--catalog-uri", restURI, "--table", c.table)
	after := gcDryRun(t, direct, c.table)
	if after[3] != "0" || after[1] != after[2] {
		t.Errorf("after gc --min-age 0s: %s data files, %s referenced, %s unreferenced; want every file referenced", after[1], after[2], after[3])
	}
	got = goRows(t, cfg, wh, "clv-fix")["clv-fix"]
	sameLines(t, "clv-fix after gc --min-age 0s (vs the fault-free run)", c.want, got)
	checkBranchFiles(t, cfg, "clv-fix")
	got = goRows(t, cfg, wh, "main")["main"]
	if n := partitions(got); n != faultPartitions {
		t.Errorf("main has %d partitions after gc, want %d", n, faultPartitions)
	}

	if c.lostCommits {
		if landed == 0 {
			t.Errorf("no answer to a partition commit that had landed was lost: the important case did not happen")
		}
		if recovered == 0 {
			t.Errorf(`icefill never printed "commits whose answer was lost and were found landed: N"`)
		}
		if recovered != landed {
			t.Errorf("icefill reported %d partition commits whose answer was lost and were found landed; the proxy lost the answers of %d that had landed", recovered, landed)
		}
	}
}

// samePartitions compares the row count of every day, naming missing,
// extra and differing days.
func samePartitions(t *testing.T, want, got []string) {
	t.Helper()
	count := func(lines []string) map[string]int {
		m := map[string]int{}
		for _, l := range lines {
			d, _, _ := strings.Cut(l, " ")
			m[strings.TrimPrefix(d, "event_date=")]++
		}
		return m
	}
	w, g := count(want), count(got)
	var days []string
	for d := range w {
		days = append(days, d)
	}
	for d := range g {
		if _, ok := w[d]; !ok {
			days = append(days, d)
		}
	}
	sort.Strings(days)
	var bad []string
	for _, d := range days {
		if w[d] != g[d] {
			bad = append(bad, fmt.Sprintf("%s: %d rows, want %d", d, g[d], w[d]))
		}
	}
	if len(bad) > 0 {
		t.Errorf("partitions missing, doubled or different:\n  %s", strings.Join(bad, "\n  "))
	}
	if len(w) != faultPartitions || len(g) != faultPartitions {
		t.Errorf("%d partitions, want %d (fault-free run: %d)", len(g), faultPartitions, len(w))
	}
}

// checkState: one checkpoint per day of the range, no failure left.
func checkState(t *testing.T, cfg catalog.Config, branch string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, tbl := openTable(ctx, t, cfg)
	defer c.Close()
	st, err := snapshots.LoadState(tbl, branch)
	if err != nil {
		t.Fatalf("branch state: %v", err)
	}
	from, _ := time.Parse(time.DateOnly, faultFrom)
	to, _ := time.Parse(time.DateOnly, faultTo)
	for d := from; !d.After(to); d = d.AddDate(0, 0, 1) {
		if _, ok := st.Checkpoints[d.Format(time.DateOnly)]; !ok {
			t.Errorf("branch %s has no checkpoint for %s", branch, d.Format(time.DateOnly))
		}
	}
	if len(st.Checkpoints) != faultPartitions || len(st.Failures) != 0 {
		t.Errorf("branch %s: %d checkpoints and %d failures recorded, want %d and 0: %v", branch, len(st.Checkpoints), len(st.Failures), faultPartitions, st.Failures)
	}
}

// checkBranchFiles fails for every file that a snapshot of branch (the head
// and all its ancestors) references and that is missing from storage or has
// another size than recorded: manifest lists, manifests, data files.
func checkBranchFiles(t *testing.T, cfg catalog.Config, branch string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, tbl := openTable(ctx, t, cfg)
	defer c.Close()
	loc := strings.TrimSuffix(tbl.Location(), "/")
	st, err := objstore.Open(ctx, loc, cfg.S3)
	if err != nil {
		t.Fatalf("open %s: %v", loc, err)
	}
	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatalf("list %s: %v", loc, err)
	}
	sizes := map[string]int64{}
	for _, o := range objs {
		sizes[loc+"/"+o.Path] = o.Size
	}
	fs, err := tbl.FS(ctx)
	if err != nil {
		t.Fatalf("table FS: %v", err)
	}
	var bad []string
	counts := map[string]int{}
	seen := map[string]bool{}
	check := func(kind, path string, size int64) {
		if seen[path] {
			return
		}
		seen[path] = true
		counts[kind]++
		got, ok := sizes[path]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s %s is missing", kind, path))
		case size >= 0 && got != size:
			bad = append(bad, fmt.Sprintf("%s %s has %d bytes, the metadata says %d", kind, path, got, size))
		}
	}
	snap := tbl.SnapshotByName(branch)
	if snap == nil {
		t.Fatalf("no branch %s", branch)
	}
	for snap != nil {
		counts["snapshot"]++
		check("manifest list", snap.ManifestList, -1)
		manifests, err := snap.Manifests(fs)
		if err != nil {
			t.Fatalf("manifests of snapshot %d: %v", snap.SnapshotID, err)
		}
		for _, m := range manifests {
			if seen[m.FilePath()] {
				continue
			}
			check("manifest", m.FilePath(), m.Length())
			for e, err := range m.Entries(fs, true) {
				if err != nil {
					t.Fatalf("entries of manifest %s: %v", m.FilePath(), err)
				}
				check("data file", e.DataFile().FilePath(), e.DataFile().FileSizeBytes())
			}
		}
		if snap.ParentSnapshotID == nil {
			break
		}
		snap = tbl.Metadata().SnapshotByID(*snap.ParentSnapshotID)
	}
	if len(bad) > 0 {
		t.Errorf("%d files referenced by branch %s are missing or damaged:\n  %s", len(bad), branch, strings.Join(first(bad, 20), "\n  "))
		return
	}
	t.Logf("branch %s: %d snapshots; their %d manifest lists, %d manifests and %d data files all exist with the recorded sizes",
		branch, counts["snapshot"], counts["manifest list"], counts["manifest"], counts["data file"])
}

// gcDryRun runs icefill gc --dry-run --min-age 0s through the direct
// connection and returns the numbers of its summary line.
func gcDryRun(t *testing.T, env []string, table string) []string {
	t.Helper()
	r := mustIcefill(t, env, "gc", "--dry-run", "--min-age", "0s", "--catalog-uri", restURI, "--table", table)
	m := gcCounts.FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("no summary line in the output of icefill gc")
	}
	return m
}

// classifyPublish: the commits of promote and rollback (they rewrite
// icefill.history) are "publish"; nothing else is faulted.
func classifyPublish(r *http.Request, body []byte) string {
	if r.Method == http.MethodPost && restCommitPath.MatchString(r.URL.Path) && bytes.Contains(body, []byte(`"icefill.history"`)) {
		return "publish"
	}
	return ""
}

// publishLostAnswers: on the table of the "catalog" case (main legacy,
// clv-fix corrected), promote directly (P1); recompute one day on clv-fix and
// validate again; then promote (P2) and roll back through the fault proxy, the
// answer of each one's publishing commit lost (the commit lands, icefill gets
// a 503). docs/commit-protocol.md §6.3: a promotion whose answer is lost is
// resolved by reading the table back. A rollback must not report "nothing was
// changed" when it changed main, and the advice it gives ("run rollback
// again") must not undo the earlier promotion P1 as well.
func publishLostAnswers(t *testing.T, seed uint64, table, events string) {
	direct := icefillEnv("ICEFILL_S3_ENDPOINT="+s3Endpoint, "AWS_REGION="+os.Getenv("AWS_REGION"))
	cat := []string{"--catalog-uri", restURI, "--table", table}
	expected := filepath.Join(root, "docs", "expected-clv-fix.yaml")
	validate := append([]string{"validate", "--base", "main", "--candidate", "clv-fix", "--expected", expected, "--sample", "0"}, cat...)
	cfg := restConfig(table)
	wh := "s3://" + bucket + "/warehouse/"
	s := &restStory{cfg: cfg}

	tbl := s.load(t)
	legacyHead := refID(tbl, "main")
	mustIcefill(t, direct, validate...)
	mustIcefill(t, direct, append([]string{"promote", "--branch", "clv-fix"}, cat...)...)
	tbl = s.load(t)
	p1 := refID(tbl, "main")
	afterP1 := goRows(t, cfg, wh, "main")["main"]
	// A second backfill round: one day recomputed on the branch, validated.
	mustIcefill(t, direct, append([]string{"run", "--source", events, "--from", faultTo, "--to", faultTo,
		"--branch", "clv-fix", "--force"}, cat...)...)
	mustIcefill(t, direct, validate...)

	px := startFaultProxy(t, "REST catalog (publish)", restURI, faultPolicy{
		Seed: seed, Classify: classifyPublish, MaxFaults: 3, Window: 10 * time.Minute,
		Forced: map[string]map[int]faultKind{"publish": {1: fault503, 2: faultLost503, 3: faultLost503}},
	})
	proxied := []string{"--catalog-uri", px.URL, "--table", table}

	// The catalog answers the publishing commit 503 without processing it.
	r := runIcefill(t, direct, append([]string{"promote", "--branch", "clv-fix"}, proxied...)...)
	tbl = s.load(t)
	if got := refID(tbl, "main"); got != p1 {
		t.Fatalf("a promotion refused with 503 before reaching the catalog moved main from %d to %d", p1, got)
	}
	if r.code != 3 || strings.Contains(r.out, "main moved") {
		t.Errorf("BUG (minor): promote whose publishing commit the catalog answered 503 (unavailable, nothing processed, main did not move) exits %d and says:\n%s\n"+
			"want exit 3 (\"catalog or storage unavailable: safe to retry\"), not 4 (\"refused by a guard\") with \"main moved\" "+
			"(snapshots/promote.go: every error of the publishing commit becomes ErrMainMoved)", r.code, indent(tail(r.out, 3)))
	}

	// The publishing commit lands; its answer is lost.
	r = runIcefill(t, direct, append([]string{"promote", "--branch", "clv-fix"}, proxied...)...)
	tbl = s.load(t)
	p2 := refID(tbl, "main")
	if p2 == p1 || p2 != refID(tbl, "clv-fix") {
		t.Fatalf("the promotion whose answer was lost did not land (main %d, before %d, clv-fix %d): the test's premise failed", p2, p1, refID(tbl, "clv-fix"))
	}
	if r.code != 0 {
		t.Errorf("promote whose publishing commit landed but whose answer was lost: exit %d, want 0 (commit-protocol.md §6.3: icefill reads back, main at the target with the tag is success)", r.code)
	}

	r = runIcefill(t, direct, append([]string{"rollback"}, proxied...)...)
	st := px.stats()
	t.Log(st.report(px.name))
	if n := st.landedLost("publish"); n != 2 {
		t.Fatalf("want 2 lost answers to publishing commits that had landed, the proxy counted %d", n)
	}
	tbl = s.load(t)
	if got := refID(tbl, "main"); got != p1 {
		t.Fatalf("the rollback whose answer was lost did not land (main %d, want %d): the test's premise failed", got, p1)
	}
	if r.code == 0 && !strings.Contains(r.out, "nothing was changed") {
		return
	}
	t.Errorf("BUG: a rollback whose commit landed (main reset from %d to %d) but whose answer was lost exits %d and says:\n%s\n"+
		"want exit 0: the rollback happened (promote resolves the same case by reading the table back; "+
		"snapshots/rollback.go turns every commit error into ErrMainMoved, \"nothing was changed\")",
		p2, p1, r.code, indent(tail(r.out, 3)))
	// Follow the advice the user was given.
	r2 := runIcefill(t, direct, append([]string{"rollback"}, cat...)...)
	tbl = s.load(t)
	got := goRows(t, cfg, wh, "main")["main"]
	if refID(tbl, "main") != p1 || strings.Join(got, "\n") != strings.Join(afterP1, "\n") {
		t.Errorf("BUG: following that advice (\"run rollback again\") exits %d and also rolls back the earlier promotion: "+
			"main moved from %d (P1, where the one rollback asked for left it) to %d (the legacy main before P1 is %d); main has %d rows, %d after P1",
			r2.code, p1, refID(tbl, "main"), legacyHead, len(got), len(afterP1))
	}
}

var failedLine = regexp.MustCompile(`(?m)^\s*FAILED (\d{4}-\d{2}-\d{2}): (.*)$`)

// sharedDayLoad: the corrected logic reads each partition's day and its 7
// lookback days (oldest first, two at a time), and one process decodes a day
// once for every partition that needs it (rewrite/daycache.go). With
// --order oldest-first and two workers, partition A = 2024-04-08 and
// B = 2024-04-09 start together: A asks for its own day and 2024-04-01 at
// once, B for 2024-04-09 and 2024-04-02, … and 2024-04-08 last. The S3 proxy
// makes 2024-04-01 unreadable (500s: A must fail, its input is unavailable)
// and holds the opening of 2024-04-08's first file for 30 s, so A is still
// decoding its own day when it fails, while B, done with its other days
// within a second or two, waits for that same decode. B's inputs
// (2024-04-02 … 2024-04-09) are all readable: B must not fail. The next run
// completes the branch with exactly the fault-free rows.
func sharedDayLoad(t *testing.T, events string, want []string) {
	const table = "analytics.clv_faults_shared_day"
	day := func(d string) func(*http.Request) bool {
		return func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/events-faults/dt="+d+"/") }
	}
	head := func(d string) func(*http.Request) bool {
		m := day(d)
		return func(r *http.Request) bool { return r.Method == http.MethodHead && m(r) }
	}
	px := startFaultProxy(t, "S3 (shared day)", s3Endpoint, faultPolicy{S3: true, Window: 5 * time.Minute, Rules: []*faultRule{
		{Name: "04-01 unreadable", Match: day("2024-04-01"), Kind: fault500, Max: 30},
		{Name: "04-08 slow", Match: head("2024-04-08"), Kind: faultDelay, Delay: 30 * time.Second, Max: 1},
	}})
	env := icefillEnv("ICEFILL_S3_ENDPOINT="+px.URL, "AWS_REGION="+os.Getenv("AWS_REGION"))
	args := []string{"run", "--source", events, "--from", faultFrom, "--to", faultTo, "--branch", "clv-fix",
		"--workers", "2", "--order", "oldest-first", "--gc-min-age", "0s", "--catalog-uri", restURI, "--table", table}
	r := runIcefillWithin(t, faultRunLimit, env, args...)
	px.passthrough()
	t.Log(px.stats().report(px.name))
	failed := map[string]string{}
	for _, m := range failedLine.FindAllStringSubmatch(r.out, -1) {
		failed[m[1]] = m[2]
	}
	if r.code != 1 || failed["2024-04-08"] == "" || !strings.Contains(failed["2024-04-08"], "2024-04-01") {
		t.Fatalf("premise: partition 2024-04-08 should fail on its unreadable lookback day 2024-04-01 (exit 1); exit %d, failures %v", r.code, failed)
	}
	for d, e := range failed {
		if d == "2024-04-08" {
			continue
		}
		t.Errorf("BUG: partition %s failed although all its inputs were readable:\n    %s\n"+
			"  it was waiting for a day that partition 2024-04-08 was decoding when 2024-04-08 failed: the shared decode runs under "+
			"the context of the partition that started it (rewrite/daycache.go, dayCache.get: load(ctx) with the first caller's ctx; "+
			"rewrite/partition.go, Inputs.Compute: errgroup.WithContext cancels it when one of that partition's days fails), so "+
			"one partition's failure fails its neighbours with \"context canceled\" instead of the cause", d, e)
	}

	direct := icefillEnv("ICEFILL_S3_ENDPOINT="+s3Endpoint, "AWS_REGION="+os.Getenv("AWS_REGION"))
	mustIcefill(t, direct, args...)
	got := goRows(t, restConfig(table), "s3://"+bucket+"/warehouse/", "clv-fix")["clv-fix"]
	sameLines(t, "clv-fix after the failed run and its re-run (vs the fault-free run)", want, got)
}

// transientSourceError: `icefill compute` of 2024-04-08 while S3 answers 500
// to every GET of one lookback day's files (HEAD still works, so the file
// opens and the read of its Parquet footer fails, after the AWS SDK's
// retries). The storage is unavailable, the file is fine: the README's exit
// codes say 3 ("catalog or storage unavailable: safe to retry"), and the
// message must not tell the user to replace or remove the file.
func transientSourceError(t *testing.T, events string) {
	px := startFaultProxy(t, "S3 (source GETs fail)", s3Endpoint, faultPolicy{S3: true, Window: 5 * time.Minute, Rules: []*faultRule{{
		Name: "04-01 GETs 500", Kind: fault500, Max: 100,
		Match: func(r *http.Request) bool {
			return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/events-faults/dt=2024-04-01/")
		},
	}}})
	env := icefillEnv("ICEFILL_S3_ENDPOINT="+px.URL, "AWS_REGION="+os.Getenv("AWS_REGION"))
	r := runIcefill(t, env, "compute", "--source", events, "--date", faultFrom)
	px.passthrough()
	if st := px.stats(); st.Faults == 0 {
		t.Fatalf("premise: no GET of 2024-04-01 was failed")
	}
	if r.code != 3 || strings.Contains(r.out, "replace or remove the file") || strings.Contains(r.out, "not readable Parquet") {
		t.Errorf("BUG (minor): compute while S3 answers 500 to the reads of a source file: exit %d, and it says:\n%s\n"+
			"want exit 3 (storage unavailable: safe to retry) and no advice to replace the file: the file is intact "+
			"(source/source.go, Source.openFile: every error of file.NewParquetReader, the object store's included, "+
			"is wrapped as ErrUnreadable \"not readable Parquet … replace or remove the file\", which cmd/icefill/exit.go maps to 2; "+
			"run reports the same text in its FAILED lines and the branch state)", r.code, indent(tail(r.out, 3)))
	}
}
