//go:build integration

package integration

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/snapshots"
)

// restStory is the REST catalog + S3 table of TestRESTBackfillReadersAgree after
// its backfill: what the publishing steps need.
type restStory struct {
	env      []string // icefill's environment (S3 endpoint, region)
	cat      []string // --catalog-uri … --table …
	cfg      catalog.Config
	events   string // the source, s3://…
	v2From   string
	from, to string // the backfilled range
	rd       *refReaders
}

// refReaders are the other engines: PyIceberg and DuckDB (a new process per
// read), Spark (one session for the whole test, see sparkServer) and Trino (one
// server for the whole suite, queried by the Trino CLI).
type refReaders struct {
	py    readerArgs
	env   []string
	spark *sparkServer
}

func newRESTReaders(t *testing.T) *refReaders {
	t.Helper()
	rargs := readerArgs{"--catalog-uri", restURI, "--s3-endpoint", s3Endpoint}
	env := icefillEnv("ICEFILL_S3_ENDPOINT=" + s3Endpoint)
	return &refReaders{py: rargs, env: env, spark: startSparkServer(t, rargs, env, tableName)}
}

// check reads refs with every reader, as they are now, and compares each with
// want[ref] (icefill's rows). stage labels the lines run.sh summarizes.
func (r *refReaders) check(t *testing.T, stage string, want map[string][]string, refs ...string) {
	t.Helper()
	for _, reader := range []string{"pyiceberg", "duckdb", "trino"} {
		got := readRefs(t, reader, r.py, r.env, refs...)
		for _, ref := range refs {
			sameRows(t, stage, reader, ref, want[ref], got[ref])
		}
	}
	got := r.spark.read(t, refs...)
	for _, ref := range refs {
		sameRows(t, stage, "spark", ref, want[ref], got[ref])
	}
}

func (s *restStory) rows(t *testing.T, refs ...string) map[string][]string {
	t.Helper()
	return goRows(t, s.cfg, "s3://"+bucket+"/warehouse/", refs...)
}

// load reads the table's metadata through a direct connection.
func (s *restStory) load(t *testing.T) *table.Table {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := catalog.Open(ctx, s.cfg)
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	defer c.Close()
	tbl, err := c.LoadTable(ctx)
	if err != nil {
		t.Fatalf("load table: %v", err)
	}
	return tbl
}

func (s *restStory) icefill(t *testing.T, args ...string) result {
	t.Helper()
	return runIcefill(t, s.env, append(args, s.cat...)...)
}

func (s *restStory) mustIcefill(t *testing.T, args ...string) result {
	t.Helper()
	return mustIcefill(t, s.env, append(args, s.cat...)...)
}

// refID is the snapshot a ref points at (0 when it does not exist).
func refID(tbl *table.Table, name string) int64 {
	for n, r := range tbl.Metadata().Refs() {
		if n == name {
			return r.SnapshotID
		}
	}
	return 0
}

// tagsOf maps the table's tags to their snapshots.
func tagsOf(tbl *table.Table) map[string]int64 {
	out := map[string]int64{}
	for n, r := range tbl.Metadata().Refs() {
		if r.SnapshotRefType == table.TagRef {
			out[n] = r.SnapshotID
		}
	}
	return out
}

// columnsOf returns the column names of canonical lines, failing unless every
// line has the same ones.
func columnsOf(t *testing.T, what string, lines []string) []string {
	t.Helper()
	names := func(l string) []string {
		var ns []string
		for _, tok := range strings.Split(l, " ") {
			if n, _, ok := strings.Cut(tok, "="); ok {
				ns = append(ns, n)
			}
		}
		return ns
	}
	if len(lines) == 0 {
		t.Fatalf("%s: no rows", what)
	}
	first := names(lines[0])
	for _, l := range lines[1:] {
		if !slices.Equal(names(l), first) {
			t.Fatalf("%s: rows with different columns:\n  %s\n  %s", what, lines[0], l)
		}
	}
	return first
}

func schemaNames(full bool) []string {
	s := features.LegacySchema
	if full {
		s = features.FullSchema
	}
	var out []string
	for _, f := range s.Fields() {
		out = append(out, f.Name)
	}
	return out
}

