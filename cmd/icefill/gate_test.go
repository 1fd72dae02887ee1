package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/validate"
)

// The gate tests replay, through the real binary, each way issue 8 found to
// put unvalidated or wrong rows on main while every command exited 0, and
// assert main's rows afterwards, not only the exit codes.

// laxExpected declares every difference intended: these tests judge which
// content reaches main, not the values of the business logic.
const laxExpected = `expected:
` + `  - {metric: rows, direction: any, bound: .inf, reason: gate test}
  - {metric: orders, direction: any, bound: .inf, reason: gate test}
  - {metric: gross_revenue_cents, direction: any, bound: .inf, reason: gate test}
  - {metric: net_revenue_cents, direction: any, bound: .inf, reason: gate test}
  - {metric: refund_cents, direction: any, relative_to: gross_revenue_cents, bound: .inf, reason: gate test}
  - {metric: null_rate, direction: any, bound: .inf, reason: gate test}
  - {metric: ltv_p50, direction: any, bound: .inf, reason: gate test}
  - {metric: ltv_p90, direction: any, bound: .inf, reason: gate test}
  - {metric: ltv_p99, direction: any, bound: .inf, reason: gate test}
  - {metric: ltv_ks, direction: any, bound: .inf, reason: gate test}
  - {metric: columns, direction: any, reason: gate test}
  - {metric: partitions, direction: any, reason: gate test}
`

// gate is one catalog in a temporary directory, driven through the binary.
type gate struct {
	t   *testing.T
	dir string
	exp string
}

