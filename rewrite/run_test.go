package rewrite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/pqfile"
	"github.com/icefill/icefill/internal/synth"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/source"
	"github.com/icefill/icefill/spill"
	"github.com/icefill/icefill/validate"
)

var (
	first = features.MustParseDate("2024-01-01")
	last  = features.MustParseDate("2024-01-12")
)

// fixture is a generated source plus an embedded catalog in a temp dir.
type fixture struct {
	t      *testing.T
	srcDir string
	dir    string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	f.srcDir = filepath.Join(f.dir, "events")
	st, err := objstore.NewLocal(f.srcDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Generate(context.Background(), st, synthConfig, nil); err != nil {
		t.Fatal(err)
	}
	return f
}

// catalog opens the fixture's embedded catalog (a fresh handle each call,
// like separate processes).
func (f *fixture) catalog(name string) *catalog.Catalog {
	f.t.Helper()
	cfg := catalog.DefaultConfig()
	cfg.SQLitePath = filepath.Join(f.dir, name, "catalog.db")
	cfg.Warehouse = filepath.Join(f.dir, name, "warehouse")
	cat, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { cat.Close() })
	return cat
}

func (f *fixture) inputs(allowMissing bool) *rewrite.Inputs {
	f.t.Helper()
	src, err := source.Open(context.Background(), f.srcDir, objstore.S3Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	in, err := rewrite.NewInputs(context.Background(), src, rewrite.InputOptions{AllowMissing: allowMissing, Workers: 2})
	if err != nil {
		f.t.Fatal(err)
	}
	return in
}

func opts(branch string) rewrite.RunOptions {
	return rewrite.RunOptions{Branch: branch, Logic: features.Corrected, Days: features.DaysBetween(first, last),
		Workers: 2, RejectLimit: features.DefaultRejectLimit, CompactAbove: 8, CompactEvery: 4, GCMinAge: time.Hour}
}

// rows scans ref and returns its rows as sorted text lines.
func rows(t *testing.T, cat *catalog.Catalog, ref string) []string {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := validate.RefRows(context.Background(), tbl, ref)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertSameRows(t *testing.T, label string, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: reference has no rows", label)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", label, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: row %d differs:\n got  %s\n want %s", label, i, got[i], want[i])
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("%s: duplicated row %s", label, got[i])
		}
	}
}

var (
	refOnce sync.Once
	refRows []string
)

// reference is the branch of one clean, uninterrupted run.
func reference(t *testing.T, f *fixture) []string {
	refOnce.Do(func() {
		cat := f.catalog("reference")
		if _, err := rewrite.Run(context.Background(), cat, f.inputs(false), opts("clv-fix")); err != nil {
			t.Fatal(err)
		}
		refRows = rows(t, cat, "clv-fix")
	})
	return refRows
}

// sharedSource is generated once for the tests that do not modify it.
var sharedSource string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "icefill-rewrite-test-")
	if err != nil {
		panic(err)
	}
	sharedSource = filepath.Join(dir, "events")
	st, _ := objstore.NewLocal(sharedSource)
	if _, err := synth.Generate(context.Background(), st, synthConfig, nil); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var synthConfig = synth.Config{From: first, To: last, EventsPerDay: 1500, Seed: 3, V2From: first + 5, Customers: 300}

// fixtureFor shares the generated source; the catalog is the test's own.
func fixtureFor(t *testing.T) *fixture {
	return &fixture{t: t, srcDir: sharedSource, dir: t.TempDir()}
}