// wantColumns fails unless lines have exactly the legacy (8) or full (11) columns.
func wantColumns(t *testing.T, what string, lines []string, full bool) {
	t.Helper()
	if got, want := columnsOf(t, what, lines), schemaNames(full); !slices.Equal(got, want) {
		t.Errorf("%s: columns %v, want %v", what, got, want)
	}
}

// dayRows splits canonical lines by event_date.
func dayRows(lines []string, day string) (in, out []string) {
	for _, l := range lines {
		if strings.HasPrefix(l, "event_date="+day+" ") {
			in = append(in, l)
		} else {
			out = append(out, l)
		}
	}
	return in, out
}

// sameLines fails unless got equals want (both icefill's scans).
func sameLines(t *testing.T, what string, want, got []string) {
	t.Helper()
	if strings.Join(want, "\n") == strings.Join(got, "\n") {
		return
	}
	onlyWant, onlyGot := diff(want, got)
	t.Errorf("%s: %d rows, want %d; %d rows missing, %d unexpected; first of each:\n  missing:    %s\n  unexpected: %s",
		what, len(got), len(want), len(onlyWant), len(onlyGot),
		strings.Join(first(onlyWant, 3), "\n              "), strings.Join(first(onlyGot, 3), "\n              "))
}

// publishStory continues TestRESTBackfillReadersAgree after the backfill:
// legacy and fix are icefill's rows of main and clv-fix at that point.
//
//  1. validate passes and records the pass; promote fast-forwards main; main
//     then holds exactly clv-fix's rows (11 columns) for icefill, PyIceberg and
//     Spark (the same Spark session that read the legacy main before).
//  2. rollback resets main; all three read exactly the legacy rows again.
//  3. the nightly job commits one more legacy day to main; promote refuses
//     (exit 4) and names the day; run --catch-up recomputes it; validate
//     passes again; promote rebases; main == clv-fix for all three, the
//     backfilled days unchanged and the new day with corrected values.
//  4. rollback again: main is back at the nightly snapshot for all three.
func publishStory(t *testing.T, s *restStory, legacy, fix []string) {
	expected := filepath.Join(root, "docs", "expected-clv-fix.yaml")
	validate := func(t *testing.T) {
		t.Helper()
		r := s.icefill(t, "validate", "--base", "main", "--candidate", "clv-fix", "--expected", expected, "--sample", "5")
		if r.code != 0 {
			t.Fatalf("validate --base main --candidate clv-fix: exit %d, want 0 (a pass)", r.code)
		}
		tbl := s.load(t)
		mainID, fixID := refID(tbl, "main"), refID(tbl, "clv-fix")
		if !strings.Contains(r.out, "RESULT: PASS") {
			t.Errorf("validate exited 0 without printing RESULT: PASS")
		}
		if rec := fmt.Sprintf("recorded: clv-fix snapshot %d passed against main snapshot %d", fixID, mainID); !strings.Contains(r.out, rec) {
			t.Errorf("validate did not print %q", rec)
		}
		v, err := snapshots.ReadValidation(tbl.Properties(), "clv-fix")
		if err != nil || v == nil {
			t.Fatalf("no validation recorded in the table after a pass (err %v)", err)
		}
		if v.CandidateSnapshot != fixID || v.BaseSnapshot != mainID || v.Candidate != "clv-fix" || v.Base != "main" {
			t.Fatalf("recorded validation %+v; want candidate clv-fix@%d against main@%d", *v, fixID, mainID)
		}
	}

	var legacyHead, fixHead int64
	if !t.Run("validate-promote", func(t *testing.T) {
		validate(t)
		tbl := s.load(t)
		legacyHead, fixHead = refID(tbl, "main"), refID(tbl, "clv-fix")
		r := s.mustIcefill(t, "promote", "--branch", "clv-fix")
		if want := fmt.Sprintf("promoted clv-fix onto main by fast-forward: main %d -> %d", legacyHead, fixHead); !strings.Contains(r.out, want) {
			t.Errorf("promote output lacks %q", want)
		}
		tbl = s.load(t)
		if got := refID(tbl, "main"); got != fixHead {
			t.Fatalf("after promote main is at %d, want clv-fix's head %d", got, fixHead)
		}
		tagged := 0
		for name, id := range tagsOf(tbl) {
			if strings.HasPrefix(name, "pre-promote-clv-fix-") && strings.HasSuffix(name, fmt.Sprint(legacyHead)) && id == legacyHead {
				tagged++
			}
		}
		if tagged != 1 {
			t.Errorf("want one tag pre-promote-clv-fix-…-%d on the old main; tags: %v", legacyHead, tagsOf(tbl))
		}
		got := s.rows(t, "main")["main"]
		sameLines(t, "icefill's scan of main after promote (vs clv-fix before)", fix, got)
		wantColumns(t, "main after promote", got, true)
		s.rd.check(t, "REST+S3 promoted", map[string][]string{"main": fix}, "main")
	}) {
		return
	}

	if !t.Run("rollback", func(t *testing.T) {
		r := s.mustIcefill(t, "rollback")
		if !strings.Contains(r.out, "rolled back main by reset to pre-promote-clv-fix-") ||
			!strings.Contains(r.out, fmt.Sprintf("main %d -> %d", fixHead, legacyHead)) {
			t.Errorf("rollback output: want a reset of main from %d to %d", fixHead, legacyHead)
		}
		tbl := s.load(t)
		if got := refID(tbl, "main"); got != legacyHead {
			t.Fatalf("after rollback main is at %d, want the pre-promotion snapshot %d", got, legacyHead)
		}
		if got := refID(tbl, "clv-fix"); got != fixHead {
			t.Errorf("rollback moved clv-fix to %d (was %d)", got, fixHead)
		}
		all, err := snapshots.ReadHistory(tbl.Properties())
		// The legacy build wrote main directly (run --write-main), which the
		// history records too: only the publishing events matter here.
		var events []snapshots.Event
		for _, e := range all {
			if e.Kind == "promote" || e.Kind == "rollback" {
				events = append(events, e)
			}
		}
		if err != nil || len(events) != 2 || events[0].Kind != "promote" || !events[0].RolledBack || events[1].Kind != "rollback" {
			t.Errorf("history after promote+rollback: %+v (err %v); want a promotion marked rolled back, then a rollback", events, err)
		}
		got := s.rows(t, "main")["main"]
		sameLines(t, "icefill's scan of main after rollback (vs main before promote)", legacy, got)
		wantColumns(t, "main after rollback", got, false)
		s.rd.check(t, "REST+S3 rolled-back", map[string][]string{"main": legacy}, "main")
	}) {
		return
	}

	// The nightly job adds a day the backfill did not cover.
	const nightly = "2024-03-12"
	if nightly <= s.to {
		t.Fatalf("the nightly day %s must come after the backfill (%s … %s)", nightly, s.from, s.to)
	}
	var nightlyHead int64
	var nightlyRows []string
	if !t.Run("main-moved-refused", func(t *testing.T) {
		mustIcefill(t, s.env, "gen-events", "--out", s.events, "--from", nightly, "--to", nightly,
			"--events-per-day", "3000", "--v2-from", s.v2From, "--seed", "8")
		s.mustIcefill(t, "run", "--source", s.events, "--from", nightly, "--to", nightly, "--logic", "legacy", "--branch", "main", "--write-main")
		tbl := s.load(t)
		nightlyHead = refID(tbl, "main")
		tagsBefore := tagsOf(tbl)
		nightlyRows = s.rows(t, "main")["main"]
		if n := partitions(nightlyRows); n != 11 {
			t.Fatalf("main has %d partitions after the nightly commit, want 11", n)
		}
		day, rest := dayRows(nightlyRows, nightly)
		if len(day) == 0 || len(rest) != len(legacy) {
			t.Fatalf("main after the nightly commit: %d rows on %s and %d on other days (want >0 and %d, the legacy rows)", len(day), nightly, len(rest), len(legacy))
		}

		r := s.icefill(t, "promote", "--branch", "clv-fix")
		if r.code != 4 {
			t.Fatalf("promote after main moved: exit %d, want 4 (refused: main changed a day the branch has not recomputed)", r.code)
		}
		if !strings.Contains(r.out, nightly) || !strings.Contains(r.out, "--catch-up") {
			t.Errorf("the refusal should name %s and point to run --catch-up", nightly)
		}
		tbl = s.load(t)
		if got := refID(tbl, "main"); got != nightlyHead {
			t.Errorf("a refused promote moved main from %d to %d", nightlyHead, got)
		}
		if got := tagsOf(tbl); len(got) != len(tagsBefore) {
			t.Errorf("a refused promote changed the tags: %v -> %v", tagsBefore, got)
		}
		s.rd.check(t, "REST+S3 nightly", map[string][]string{"main": nightlyRows}, "main")
	}) {
		return
	}

	if !t.Run("catch-up-rebase-promote", func(t *testing.T) {
		r := s.mustIcefill(t, "run", "--catch-up", "--branch", "clv-fix", "--source", s.events)
		if want := "catching up 1 partition(s) main changed since the fork: " + nightly; !strings.Contains(r.out, want) {
			t.Errorf("catch-up output lacks %q", want)
		}
		validate(t)
		caught := s.rows(t, "clv-fix")["clv-fix"]
		tbl := s.load(t)
		preRebase := refID(tbl, "clv-fix")
		r = s.mustIcefill(t, "promote", "--branch", "clv-fix")
		if want := fmt.Sprintf("promoted clv-fix onto main by rebase: main %d -> ", nightlyHead); !strings.Contains(r.out, want) {
			t.Errorf("promote output lacks %q", want)
		}
		tbl = s.load(t)
		mainID := refID(tbl, "main")
		if mainID == nightlyHead || mainID == preRebase {
			t.Fatalf("after the rebase main is at %d (nightly %d, branch before %d): want a new snapshot", mainID, nightlyHead, preRebase)
		}
		if got := refID(tbl, "clv-fix"); got != mainID {
			t.Errorf("after the rebase clv-fix is at %d, main at %d: promote points both at the result", got, mainID)
		}
		got := s.rows(t, "main", "clv-fix")
		sameLines(t, "icefill's scan of main after the rebase (vs clv-fix)", got["clv-fix"], got["main"])
		sameLines(t, "icefill's scan of clv-fix after the rebase (vs before)", caught, got["clv-fix"])
		wantColumns(t, "main after the rebase", got["main"], true)
		if n := partitions(got["main"]); n != 11 {
			t.Errorf("main has %d partitions after the rebase, want 11", n)
		}
		day, rest := dayRows(got["main"], nightly)
		sameLines(t, "main after the rebase, the backfilled days (vs clv-fix at the first promotion)", fix, rest)
		legacyDay, _ := dayRows(nightlyRows, nightly)
		if len(day) == 0 || strings.Join(day, "\n") == strings.Join(legacyDay, "\n") {
			t.Errorf("main after the rebase: %s has %d rows, identical to the nightly legacy rows: want the corrected ones", nightly, len(day))
		}
		for _, l := range day {
			if strings.Contains(l, " touches_7d=(null)") {
				t.Errorf("main after the rebase: %s holds a row without corrected features: %s", nightly, l)
				break
			}
		}
		s.rd.check(t, "REST+S3 rebased", map[string][]string{"main": got["main"], "clv-fix": got["clv-fix"]}, "main", "clv-fix")
	}) {
		return
	}

	t.Run("rollback-rebase", func(t *testing.T) {
		s.mustIcefill(t, "rollback")
		tbl := s.load(t)
		if got := refID(tbl, "main"); got != nightlyHead {
			t.Fatalf("after the second rollback main is at %d, want the nightly snapshot %d", got, nightlyHead)
		}
		got := s.rows(t, "main")["main"]
		sameLines(t, "icefill's scan of main after the second rollback (vs the nightly main)", nightlyRows, got)
		s.rd.check(t, "REST+S3 rolled-back-2", map[string][]string{"main": nightlyRows}, "main")
		r := s.mustIcefill(t, "history")
		if n := len(regexp.MustCompile(`(?m)^\s+\S+\s+(promote|rollback)\s`).FindAllString(r.out, -1)); n != 4 {
			t.Errorf("history lists %d promotions and rollbacks, want 4", n)
		}
	})
}
