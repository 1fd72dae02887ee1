package snapshots_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/synth"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/source"
	"github.com/icefill/icefill/validate"
)

var (
	first   = features.MustParseDate("2024-02-01")
	last    = features.MustParseDate("2024-02-08")
	srcDir  string
	nightly = last + 1 // a day the nightly job writes after the branch forked
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "icefill-snapshots-test-")
	if err != nil {
		panic(err)
	}
	srcDir = filepath.Join(dir, "events")
	st, _ := objstore.NewLocal(srcDir)
	if _, err := synth.Generate(context.Background(), st, synth.Config{From: first, To: nightly + 1, EventsPerDay: 1200, Seed: 5, V2From: first + 3, Customers: 250}, nil); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type env struct {
	t   *testing.T
	cat *catalog.Catalog
}

// newEnv builds legacy main over first…last and the corrected branch clv-fix.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := catalog.DefaultConfig()
	cfg.SQLitePath, cfg.Warehouse = filepath.Join(dir, "catalog.db"), filepath.Join(dir, "warehouse")
	cat, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	e := &env{t: t, cat: cat}
	e.run("main", features.Legacy, features.DaysBetween(first, last), false)
	e.run("clv-fix", features.Corrected, features.DaysBetween(first, last), false)
	return e
}

func (e *env) run(branch string, logic features.Logic, days []features.Date, force bool) {
	e.t.Helper()
	src, err := source.Open(context.Background(), srcDir, objstore.S3Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	in, err := rewrite.NewInputs(context.Background(), src, rewrite.InputOptions{Workers: 2})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := rewrite.Run(context.Background(), e.cat, in, rewrite.RunOptions{Branch: branch, Logic: logic, Days: days, Workers: 2,
		RejectLimit: features.DefaultRejectLimit, Force: force, CompactAbove: 32, CompactEvery: 8}); err != nil {
		e.t.Fatalf("run %s on %s: %v", logic, branch, err)
	}
}

func (e *env) table() *table.Table {
	e.t.Helper()
	tbl, err := e.cat.LoadTable(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return tbl
}

func (e *env) rows(ref string) []string {
	e.t.Helper()
	rows, err := validate.RefRows(context.Background(), e.table(), ref)
	if err != nil {
		e.t.Fatal(err)
	}
	return rows
}

func (e *env) head(ref string) int64 {
	e.t.Helper()
	s := e.table().SnapshotByName(ref)
	if s == nil {
		e.t.Fatalf("no ref %s", ref)
	}
	return s.SnapshotID
}

// validated records a passing validation of clv-fix's current head
// against main's, certifying every partition.
func (e *env) validated() {
	e.t.Helper()
	base, cand := e.head("main"), e.head("clv-fix")
	cert, _, err := snapshots.Certify(context.Background(), e.table(), base, cand, nil, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	err = snapshots.RecordValidation(context.Background(), e.cat.Iceberg(), e.cat.Ident(), snapshots.Validation{
		Candidate: "clv-fix", CandidateSnapshot: cand, Base: "main", BaseSnapshot: base, Partitions: cert, At: time.Now().UnixMilli(), By: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) promote(o snapshots.PromoteOptions) (*snapshots.PromoteResult, error) {
	o.Branch = "clv-fix"
	return snapshots.Promote(context.Background(), e.cat.Iceberg(), e.cat.Ident(), o)
}

func (e *env) rollback(o snapshots.RollbackOptions) (*snapshots.Event, error) {
	return snapshots.Rollback(context.Background(), e.cat.Iceberg(), e.cat.Ident(), o)
}

func rowsOfDays(rows []string, days ...features.Date) []string {
	var out []string
	for _, r := range rows {
		for _, d := range days {
			if strings.HasPrefix(r, "event_date="+d.String()+" ") {
				out = append(out, r)
			}
		}
	}
	return out
}

func same(t *testing.T, label string, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: nothing to compare", label)
	}
	// A snapshot is read with its own schema: legacy snapshots lack the
	// feature columns that later snapshots show as null.
	if !slices.Equal(nullFeatures(got), nullFeatures(want)) {
		t.Fatalf("%s: %d rows differ from the expected %d", label, len(got), len(want))
	}
}

// nullFeatures turns legacy rows as read before the schema grew into rows
// as read after it (the three feature columns null).
func nullFeatures(rows []string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		if !strings.Contains(r, "touches_7d=") {
			r += " touches_7d=(null) distinct_channels_7d=(null) avg_hours_to_convert=(null)"
		}
		out[i] = r
	}
	slices.Sort(out)
	return out
}

func TestPromoteRequiresValidationOfTheHead(t *testing.T) {
	e := newEnv(t)
	if _, err := e.promote(snapshots.PromoteOptions{}); !errors.Is(err, snapshots.ErrNotValidated) {
		t.Fatalf("want ErrNotValidated, got %v", err)
	}
	e.validated()
	// The branch moves after validation: the validation no longer counts.
	e.run("clv-fix", features.Corrected, []features.Date{last}, true)
	if _, err := e.promote(snapshots.PromoteOptions{}); !errors.Is(err, snapshots.ErrNotValidated) {
		t.Fatalf("want ErrNotValidated after the branch moved, got %v", err)
	}
	if _, err := e.promote(snapshots.PromoteOptions{TagRetention: 24 * time.Hour, SkipValidation: true}); !errors.Is(err, snapshots.ErrRisk) {
		t.Fatalf("a one-day tag retention must be refused, got %v", err)
	}
}

func TestFastForwardThenRollbackReset(t *testing.T) {
	e := newEnv(t)
	legacy := e.rows("main")
	oldMain, branch := e.head("main"), e.head("clv-fix")
	e.validated()
	res, err := e.promote(snapshots.PromoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Event.Method != "fast-forward" || e.head("main") != branch {
		t.Fatalf("method %s, main %d, branch %d", res.Event.Method, e.head("main"), branch)
	}
	if e.head(res.Event.Tag) != oldMain {
		t.Fatalf("tag %s does not keep the old main", res.Event.Tag)
	}
	same(t, "main after promotion", e.rows("main"), e.rows("clv-fix"))

	ev, err := e.rollback(snapshots.RollbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Method != "reset" || e.head("main") != oldMain {
		t.Fatalf("rollback method %s, main %d, want reset to %d", ev.Method, e.head("main"), oldMain)
	}
	same(t, "main after rollback", e.rows("main"), nullFeatures(legacy))
	// Undo the rollback by promoting again.
	if _, err := e.promote(snapshots.PromoteOptions{}); err != nil {
		t.Fatalf("promote again: %v", err)
	}
	same(t, "main after promoting again", e.rows("main"), e.rows("clv-fix"))
}

func TestPromoteAfterMainMovedNeedsCatchUp(t *testing.T) {
	e := newEnv(t)
	// The nightly job writes a new day on main after the fork.
	e.run("main", features.Legacy, []features.Date{nightly}, false)
	e.validated()
	_, err := e.promote(snapshots.PromoteOptions{})
	var ue *snapshots.UncoveredError
	if !errors.As(err, &ue) || len(ue.Days) != 1 || ue.Days[0] != nightly.String() {
		t.Fatalf("want the nightly day uncovered, got %v", err)
	}
	// Catch up: recompute exactly that day on the branch, validate, promote.
	e.run("clv-fix", features.Corrected, []features.Date{nightly}, true)
	e.validated()
	mainBefore := e.head("main")
	res, err := e.promote(snapshots.PromoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Event.Method != "rebase" || res.Event.From != mainBefore {
		t.Fatalf("method %s from %d", res.Event.Method, res.Event.From)
	}
	tbl := e.table()
	if !table.IsAncestorOf(e.head("main"), mainBefore, tbl.Metadata().SnapshotByID) {
		t.Fatal("the promoted main does not descend from main's previous head: a commit was lost")
	}
	branchRows := e.rows("clv-fix")
	same(t, "main after rebase promotion", e.rows("main"), branchRows)
	if got := rowsOfDays(branchRows, nightly); len(got) == 0 || strings.Contains(got[0], "touches_7d=(null)") {
		t.Fatal("the nightly day on main is not the corrected recomputation")
	}
}

func TestConcurrentCommitDuringPromotion(t *testing.T) {
	e := newEnv(t)
	e.validated()
	before := e.head("main")
	_, err := e.promote(snapshots.PromoteOptions{BeforePublish: func() {
		e.run("main", features.Legacy, []features.Date{nightly}, false)
	}})
	if !errors.Is(err, snapshots.ErrMainMoved) {
		t.Fatalf("want ErrMainMoved, got %v", err)
	}
	tbl := e.table()
	nightlyHead := tbl.CurrentSnapshot()
	if nightlyHead.SnapshotID == before || nightlyHead.Summary.Properties[snapshots.SummaryPartition] != nightly.String() {
		t.Fatal("the nightly commit did not win")
	}
	for name := range tbl.Metadata().Refs() {
		if strings.HasPrefix(name, "pre-promote-") {
			t.Fatalf("a failed promotion left tag %s", name)
		}
	}
}

func TestRollbackKeepsLaterNightlyDays(t *testing.T) {
	e := newEnv(t)
	legacy := e.rows("main")
	e.validated()
	if _, err := e.promote(snapshots.PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	// After the promotion the nightly job appends a day.
	e.run("main", features.Legacy, []features.Date{nightly}, false)
	nightlyRows := rowsOfDays(e.rows("main"), nightly)
	// Snapshot expiry on main: the tag must keep the pre-promotion snapshot.
	tbl := e.table()
	txn := tbl.NewTransaction()
	if err := txn.ExpireSnapshots(table.WithOlderThan(0), table.WithRetainLast(1)); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev, err := e.rollback(snapshots.RollbackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Method != "restore" {
		t.Fatalf("method %s, want restore", ev.Method)
	}
	got := e.rows("main")
	same(t, "backfilled days restored", rowsOfDays(got, features.DaysBetween(first, last)...), nullFeatures(legacy))
	same(t, "nightly day kept", rowsOfDays(got, nightly), nightlyRows)
}

func TestRollbackRefusesWhenPromotedPartitionsChangedAgain(t *testing.T) {
	e := newEnv(t)
	e.validated()
	if _, err := e.promote(snapshots.PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	// A later commit rewrites a promoted day on main.
	e.run("main", features.Legacy, []features.Date{last}, true)
	_, err := e.rollback(snapshots.RollbackOptions{})
	var le *snapshots.LaterChangesError
	if !errors.As(err, &le) || len(le.Days) != 1 || le.Days[0] != last.String() {
		t.Fatalf("want a refusal naming %s, got %v", last, err)
	}
	if _, err := e.rollback(snapshots.RollbackOptions{Force: true}); err != nil {
		t.Fatalf("forced: %v", err)
	}
}

// TestRebaseAfterResetRollbackOfTrimmedBranch: a fast-forward promotion,
// its rollback by reset, then enough commits on the branch that its own
// history is trimmed past the promoted snapshot. The branch's recorded base
// must then be main's snapshot before the promotion (still main's), or
// promote can no longer tell what main changed since and refuses forever.
func TestRebaseAfterResetRollbackOfTrimmedBranch(t *testing.T) {
	e := newEnv(t)
	e.validated()
	if _, err := e.promote(snapshots.PromoteOptions{}); err != nil {
		t.Fatal(err)
	}
	promoted := e.head("clv-fix")
	if ev, err := e.rollback(snapshots.RollbackOptions{}); err != nil || ev.Method != "reset" {
		t.Fatalf("rollback: %v %+v", err, ev)
	}
	e.run("main", features.Legacy, []features.Date{nightly}, false)
	// Recompute every day twice: the branch's own history grows well past
	// what a commit keeps, so the promoted snapshot is trimmed away.
	for range 2 {
		e.run("clv-fix", features.Corrected, features.DaysBetween(first, last), true)
	}
	if e.table().SnapshotByID(promoted) != nil {
		t.Fatal("the promoted snapshot is still in the metadata: the test does not reach a trimmed history")
	}
	e.run("clv-fix", features.Corrected, []features.Date{nightly}, true)
	e.validated()
	res, err := e.promote(snapshots.PromoteOptions{})
	if err != nil {
		t.Fatalf("promote after reset rollback and trimming: %v", err)
	}
	if res.Event.Method != "rebase" {
		t.Fatalf("method %s, want rebase", res.Event.Method)
	}
	same(t, "main after rebase promotion", e.rows("main"), e.rows("clv-fix"))
}