func TestRunResumeIsIdempotent(t *testing.T) {
	f := fixtureFor(t)
	want := reference(t, f)
	cat := f.catalog("c")
	res, err := rewrite.Run(context.Background(), cat, f.inputs(false), opts("clv-fix"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Committed) != 12 {
		t.Fatalf("committed %d partitions, want 12", len(res.Committed))
	}
	assertSameRows(t, "first run", rows(t, cat, "clv-fix"), want)
	tbl, _ := cat.LoadTable(context.Background())
	snaps := len(tbl.Metadata().Snapshots())

	res, err = rewrite.Run(context.Background(), cat, f.inputs(false), opts("clv-fix"))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Committed) != 0 || res.Plan.Count(rewrite.StatusDone) != 12 {
		t.Fatalf("second run committed %d, done %d; want 0 and 12", len(res.Committed), res.Plan.Count(rewrite.StatusDone))
	}
	tbl, _ = cat.LoadTable(context.Background())
	if n := len(tbl.Metadata().Snapshots()); n != snaps {
		t.Fatalf("a run with nothing to do added %d snapshots", n-snaps)
	}
	if tbl.CurrentSnapshot() != nil {
		t.Fatalf("run wrote main")
	}

	// --force recomputes and replaces: never duplicates.
	o := opts("clv-fix")
	o.Force = true
	if _, err := rewrite.Run(context.Background(), cat, f.inputs(false), o); err != nil {
		t.Fatal(err)
	}
	assertSameRows(t, "forced re-run", rows(t, cat, "clv-fix"), want)
}

// TestResumeAfterInjectedFailures fails each step of the commit protocol
// once, then resumes, and compares with the clean run.
func TestResumeAfterInjectedFailures(t *testing.T) {
	f := fixtureFor(t)
	want := reference(t, f)
	for _, tc := range []struct {
		point string
		nth   int64
	}{
		{snapshots.PointBeforeCommit, 1},
		{snapshots.PointBeforeCommit, 7},
		{snapshots.PointLostResponse, 3}, // landed, answer lost: resolved by reading back
		{snapshots.PointAfterCommit, 5},
	} {
		t.Run(fmt.Sprintf("%s#%d", tc.point, tc.nth), func(t *testing.T) {
			cat := f.catalog("c-" + tc.point + fmt.Sprint(tc.nth))
			var hits atomic.Int64
			o := opts("clv-fix")
			o.Fault = func(p string) error {
				if p == tc.point && hits.Add(1) == tc.nth {
					return errors.New("injected fault at " + p)
				}
				return nil
			}
			res, err := rewrite.Run(context.Background(), cat, f.inputs(false), o)
			if tc.point == snapshots.PointLostResponse {
				if err != nil || res.Recovered != 1 {
					t.Fatalf("lost response: err %v, recovered %d; want nil and 1", err, res.Recovered)
				}
			} else if tc.point == snapshots.PointBeforeCommit && err != nil {
				// A failure before the commit is retried by the commit loop.
				t.Fatalf("a failure before the commit must be retried, got %v", err)
			} else if tc.point == snapshots.PointAfterCommit && (err == nil || len(res.Failed) != 1) {
				t.Fatalf("want the after-commit fault reported once, got err %v, failed %d", err, len(res.Failed))
			}
			// The after-commit fault is reported by the caller even though
			// the commit landed; the resume finds the checkpoint.
			res, err = rewrite.Run(context.Background(), cat, f.inputs(false), opts("clv-fix"))
			if err != nil {
				t.Fatal(err)
			}
			assertSameRows(t, "resumed", rows(t, cat, "clv-fix"), want)
			if tc.point == snapshots.PointAfterCommit && len(res.Committed) != 0 {
				t.Fatalf("after-commit fault: the partition had landed, resume recomputed %d", len(res.Committed))
			}
		})
	}
}