func newGate(t *testing.T) *gate {
	t.Helper()
	g := &gate{t: t, dir: t.TempDir()}
	g.exp = filepath.Join(g.dir, "lax.yaml")
	if err := os.WriteFile(g.exp, []byte(laxExpected), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

// day is crashFrom + n as text.
func day(n int) string { return (crashFrom + features.Date(n)).String() }

// do runs icefill and demands the exit code.
func (g *gate) do(want int, args ...string) string {
	g.t.Helper()
	code, _, out := icefill(g.t, g.dir, nil, 0, args...)
	if code != want {
		g.t.Fatalf("icefill %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// run recomputes days from..to (offsets from crashFrom) on branch.
func (g *gate) run(branch, logic string, from, to int, extra ...string) {
	g.t.Helper()
	args := []string{"run", "--source", crashSrc, "--from", day(from), "--to", day(to), "--branch", branch, "--logic", logic, "--workers", "2"}
	if branch == "main" {
		args = append(args, "--write-main")
	}
	g.do(0, append(args, extra...)...)
}

func (g *gate) validate(want int, args ...string) {
	g.t.Helper()
	g.do(want, append([]string{"validate", "--expected", g.exp, "--sample", "0"}, args...)...)
}

func (g *gate) table() *table.Table {
	g.t.Helper()
	cfg := catalog.DefaultConfig()
	cfg.SQLitePath, cfg.Warehouse = filepath.Join(g.dir, "catalog.db"), filepath.Join(g.dir, "warehouse")
	cat, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(context.Background())
	if err != nil {
		g.t.Fatal(err)
	}
	return tbl
}

// rows are ref's rows by day (every column, canonical text).
func (g *gate) rows(ref string) map[string][]string {
	g.t.Helper()
	rows, err := validate.RefRows(context.Background(), g.table(), ref)
	if err != nil {
		g.t.Fatal(err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		d, _, _ := strings.Cut(strings.TrimPrefix(r, "event_date="), " ")
		// Read with the grown schema, legacy rows show the feature columns
		// as null; read before it grew they lack them: one form for both.
		if !strings.Contains(r, "touches_7d=") {
			r += " touches_7d=(null) distinct_channels_7d=(null) avg_hours_to_convert=(null)"
		}
		out[d] = append(out[d], r)
	}
	for _, v := range out {
		slices.Sort(v)
	}
	return out
}

// sameDays demands that got holds want's rows on each of days.
func sameDays(t *testing.T, label string, got, want map[string][]string, days ...int) {
	t.Helper()
	for _, n := range days {
		d := day(n)
		if len(want[d]) == 0 {
			t.Fatalf("%s: no expected rows for %s", label, d)
		}
		if !slices.Equal(got[d], want[d]) {
			t.Fatalf("%s: main's rows of %s are not the expected ones (%d rows, want %d)", label, d, len(got[d]), len(want[d]))
		}
	}
}

func span(from, to int) []int {
	var out []int
	for n := from; n <= to; n++ {
		out = append(out, n)
	}
	return out
}

// legacyAndFix: legacy main and corrected clv-fix over days 0…5.
func legacyAndFix(t *testing.T) (*gate, map[string][]string, map[string][]string) {
	g := newGate(t)
	g.run("main", "legacy", 0, 5)
	g.run("clv-fix", "corrected", 0, 5)
	legacy, fix := g.rows("main"), g.rows("clv-fix")
	for _, n := range span(0, 5) {
		if slices.Equal(legacy[day(n)], fix[day(n)]) {
			t.Fatalf("legacy and corrected rows of %s are equal: the test could not tell them apart", day(n))
		}
	}
	return g, legacy, fix
}

// Item 1: a validation that compared nothing passed and unlocked promote.
func TestGateEmptyValidation(t *testing.T) {
	g, legacy, _ := legacyAndFix(t)
	g.validate(exitRefused, "--candidate", "clv-fix", "--from", "2023-01-01", "--to", "2023-01-05")
	g.do(exitRefused, "promote", "--branch", "clv-fix")
	sameDays(t, "after an empty validation and promote", g.rows("main"), legacy, span(0, 5)...)
}

// Item 2: a partial validation unlocked the whole branch.
func TestGatePartialValidation(t *testing.T) {
	g, legacy, fix := legacyAndFix(t)
	g.validate(exitOK, "--candidate", "clv-fix", "--from", day(0), "--to", day(2))
	out := g.do(exitRefused, "promote", "--branch", "clv-fix")
	if !strings.Contains(out, day(3)) || !strings.Contains(out, "validate") {
		t.Errorf("the refusal does not say what to validate:\n%s", out)
	}
	sameDays(t, "after a partial validation", g.rows("main"), legacy, span(0, 5)...)
	// The rest in a second pass of the same snapshot: the passes add up.
	g.validate(exitOK, "--candidate", "clv-fix", "--from", day(3), "--to", day(5))
	g.do(exitOK, "promote", "--branch", "clv-fix")
	sameDays(t, "after validating the rest", g.rows("main"), fix, span(0, 5)...)
}

// Item 3: a ref validated against itself passed.
func TestGateSelfValidation(t *testing.T) {
	g, legacy, _ := legacyAndFix(t)
	g.validate(exitRefused, "--base", "clv-fix", "--candidate", "clv-fix")
	head := g.table().SnapshotByName("clv-fix").SnapshotID
	g.validate(exitRefused, "--base", "clv-fix", "--candidate", itoa(head))
	// A base main has never been certifies nothing either.
	g.run("other", "corrected", 0, 5)
	g.validate(exitRefused, "--base", "other", "--candidate", "clv-fix")
	g.do(exitRefused, "promote", "--branch", "clv-fix")
	sameDays(t, "after self-validation", g.rows("main"), legacy, span(0, 5)...)
}

// Item 4: a branch validated against an older main was promoted after main
// moved, silently reverting another branch's promotion.
func TestGateStaleBaseAfterAnotherPromotion(t *testing.T) {
	g := newGate(t)
	g.run("main", "legacy", 0, 5)
	g.run("clv-a", "corrected", 0, 2)
	g.run("clv-b", "legacy", 0, 2) // a rerun of the legacy logic: legacy rows, new files
	g.run("main", "legacy", 6, 6)  // the nightly job moves main on
	for _, b := range []string{"clv-a", "clv-b"} {
		g.do(exitOK, "run", "--source", crashSrc, "--catch-up", "--branch", b, "--logic", map[string]string{"clv-a": "corrected", "clv-b": "legacy"}[b])
		g.validate(exitOK, "--candidate", b)
	}
	g.do(exitOK, "promote", "--branch", "clv-a")
	promoted := g.rows("main")
	if !strings.Contains(promoted[day(0)][0], "touches_7d=") || strings.Contains(promoted[day(0)][0], "touches_7d=(null)") {
		t.Fatalf("clv-a's corrected rows are not on main after its promotion")
	}
	g.do(exitRefused, "promote", "--branch", "clv-b")
	sameDays(t, "after promoting a branch validated before another promotion", g.rows("main"), promoted, span(0, 6)...)
}

// Item 5: rollback left rolled-back content on main: a branch forked from
// an earlier promotion carries its days, and the fast-forward publishes them.
func TestGateRollbackRestoresEverythingPublished(t *testing.T) {
	g := newGate(t)
	g.run("main", "legacy", 0, 5)
	legacy := g.rows("main")
	g.run("clv-a", "corrected", 0, 2)
	g.validate(exitOK, "--candidate", "clv-a")
	g.do(exitOK, "promote", "--branch", "clv-a")
	g.run("clv-b", "corrected", 3, 5) // forked from main = clv-a's head
	g.do(exitOK, "rollback")
	sameDays(t, "after rolling clv-a back", g.rows("main"), legacy, span(0, 5)...)
	g.validate(exitOK, "--candidate", "clv-b")
	g.do(exitOK, "promote", "--branch", "clv-b")
	g.run("main", "legacy", 6, 6) // nightly: the rollback restores instead of resetting
	nightly := g.rows("main")
	g.do(exitOK, "rollback")
	got := g.rows("main")
	sameDays(t, "after rolling clv-b back", got, legacy, span(0, 5)...)
	sameDays(t, "the nightly day is kept", got, nightly, 6)
}

// Item 6: rollback --to published any snapshot.
func TestGateRollbackToOnlyWhatMainHasBeen(t *testing.T) {
	g, legacy, fix := legacyAndFix(t)
	head := itoa(g.table().SnapshotByName("clv-fix").SnapshotID)
	g.do(exitRefused, "rollback", "--to", head)
	g.do(exitRefused, "rollback", "--to", "clv-fix")
	sameDays(t, "after rollback --to an unvalidated head", g.rows("main"), legacy, span(0, 5)...)
	out := g.do(exitOK, "rollback", "--to", head, "--force")
	if !strings.Contains(out, "FORCED") {
		t.Errorf("a forced rollback does not say so:\n%s", out)
	}
	sameDays(t, "after a forced rollback --to", g.rows("main"), fix, span(0, 5)...)
	hist, err := snapshots.ReadHistory(g.table().Properties())
	if err != nil || len(hist) == 0 || !hist[len(hist)-1].Forced {
		t.Fatalf("the forced rollback is not recorded as forced: %+v (%v)", hist, err)
	}
	// Back to the legacy main: a snapshot main has been, no force needed.
	g.do(exitOK, "rollback", "--to", itoa(hist[len(hist)-1].From))
	sameDays(t, "after rollback --to main's previous head", g.rows("main"), legacy, span(0, 5)...)
}

// Item 10: writing main is deliberate and recorded; names are checked
// before they reach a path; scratch refs cannot clash; a malformed webhook
// is refused before publishing; refusals exit 4.
func TestGateWriteMainNamesWebhook(t *testing.T) {
	g, legacy, fix := legacyAndFix(t)
	g.do(exitRefused, "run", "--source", crashSrc, "--from", day(0), "--to", day(0), "--branch", "main", "--force", "--logic", "corrected")
	sameDays(t, "after run --branch main without --write-main", g.rows("main"), legacy, span(0, 5)...)
	before := g.table().CurrentSnapshot().SnapshotID
	g.run("main", "legacy", 6, 6)
	tbl := g.table()
	tagged := false
	for name, r := range tbl.Metadata().Refs() {
		tagged = tagged || strings.HasPrefix(name, "pre-write-main-") && r.SnapshotID == before
	}
	hist, _ := snapshots.ReadHistory(tbl.Properties())
	if !tagged || len(hist) == 0 || hist[len(hist)-1].Kind != "write-main" || hist[len(hist)-1].From != before {
		t.Fatalf("run --branch main --write-main left no tag of main's head %d or no history entry: %+v", before, hist)
	}

	escape := filepath.Join(filepath.Dir(g.dir), "x")
	for _, args := range [][]string{
		{"--branch", "../../x"},
		{"--branch", "a/b"},
		{"--branch", "icefill-rebase-clv-fix"},
		{"--branch", "ok", "--run-id", "../../x"},
	} {
		g.do(exitUsage, append([]string{"run", "--source", crashSrc, "--from", day(0), "--to", day(0)}, args...)...)
	}
	if _, err := os.Stat(escape); err == nil {
		t.Fatalf("a bad name wrote %s outside the table", escape)
	}
	g.do(exitUsage, "status", "--branch", "../x")

	g.validate(exitOK, "--candidate", "clv-fix")
	g.do(exitUsage, "promote", "--branch", "clv-fix", "--webhook", "::not a url")
	sameDays(t, "after promote with a malformed webhook", g.rows("main"), legacy, span(0, 5)...)
	g.do(exitRefused, "promote", "--branch", "clv-fix") // main moved (the write above): catch up first
	g.do(exitOK, "run", "--source", crashSrc, "--catch-up", "--branch", "clv-fix")
	g.validate(exitOK, "--candidate", "clv-fix")
	g.do(exitOK, "promote", "--branch", "clv-fix")
	sameDays(t, "after the promotion", g.rows("main"), fix, span(0, 5)...)
	if g.table().SnapshotByName("icefill-rebase-clv-fix") != nil {
		t.Error("the scratch ref outlived the promotion")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A catch-up and rebase promotion after a reset rollback, TestModel's
// seed 1796676696195130612 replayed: a branch is fast-forwarded onto main
// and rolled back (reset), recomputes some days, enough that its own
// history is trimmed past the fork (§5.3), and the nightly job changes one
// day. Catch-up must recompute that day alone, and the rebase publish the
// branch's days. Before e1341de the branch's recorded base was still the
// rolled-back snapshot, which main no longer descends from, so catch-up
// could not tell what main changed and recomputed every day (and, once the
// trimmed history no longer reached main, promote refused for good).
func TestGateCatchUpAfterResetRollback(t *testing.T) {
	g := newGate(t)
	g.run("main", "legacy", 0, 2)
	legacy := g.rows("main")
	g.run("clv-fix", "corrected", 1, 3, "--force")
	g.run("clv-fix", "corrected", 4, 5, "--force")
	g.validate(exitOK, "--candidate", "clv-fix")
	g.do(exitOK, "promote", "--branch", "clv-fix")
	g.do(exitOK, "rollback")
	g.run("clv-fix", "corrected", 1, 3, "--force")
	g.run("main", "legacy", 1, 1, "--force")
	before := g.files("clv-fix")
	g.do(exitOK, "run", "--source", crashSrc, "--catch-up", "--branch", "clv-fix", "--logic", "corrected")
	after := g.files("clv-fix")
	for _, n := range span(1, 5) {
		if changed := before[day(n)] != after[day(n)]; changed != (n == 1) {
			t.Errorf("catch-up (the nightly job changed day 1 only): %s recomputed %v, want %v", day(n), changed, n == 1)
		}
	}
	g.validate(exitOK, "--candidate", "clv-fix")
	g.do(exitOK, "promote", "--branch", "clv-fix")
	main, fix := g.rows("main"), g.rows("clv-fix")
	sameDays(t, "main's untouched day after the rebase", main, legacy, 0)
	sameDays(t, "the branch's days after the rebase", main, fix, span(1, 5)...)
}

// files are ref's data file paths by day, sorted and joined.
func (g *gate) files(ref string) map[string]string {
	g.t.Helper()
	tbl := g.table()
	tasks, err := tbl.Scan(table.WithSnapshotID(tbl.SnapshotByName(ref).SnapshotID)).PlanFiles(context.Background())
	if err != nil {
		g.t.Fatal(err)
	}
	paths := map[string][]string{}
	for _, task := range tasks {
		for _, v := range task.File.Partition() {
			if d, ok := v.(iceberg.Date); ok {
				paths[features.Date(d).String()] = append(paths[features.Date(d).String()], task.File.FilePath())
			}
		}
	}
	out := map[string]string{}
	for d, p := range paths {
		slices.Sort(p)
		out[d] = strings.Join(p, "\n")
	}
	return out
}

// A branch whose base main has left (rollback --to an earlier snapshot)
// keeps that base through the trimming of its own history, so catch-up and
// promote can still tell what main changed (TestModel seed
// 1796683064045022313). Before, its commits trimmed the base away and
// promote refused for good: "share no history that is still in the metadata".
func TestGatePromoteAfterMainLeftTheBranchBase(t *testing.T) {
	g := newGate(t)
	g.run("main", "legacy", 0, 2)
	before := g.table().CurrentSnapshot().SnapshotID
	g.run("main", "legacy", 3, 3)                  // the nightly job
	g.run("clv-fix", "corrected", 0, 3)            // made from main after it
	g.do(exitOK, "rollback", "--to", itoa(before)) // main leaves the branch's base
	for range 2 {                                  // the branch's own history is trimmed past it
		g.run("clv-fix", "corrected", 0, 3, "--force")
	}
	g.do(exitOK, "run", "--source", crashSrc, "--catch-up", "--branch", "clv-fix", "--logic", "corrected")
	g.validate(exitOK, "--candidate", "clv-fix")
	g.do(exitOK, "promote", "--branch", "clv-fix")
	sameDays(t, "after the promotion", g.rows("main"), g.rows("clv-fix"), span(0, 3)...)
}