// TestCancelMidRunThenResume interrupts a run (context cancelled, as on
// SIGTERM) after a few commits; the resumed run completes identically.
func TestCancelMidRunThenResume(t *testing.T) {
	f := fixtureFor(t)
	want := reference(t, f)
	cat := f.catalog("c")
	ctx, cancel := context.WithCancel(context.Background())
	var commits atomic.Int64
	o := opts("clv-fix")
	o.Fault = func(p string) error {
		if p == snapshots.PointAfterCommit && commits.Add(1) == 4 {
			cancel()
		}
		return nil
	}
	res, err := rewrite.Run(ctx, cat, f.inputs(false), o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if n := len(res.Committed); n < 3 || n >= 12 {
		t.Fatalf("committed %d before the cancel", n)
	}
	res, err = rewrite.Run(context.Background(), cat, f.inputs(false), opts("clv-fix"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Plan.Count(rewrite.StatusDone) < 3 {
		t.Fatalf("resume did not skip the done partitions")
	}
	assertSameRows(t, "resumed", rows(t, cat, "clv-fix"), want)
}

// TestConcurrentMainCommitsAndProcesses runs two "processes" (separate
// catalog handles) on one branch while a third keeps committing to main, as
// the nightly pipeline would. Nothing may fail, be lost or be doubled.
//
// The nightly writer commits up to three times after each move of the
// branch head it sees (and before the first): the backfill's commits keep
// racing commits to main, yet main cannot win every race. A
// writer committing as fast as it can (as this one once did: 671 commits
// while 12 partitions were committed, on a loaded machine) makes every
// attempt of a slow committer lose, and a partition then correctly gives up
// after its 40 attempts (exit 3: run again), which is not what this test is
// about.
func TestConcurrentMainCommitsAndProcesses(t *testing.T) {
	f := fixtureFor(t)
	want := reference(t, f)
	a, b, nightly := f.catalog("c"), f.catalog("c"), f.catalog("c")
	// main must exist before the branch forks from it: a legacy day.
	legacyDay := features.MustParseDate("2023-12-31")
	appendLegacyRows(t, nightly, legacyDay, 5)

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var nightlyCommits atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		var seen int64 = -1 // the branch head last seen
		credit := 0         // commits to main left until the branch head moves
		for i := 0; ctx.Err() == nil; {
			time.Sleep(5 * time.Millisecond)
			head, err := branchHead(nightly, "clv-fix")
			if err != nil {
				continue
			}
			if head != seen {
				seen, credit = head, 3
			}
			if credit == 0 {
				continue
			}
			if err := appendLegacyRowsErr(nightly, legacyDay-features.Date(1+i), 3); err == nil {
				nightlyCommits.Add(1)
				credit--
				i++
			}
		}
	}()
	var errA, errB error
	var resA, resB *rewrite.RunResult
	var runs sync.WaitGroup
	runs.Add(2)
	go func() {
		defer runs.Done()
		resA, errA = rewrite.Run(context.Background(), a, f.inputs(false), opts("clv-fix"))
	}()
	go func() {
		defer runs.Done()
		o := opts("clv-fix")
		o.Order = rewrite.OldestFirst
		resB, errB = rewrite.Run(context.Background(), b, f.inputs(false), o)
	}()
	runs.Wait()
	stop()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("runs failed: %v / %v", errA, errB)
	}
	if nightlyCommits.Load() == 0 {
		t.Fatal("the nightly writer never committed: the test proves nothing")
	}
	got := rows(t, a, "clv-fix")
	// The branch forked from main, with the legacy days the nightly writer
	// had committed by then (all before the backfill's range); the
	// backfill's days are the reference's rows.
	var backfill []string
	for _, r := range got {
		if r >= "event_date="+first.String() {
			backfill = append(backfill, r)
		}
	}
	assertSameRows(t, "two processes beside the nightly job", backfill, want)
	t.Logf("process A committed %d, B %d, nightly commits to main %d", len(resA.Committed), len(resB.Committed), nightlyCommits.Load())
	if len(resA.Committed)+len(resB.Committed) < 12 {
		t.Fatalf("only %d partitions committed", len(resA.Committed)+len(resB.Committed))
	}
}

// branchHead is the snapshot id of branch's head (0 before it exists).
func branchHead(cat *catalog.Catalog, branch string) (int64, error) {
	tbl, err := cat.LoadTable(context.Background())
	if err != nil {
		return 0, err
	}
	if s := tbl.SnapshotByName(branch); s != nil {
		return s.SnapshotID, nil
	}
	return 0, nil
}

func appendLegacyRows(t *testing.T, cat *catalog.Catalog, day features.Date, n int) {
	t.Helper()
	if err := appendLegacyRowsErr(cat, day, n); err != nil {
		t.Fatal(err)
	}
}

// appendLegacyRowsErr commits n legacy rows for day to main (the nightly job).
func appendLegacyRowsErr(cat *catalog.Catalog, day features.Date, n int) error {
	ctx := context.Background()
	tbl, _, err := cat.EnsureTable(ctx)
	if err != nil {
		return err
	}
	out := &features.Output{Date: day, Logic: features.Legacy}
	for i := 0; i < n; i++ {
		out.CustomerID = append(out.CustomerID, features.CustomerFromV1(int64(i)))
		out.Channel = append(out.Channel, "direct")
		out.Orders = append(out.Orders, 1)
		out.Gross = append(out.Gross, 100)
		out.Refund = append(out.Refund, 0)
		out.Net = append(out.Net, 100)
		out.Country = append(out.Country, "")
		out.CountryOK = append(out.CountryOK, false)
	}
	rec := out.Record(memory.DefaultAllocator, features.LegacySchema)
	defer rec.Release()
	rdr, err := array.NewRecordReader(features.LegacySchema, []arrow.RecordBatch{rec})
	if err != nil {
		return err
	}
	defer rdr.Release()
	_, err = tbl.Append(ctx, rdr, iceberg.Properties{"writer": "nightly"})
	return err
}

func TestChangedSourceIsRecomputed(t *testing.T) {
	f := newFixture(t)
	cat := f.catalog("c")
	if _, err := rewrite.Run(context.Background(), cat, f.inputs(false), opts("clv-fix")); err != nil {
		t.Fatal(err)
	}
	// A late file lands in day 5: day 5 and the partitions whose lookback
	// includes it (6…12) must be recomputed, the others skipped.
	changed := first + 4
	extra := fmt.Sprintf("%s/%s/part-99999-late.parquet", f.srcDir, source.DayDir(changed))
	copyFile(t, filepath.Join(f.srcDir, source.DayDir(changed), "part-00000-v1.parquet"), extra)
	res, err := rewrite.Run(context.Background(), cat, f.inputs(false), opts("clv-fix"))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Plan.Count(rewrite.StatusSourceChanged); got != 8 {
		t.Fatalf("%d partitions seen as source-changed, want 8 (the day and its 7 dependants)", got)
	}
	// The state remembers which days the plan found changed (for the
	// report), and that each was recomputed with its new input since.
	tbl, err := cat.LoadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshots.LoadState(tbl, "clv-fix")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.SourceChanged) != 8 {
		t.Errorf("state records %d source-changed days, want 8", len(st.SourceChanged))
	}
	for day := range st.SourceChanged {
		if st.IsSourceChanged(day) {
			t.Errorf("%s still shows as source-changed after its recompute", day)
		}
		if cp := st.Checkpoints[day]; cp.Bytes <= 0 {
			t.Errorf("%s: checkpoint records %d source bytes", day, cp.Bytes)
		}
	}
	fresh := f.catalog("fresh")
	if _, err := rewrite.Run(context.Background(), fresh, f.inputs(false), opts("clv-fix")); err != nil {
		t.Fatal(err)
	}
	assertSameRows(t, "recomputed after a source change", rows(t, cat, "clv-fix"), rows(t, fresh, "clv-fix"))
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMissingDaysStopBeforeAnythingIsWritten(t *testing.T) {
	f := newFixture(t)
	if err := os.RemoveAll(filepath.Join(f.srcDir, source.DayDir(first+6))); err != nil {
		t.Fatal(err)
	}
	cat := f.catalog("c")
	o := opts("clv-fix")
	o.Days = features.DaysBetween(first+8, last) // day 7 is only a lookback day
	_, err := rewrite.Run(context.Background(), cat, f.inputs(false), o)
	var me *source.MissingDaysError
	if !errors.As(err, &me) || len(me.Lookback) != 1 || me.Lookback[0] != first+6 || len(me.Partitions) != 0 {
		t.Fatalf("want a missing lookback day %s, got %v", first+6, err)
	}
	if _, err := cat.LoadTable(context.Background()); err == nil {
		t.Fatal("the table was created although the run stopped on missing input")
	}
	// Told to proceed, the missing day counts as empty.
	if _, err := rewrite.Run(context.Background(), cat, f.inputs(true), o); err != nil {
		t.Fatalf("with allow-missing: %v", err)
	}
	// Lookback days before the source's first day are not missing.
	o.Days = features.DaysBetween(first, first+2)
	if _, err := rewrite.Run(context.Background(), cat, f.inputs(false), o); err != nil {
		t.Fatalf("first days of the source: %v", err)
	}
}

func TestRejectLimitFailsOnlyThatPartition(t *testing.T) {
	f := newFixture(t)
	bad := first + 9
	writeBadRows(t, filepath.Join(f.srcDir, source.DayDir(bad)), 50)
	cat := f.catalog("c")
	res, err := rewrite.Run(context.Background(), cat, f.inputs(false), opts("clv-fix"))
	if !errors.Is(err, rewrite.ErrPartitionsFailed) || len(res.Failed) != 1 || res.Failed[0].Day != bad {
		t.Fatalf("want exactly %s failed, got err %v failed %v", bad, err, res.Failed)
	}
	var rl *features.RejectLimitError
	if !errors.As(res.Failed[0].Err, &rl) {
		t.Fatalf("failure is not the reject limit: %v", res.Failed[0].Err)
	}
	if len(res.Committed) != 11 {
		t.Fatalf("committed %d, want the other 11", len(res.Committed))
	}
	tbl, _ := cat.LoadTable(context.Background())
	st, err := rewrite.BranchStatus(tbl, "clv-fix")
	if err != nil {
		t.Fatal(err)
	}
	if st.Done != 11 || st.Remaining != 1 || len(st.Failed) != 1 || st.Failed[0].Day != bad.String() {
		t.Fatalf("status: done %d remaining %d failed %+v", st.Done, st.Remaining, st.Failed)
	}
	// Rejected rows are kept beside the table.
	loc := strings.TrimPrefix(tbl.Location(), "file://")
	matches, _ := filepath.Glob(filepath.Join(loc, "_icefill", "rejects", "clv-fix", "dt=*", "*.parquet"))
	if len(matches) == 0 {
		t.Fatal("no rejects file written")
	}
	// Raising the limit lets the partition through on the next run.
	o := opts("clv-fix")
	o.RejectLimit = 0.5
	if res, err = rewrite.Run(context.Background(), cat, f.inputs(false), o); err != nil || len(res.Committed) != 1 {
		t.Fatalf("retry: err %v committed %d", err, len(res.Committed))
	}
}

var partitionFile = regexp.MustCompile(`^(rows-|r\d{4}-\d\d-\d\d-)`)

// TestRejectsWriteFailureReleasesSpill: a spilled partition whose rejected
// rows cannot be written out fails, and its spill files (rows, rejects)
// are removed then, not left on local disk until the process ends.
func TestRejectsWriteFailureReleasesSpill(t *testing.T) {
	f := newFixture(t)
	bad := first + 9
	writeBadRows(t, filepath.Join(f.srcDir, source.DayDir(bad)), 5)
	cat := f.catalog("c")
	tbl, _, err := cat.EnsureTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A file where the rejects folder goes: writing them fails.
	loc := filepath.Join(strings.TrimPrefix(tbl.Location(), "file://"), "_icefill")
	if err := os.MkdirAll(loc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(loc, "rejects"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sd, err := spill.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, err := source.Open(context.Background(), f.srcDir, objstore.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := rewrite.NewInputs(context.Background(), src, rewrite.InputOptions{Workers: 2, MemoryLimit: 1 << 30, SpillBuckets: 4, SpillDir: sd})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	o := opts("clv-fix")
	o.Days = []features.Date{bad}
	res, err := rewrite.Run(context.Background(), cat, in, o)
	if !errors.Is(err, rewrite.ErrPartitionsFailed) || len(res.Failed) != 1 {
		t.Fatalf("want the partition failed on its rejects, got %v", err)
	}
	var left []string
	filepath.WalkDir(sd.Path, func(p string, d os.DirEntry, err error) error {
		// The partition's own files: its rows and its link to the day's
		// rejects (the day's files stay cached for the next partitions).
		if err == nil && !d.IsDir() && partitionFile.MatchString(d.Name()) {
			left = append(left, d.Name())
		}
		return nil
	})
	if len(left) > 0 {
		t.Fatalf("the failed partition's spill files remain: %v", left)
	}
}

// writeBadRows adds a v2 file of n rows whose user_id is not a UUID.
func writeBadRows(t *testing.T, dir string, n int) {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.BinaryTypes.String},
		{Name: "event_ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}},
		{Name: "schema_version", Type: arrow.PrimitiveTypes.Int32},
		{Name: "user_id", Type: arrow.BinaryTypes.String},
		{Name: "event_type", Type: arrow.BinaryTypes.String},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := 0; i < n; i++ {
		b.Field(0).(*array.StringBuilder).Append(fmt.Sprintf("bad-%d", i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(first.StartMicros()))
		b.Field(2).(*array.Int32Builder).Append(2)
		b.Field(3).(*array.StringBuilder).Append("not-a-uuid")
		b.Field(4).(*array.StringBuilder).Append("order")
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	st, _ := objstore.NewLocal(dir)
	if err := pqfile.Write(context.Background(), st, "zz-bad.parquet", schema, rec); err != nil {
		t.Fatal(err)
	}
}

func TestGCDeletesOnlyOldUnreferencedFiles(t *testing.T) {
	f := fixtureFor(t)
	cat := f.catalog("c")
	o := opts("clv-fix")
	o.Days = features.DaysBetween(first, first+2)
	if _, err := rewrite.Run(context.Background(), cat, f.inputs(false), o); err != nil {
		t.Fatal(err)
	}
	tbl, _ := cat.LoadTable(context.Background())
	dataDir := filepath.Join(strings.TrimPrefix(tbl.Location(), "file://"), "data")
	old := filepath.Join(dataDir, "event_date=2024-01-01", "orphan-old.parquet")
	young := filepath.Join(dataDir, "event_date=2024-01-01", "orphan-young.parquet")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	before := rows(t, cat, "clv-fix")
	res, err := snapshots.CollectGarbage(context.Background(), cat.Iceberg(), cat.Ident(), snapshots.GCOptions{MinAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deleted != 1 || res.Young != 1 {
		t.Fatalf("deleted %d, young %d; want 1 and 1", res.Deleted, res.Young)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatal("old orphan still there")
	}
	if _, err := os.Stat(young); err != nil {
		t.Fatal("young orphan deleted: it may belong to a live writer")
	}
	// Everything referenced is intact: the branch reads the same.
	res, err = snapshots.CollectGarbage(context.Background(), cat.Iceberg(), cat.Ident(), snapshots.GCOptions{MinAge: time.Nanosecond})
	if err != nil || res.Deleted != 1 {
		t.Fatalf("second pass: %v deleted %d", err, res.Deleted)
	}
	assertSameRows(t, "after gc", rows(t, cat, "clv-fix"), before)
}

func TestEmptyDayFolderIsMissingAndSubfoldersIgnored(t *testing.T) {
	f := newFixture(t)
	day := first + 3
	dir := filepath.Join(f.srcDir, source.DayDir(day))
	// Move the day's files into a sub-folder: not part of the contract, so
	// the day folder is empty and the day is missing.
	sub := filepath.Join(dir, "late")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !e.IsDir() {
			os.Rename(filepath.Join(dir, e.Name()), filepath.Join(sub, e.Name()))
		}
	}
	cat := f.catalog("c")
	_, err := rewrite.Run(context.Background(), cat, f.inputs(false), opts("clv-fix"))
	var me *source.MissingDaysError
	if !errors.As(err, &me) || len(me.Partitions) != 1 || me.Partitions[0] != day {
		t.Fatalf("want day %s missing, got %v", day, err)
	}
	if _, err := cat.LoadTable(context.Background()); err == nil {
		t.Fatal("the table was created although the run stopped on missing input")
	}
}

// TestRunLogsEachPhaseAtDebug checks the debug records that show a run's
// schedule (docs/performance.md reads where workers wait from them): every
// partition's compute and data files, and every source day's decode.
func TestRunLogsEachPhaseAtDebug(t *testing.T) {
	f := fixtureFor(t)
	var buf bytes.Buffer // slog's handlers serialize their writes
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	src, err := source.Open(context.Background(), f.srcDir, objstore.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := rewrite.NewInputs(context.Background(), src, rewrite.InputOptions{Workers: 2, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	o := opts("phases")
	o.Log = log
	if _, err := rewrite.Run(context.Background(), f.catalog("c"), in, o); err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if _, ok := rec["took"]; !ok {
			continue
		}
		day, _ := rec["partition"].(string)
		if d, ok := rec["day"].(string); ok {
			day = d
		}
		seen[rec["msg"].(string)+" "+day]++
	}
	for _, d := range o.Days {
		for _, msg := range []string{"partition computed", "data files written"} {
			if seen[msg+" "+d.String()] != 1 {
				t.Errorf("%q for partition %s logged %d times, want once", msg, d, seen[msg+" "+d.String()])
			}
		}
	}
	for d := first; d <= last; d++ { // the source starts at first
		if seen["decoded source day "+d.String()] == 0 {
			t.Errorf("no debug record of source day %s decoded", d)
		}
	}
}

// Days are decoded ahead only for in-memory partitions of the corrected
// logic, two per worker at most and only when the budget holds them; never
// for the external path.
func TestReadAheadOnlyForTheInMemoryPath(t *testing.T) {
	f := fixtureFor(t)
	src, err := source.Open(context.Background(), f.srcDir, objstore.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	days := features.DaysBetween(first+7, last)
	for _, tc := range []struct {
		name  string
		opts  rewrite.InputOptions
		logic features.Logic
		want  int
	}{
		{"no budget", rewrite.InputOptions{Workers: 2}, features.Corrected, 4},
		{"within the budget", rewrite.InputOptions{Workers: 3, MemoryLimit: 1 << 30, SpillDir: spillDir(t)}, features.Corrected, 6},
		{"every partition spills", rewrite.InputOptions{Workers: 2, MemoryLimit: 1 << 30, SpillBuckets: 4, SpillDir: spillDir(t)}, features.Corrected, 0},
		{"legacy reads each day once", rewrite.InputOptions{Workers: 2}, features.Legacy, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := rewrite.NewInputs(context.Background(), src, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			in.ReadAhead(context.Background(), days, tc.logic)
			if got := in.ReadAheadDays(); got != tc.want {
				t.Errorf("reads %d days ahead, want %d", got, tc.want)
			}
		})
	}
}

func spillDir(t *testing.T) *spill.Dir {
	t.Helper()
	sd, err := spill.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return sd
}
