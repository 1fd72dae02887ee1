package validate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/synth"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/source"
	"github.com/icefill/icefill/validate"
)

var (
	first = features.MustParseDate("2024-01-01")
	last  = features.MustParseDate("2024-01-10")
	// About 1,500 events a day for ten days, v1 files then v2.
	synthConfig = synth.Config{From: first, To: last, EventsPerDay: 1500, Seed: 11, V2From: first + 5, Customers: 300, HeavyDays: -1}
)

const expectedFile = "../docs/expected-clv-fix.yaml"

var (
	fixtureDir  string
	fixtureOnce sync.Once
	fixtureErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "icefill-validate-test-")
	if err != nil {
		panic(err)
	}
	fixtureDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// openCatalog opens the shared embedded catalog (a fresh handle).
func openCatalog(t *testing.T) *catalog.Catalog {
	t.Helper()
	cfg := catalog.DefaultConfig()
	cfg.SQLitePath = filepath.Join(fixtureDir, "catalog", "catalog.db")
	cfg.Warehouse = filepath.Join(fixtureDir, "catalog", "warehouse")
	cat, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

// fixture generates the source once and backfills it twice into one table:
// the legacy logic on main (the production table) and the corrected logic
// on the branch clv-fix.
func fixture(t *testing.T) *catalog.Catalog {
	t.Helper()
	fixtureOnce.Do(func() { fixtureErr = buildFixture(t) })
	if fixtureErr != nil {
		t.Fatalf("fixture: %v", fixtureErr)
	}
	return openCatalog(t)
}

func buildFixture(t *testing.T) error {
	ctx := context.Background()
	srcDir := filepath.Join(fixtureDir, "events")
	st, err := objstore.NewLocal(srcDir)
	if err != nil {
		return err
	}
	if _, err := synth.Generate(ctx, st, synthConfig, nil); err != nil {
		return err
	}
	cat := openCatalog(t)
	for _, run := range []struct {
		branch string
		logic  features.Logic
	}{{"main", features.Legacy}, {"clv-fix", features.Corrected}} {
		src, err := source.Open(ctx, srcDir, objstore.S3Options{})
		if err != nil {
			return err
		}
		in, err := rewrite.NewInputs(ctx, src, rewrite.InputOptions{Workers: 2})
		if err != nil {
			return err
		}
		if _, err := rewrite.Run(ctx, cat, in, rewrite.RunOptions{Branch: run.branch, Logic: run.logic,
			Days: features.DaysBetween(first, last), Workers: 2, RejectLimit: features.DefaultRejectLimit,
			CompactAbove: 8, CompactEvery: 4, GCMinAge: time.Hour}); err != nil {
			return fmt.Errorf("backfill %s: %w", run.branch, err)
		}
	}
	return nil
}

func loadTable(t *testing.T, cat *catalog.Catalog) *table.Table {
	t.Helper()
	tbl, err := cat.LoadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return tbl
}

func compare(t *testing.T, cat *catalog.Catalog, opts validate.Options) *validate.Report {
	t.Helper()
	r, err := validate.Compare(context.Background(), loadTable(t, cat), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Both writers must work on every report.
	var text, js bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back validate.Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON report does not read back: %v", err)
	}
	if back.Pass != r.Pass || len(back.Checks) != len(r.Checks) {
		t.Fatalf("JSON round trip changed the report")
	}
	if testing.Verbose() {
		t.Logf("%s vs %s:\n%s", opts.Base, opts.Candidate, text.String())
	}
	return r
}

func loadExpected(t *testing.T) *validate.Expected {
	t.Helper()
	e, err := validate.LoadExpected(expectedFile)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// statuses maps each check's label to its status.
func statuses(r *validate.Report) map[string]string {
	m := map[string]string{}
	for _, c := range r.Checks {
		m[c.Label()] = c.Status
	}
	return m
}

func failedLabels(r *validate.Report) []string {
	var out []string
	for _, c := range r.Failed() {
		out = append(out, c.Label())
	}
	return out
}

func TestCorrectedAgainstLegacy(t *testing.T) {
	cat := fixture(t)
	for _, tc := range []struct {
		name     string
		expected *validate.Expected
		pass     bool
		// Checks (by label) and their wanted status.
		want map[string]string
	}{
		{
			name: "with the expected differences", expected: loadExpected(t), pass: true,
			want: map[string]string{
				"partitions by event_date":                 validate.StatusPass,
				"rows by overall = all":                    validate.StatusExpected,
				"rows by event_date":                       validate.StatusExpected,
				"orders by overall = all":                  validate.StatusExpected,
				"gross_revenue_cents by overall = all":     validate.StatusExpected,
				"refund_cents by overall = all":            validate.StatusExpected,
				"net_revenue_cents by overall = all":       validate.StatusExpected,
				"net_revenue_cents by channel":             validate.StatusExpected,
				"columns by column = touches_7d":           validate.StatusExpected,
				"columns by column = distinct_channels_7d": validate.StatusExpected,
				"columns by column = avg_hours_to_convert": validate.StatusExpected,
				"null_rate by column = country":            validate.StatusPass,
				"ltv_p50 by customer":                      validate.StatusExpected,
				"ltv_ks by customer":                       validate.StatusExpected,
				"unique_key":                               validate.StatusPass,
				"net_equals_gross_minus_refund":            validate.StatusPass,
				"non_negative (touches_7d)":                validate.StatusPass,
			},
		},
		{
			name: "without expected differences", pass: false,
			want: map[string]string{
				"partitions by event_date":                 validate.StatusPass,
				"rows by event_date":                       validate.StatusFail,
				"orders by overall = all":                  validate.StatusFail,
				"gross_revenue_cents by overall = all":     validate.StatusFail,
				"refund_cents by overall = all":            validate.StatusFail,
				"net_revenue_cents by channel":             validate.StatusFail,
				"columns by column = touches_7d":           validate.StatusFail,
				"columns by column = avg_hours_to_convert": validate.StatusFail,
				"ltv_p90 by customer":                      validate.StatusFail,
				"ltv_ks by customer":                       validate.StatusFail,
				"unique_key":                               validate.StatusPass,
				"net_equals_gross_minus_refund":            validate.StatusPass,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := compare(t, cat, validate.Options{Base: "main", Candidate: "clv-fix", Expected: tc.expected})
			if r.Pass != tc.pass {
				t.Fatalf("pass = %v, want %v; failed: %v", r.Pass, tc.pass, failedLabels(r))
			}
			got := statuses(r)
			for label, want := range tc.want {
				if got[label] != want {
					t.Errorf("%s: status %q, want %q", label, got[label], want)
				}
			}
			if r.Pass && (len(r.Failed()) > 0 || r.Counts[validate.StatusExpected] == 0) {
				t.Errorf("a passing validation must have no failed and some expected checks: %v", r.Counts)
			}
			if tc.expected != nil {
				for _, d := range r.Declarations {
					if d.Matched == 0 {
						t.Errorf("declaration at line %d (%s) matched nothing", d.Line, d.Declaration)
					}
				}
			}
			// The terminal report names the failing checks.
			var text bytes.Buffer
			if err := r.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if !tc.pass {
				for _, label := range []string{"refund_cents by overall = all", "columns by column = touches_7d", "ltv_ks by customer"} {
					if !strings.Contains(text.String(), label) {
						t.Errorf("text report does not name the failing check %q", label)
					}
				}
				if !strings.Contains(text.String(), "RESULT: FAIL") {
					t.Error("text report does not say FAIL")
				}
			} else if !strings.Contains(text.String(), "RESULT: PASS") {
				t.Error("text report does not say PASS")
			}
			if len(r.Sample) != validate.DefaultSample {
				t.Errorf("sample has %d keys, want %d", len(r.Sample), validate.DefaultSample)
			}
			for _, s := range r.Sample {
				if len(s.Differs) == 0 || (s.Base == nil && s.Candidate == nil) {
					t.Errorf("sample row %+v shows no difference", s)
				}
			}
		})
	}
}

// The sample is deterministic and honours its size.
func TestSampleIsDeterministic(t *testing.T) {
	cat := fixture(t)
	a := compare(t, cat, validate.Options{Base: "main", Candidate: "clv-fix", Sample: 7})
	b := compare(t, cat, validate.Options{Base: "main", Candidate: "clv-fix", Sample: 7, Workers: 1})
	if len(a.Sample) != 7 {
		t.Fatalf("sample of %d, want 7", len(a.Sample))
	}
	ja, _ := json.Marshal(a.Sample)
	jb, _ := json.Marshal(b.Sample)
	if !bytes.Equal(ja, jb) {
		t.Fatalf("samples differ between runs:\n%s\n%s", ja, jb)
	}
	none := compare(t, cat, validate.Options{Base: "main", Candidate: "clv-fix", Sample: -1})
	if len(none.Sample) != 0 {
		t.Fatalf("Sample -1 gave %d keys", len(none.Sample))
	}
}

func TestCandidateAgainstItself(t *testing.T) {
	cat := fixture(t)
	r := compare(t, cat, validate.Options{Base: "clv-fix", Candidate: "clv-fix"})
	if !r.Pass {
		t.Fatalf("a ref compared with itself failed: %v", failedLabels(r))
	}
	for _, c := range r.Checks {
		if c.RelDiff != 0 || c.Status != validate.StatusPass {
			t.Errorf("%s: status %s, diff %v; want pass and 0", c.Label(), c.Status, c.RelDiff)
		}
	}
	for _, m := range r.Metrics {
		for _, g := range m.Groups {
			if g.Base != g.Candidate || g.RelDiff != 0 {
				t.Errorf("%s by %s = %s: %d vs %d", m.Metric, m.Dimension, g.Group, g.Base, g.Candidate)
			}
		}
	}
	if r.LTV.KSD != 0 || r.LTV.KSPValue != 1 || r.Keys.Differing != 0 || r.Keys.OnlyBase != 0 || r.Keys.OnlyCandidate != 0 || len(r.Sample) != 0 {
		t.Errorf("self comparison: KS %v p %v, keys %+v, sample %d", r.LTV.KSD, r.LTV.KSPValue, r.Keys, len(r.Sample))
	}
	if r.Keys.Common != r.CandidateStats.Rows || r.BaseSnapshot != r.CandidateSnapshot {
		t.Errorf("keys %+v, rows %d", r.Keys, r.CandidateStats.Rows)
	}
}

func TestRangeAndRefs(t *testing.T) {
	cat := fixture(t)
	tbl := loadTable(t, cat)
	from, to := first+2, first+4
	r := compare(t, cat, validate.Options{Base: "main", Candidate: fmt.Sprint(tbl.SnapshotByName("clv-fix").SnapshotID), From: &from, To: &to, Expected: loadExpected(t)})
	if r.Partitions.Base != 3 || r.Partitions.Candidate != 3 || r.From != from.String() || r.To != to.String() {
		t.Fatalf("range %s…%s: partitions %+v", from, to, r.Partitions)
	}
	days := r.Table(validate.MetricRows, validate.DimEventDate)
	if len(days.Groups) != 3 || days.Groups[0].Group != from.String() || days.Groups[2].Group != to.String() {
		t.Fatalf("event_date groups %+v", days.Groups)
	}
	all := compare(t, cat, validate.Options{Base: "main", Candidate: "clv-fix"})
	for _, g := range days.Groups {
		whole, _ := all.Table(validate.MetricRows, validate.DimEventDate).Group(g.Group)
		if whole.Base != g.Base || whole.Candidate != g.Candidate {
			t.Errorf("%s: %d/%d in the range, %d/%d over all", g.Group, g.Base, g.Candidate, whole.Base, whole.Candidate)
		}
	}
	if _, err := validate.Compare(context.Background(), tbl, validate.Options{Base: "main", Candidate: "no-such-branch"}); err == nil || !strings.Contains(err.Error(), "no-such-branch") {
		t.Fatalf("unknown ref: %v", err)
	}
	if _, err := validate.Compare(context.Background(), tbl, validate.Options{Base: "main", Candidate: "clv-fix", From: &to, To: &from}); err == nil {
		t.Fatal("an inverted range was accepted")
	}
}

// TestFiguresMatchRecomputation recomputes the report's figures from the
// plain rows of both refs (validate.RefRows) in the most direct way.
func TestFiguresMatchRecomputation(t *testing.T) {
	cat := fixture(t)
	r := compare(t, cat, validate.Options{Base: "main", Candidate: "clv-fix"})
	tbl := loadTable(t, cat)
	var sides [2][]map[string]string
	for i, ref := range []string{"main", "clv-fix"} {
		lines, err := validate.RefRows(context.Background(), tbl, ref)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range lines {
			row := map[string]string{}
			for _, f := range strings.Fields(l) {
				k, v, _ := strings.Cut(f, "=")
				row[k] = v
			}
			sides[i] = append(sides[i], row)
		}
	}
	num := func(row map[string]string, col string) int64 {
		n, err := strconv.ParseInt(row[col], 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", col, row[col], err)
		}
		return n
	}
	metricCols := map[string]string{validate.MetricOrders: "orders", validate.MetricGross: "gross_revenue_cents",
		validate.MetricRefund: "refund_cents", validate.MetricNet: "net_revenue_cents"}

	// Sums per channel, country and day; rows per day.
	for _, dim := range []string{validate.DimChannel, validate.DimCountry, validate.DimEventDate} {
		for _, metric := range []string{validate.MetricRows, validate.MetricOrders, validate.MetricGross, validate.MetricRefund, validate.MetricNet} {
			want := map[string][2]int64{}
			for side, rows := range sides {
				for _, row := range rows {
					g := row[dim]
					v := int64(1)
					if metric != validate.MetricRows {
						v = num(row, metricCols[metric])
					}
					w := want[g]
					w[side] += v
					want[g] = w
				}
			}
			tab := r.Table(metric, dim)
			if len(tab.Groups) != len(want) {
				t.Fatalf("%s by %s: %d groups, recomputed %d", metric, dim, len(tab.Groups), len(want))
			}
			for g, w := range want {
				got, ok := tab.Group(g)
				if !ok || got.Base != w[0] || got.Candidate != w[1] {
					t.Errorf("%s by %s = %s: report %d/%d, recomputed %d/%d", metric, dim, g, got.Base, got.Candidate, w[0], w[1])
				}
				wantRel := 0.0
				if w[0] != w[1] {
					wantRel = float64(w[1]-w[0]) / math.Abs(float64(w[0]))
				}
				if w[0] != 0 && math.Abs(got.RelDiff-wantRel) > 1e-12 {
					t.Errorf("%s by %s = %s: rel diff %v, recomputed %v", metric, dim, g, got.RelDiff, wantRel)
				}
			}
		}
	}

	// Customer lifetime value: quantiles and KS.
	var ltv [2][]int64
	for side, rows := range sides {
		per := map[string]int64{}
		for _, row := range rows {
			per[row["customer_id"]] += num(row, "net_revenue_cents")
		}
		for _, v := range per {
			ltv[side] = append(ltv[side], v)
		}
		slices.Sort(ltv[side])
	}
	rank := func(v []int64, p float64) int64 { // nearest rank: the ceil(p·n)-th smallest
		k := int(math.Ceil(p * float64(len(v))))
		return v[k-1]
	}
	for side, d := range []validate.Distribution{r.LTV.Base, r.LTV.Candidate} {
		v := ltv[side]
		if d.Customers != len(v) || d.P50 != rank(v, 0.5) || d.P90 != rank(v, 0.9) || d.P99 != rank(v, 0.99) || d.Min != v[0] || d.Max != v[len(v)-1] {
			t.Errorf("side %d: report %+v; recomputed n %d p50 %d p90 %d p99 %d", side, d, len(v), rank(v, 0.5), rank(v, 0.9), rank(v, 0.99))
		}
	}
	// KS by brute force: the largest gap of the two empirical CDFs at any
	// observed value.
	cdf := func(v []int64, x int64) float64 {
		n := 0
		for _, y := range v {
			if y <= x {
				n++
			}
		}
		return float64(n) / float64(len(v))
	}
	d := 0.0
	for _, v := range ltv {
		for _, x := range v {
			d = math.Max(d, math.Abs(cdf(ltv[0], x)-cdf(ltv[1], x)))
		}
	}
	if math.Abs(r.LTV.KSD-d) > 1e-12 || d == 0 {
		t.Errorf("KS D: report %v, recomputed %v", r.LTV.KSD, d)
	}
	if r.LTV.KSPValue <= 0 || r.LTV.KSPValue >= 1 {
		t.Errorf("KS p-value %v", r.LTV.KSPValue)
	}

	// Null rate of country, and the keys.
	for side, rows := range sides {
		nulls := 0
		for _, row := range rows {
			if row["country"] == "(null)" {
				nulls++
			}
		}
		col := r.Columns[slices.IndexFunc(r.Columns, func(c validate.ColumnNulls) bool { return c.Column == "country" })]
		got := []int64{col.BaseNulls, col.CandidateNulls}[side]
		if got != int64(nulls) {
			t.Errorf("country nulls on side %d: report %d, recomputed %d", side, got, nulls)
		}
	}
	keys := [2]map[string]map[string]string{{}, {}}
	for side, rows := range sides {
		for _, row := range rows {
			keys[side][row["event_date"]+" "+row["customer_id"]+" "+row["channel"]] = row
		}
	}
	var common, onlyBase, onlyCand, differing int64
	for k, b := range keys[0] {
		c, ok := keys[1][k]
		if !ok {
			onlyBase++
			continue
		}
		common++
		for _, col := range []string{"orders", "gross_revenue_cents", "refund_cents", "net_revenue_cents", "country"} {
			if b[col] != c[col] {
				differing++
				break
			}
		}
	}
	for k := range keys[1] {
		if _, ok := keys[0][k]; !ok {
			onlyCand++
		}
	}
	if r.Keys.Common != common || r.Keys.OnlyBase != onlyBase || r.Keys.OnlyCandidate != onlyCand || r.Keys.Differing != differing {
		t.Errorf("keys: report %+v; recomputed common %d, only base %d, only candidate %d, differing %d", r.Keys, common, onlyBase, onlyCand, differing)
	}
	for _, s := range r.Sample {
		k := s.EventDate + " " + s.CustomerID + " " + s.Channel
		b, inB := keys[0][k]
		c, inC := keys[1][k]
		if inB != (s.Base != nil) || inC != (s.Candidate != nil) {
			t.Errorf("sample key %s: sides %v/%v", k, inB, inC)
		}
		if inB && fmt.Sprint(*s.Base.NetRevenueCents) != b["net_revenue_cents"] || inC && fmt.Sprint(*s.Candidate.NetRevenueCents) != c["net_revenue_cents"] {
			t.Errorf("sample key %s: values differ from the rows", k)
		}
	}
}

// Planted errors on copies of clv-fix.

var branchSeq int

// forkBranch creates a new branch at the head of ref and returns its name.
func forkBranch(t *testing.T, cat *catalog.Catalog, prefix, ref string) string {
	t.Helper()
	branchSeq++
	name := fmt.Sprintf("%s-%d", prefix, branchSeq)
	tbl := loadTable(t, cat)
	head := tbl.SnapshotByName(ref).SnapshotID
	_, _, err := cat.Iceberg().CommitTable(context.Background(), cat.Ident(),
		[]table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID()), table.AssertRefSnapshotID(name, nil)},
		[]table.Update{table.NewSetSnapshotRefUpdate(name, head, table.BranchRef, 0, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func dayFilter(day features.Date) iceberg.BooleanExpression {
	return iceberg.EqualTo(iceberg.Reference(features.OutEventDate), iceberg.Date(day))
}

// partitionRows reads one partition of a ref.
func partitionRows(t *testing.T, tbl *table.Table, ref string, day features.Date) (*arrow.Schema, []arrow.RecordBatch) {
	t.Helper()
	sch, it, err := tbl.Scan(table.WithSnapshotID(tbl.SnapshotByName(ref).SnapshotID), table.WithRowFilter(dayFilter(day))).ToArrowRecords(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var recs []arrow.RecordBatch
	for rec, err := range it {
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	t.Cleanup(func() {
		for _, r := range recs {
			r.Release()
		}
	})
	return sch, recs
}

func commit(t *testing.T, txn *table.Transaction) {
	t.Helper()
	if _, err := txn.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

var editedColumns = []string{"orders", "gross_revenue_cents", "refund_cents", "net_revenue_cents"}

// rewritePartition overwrites one partition of branch with its rows edited
// by edit (row number in the partition, and the editable columns by name).
func rewritePartition(t *testing.T, cat *catalog.Catalog, branch string, day features.Date, edit func(n int, row map[string]int64)) {
	t.Helper()
	tbl := loadTable(t, cat)
	sch, recs := partitionRows(t, tbl, branch, day)
	var out []arrow.RecordBatch
	n := 0
	for _, rec := range recs {
		cols := slices.Clone(rec.Columns())
		builders := map[string]*array.Int64Builder{}
		for _, name := range editedColumns {
			builders[name] = array.NewInt64Builder(memory.DefaultAllocator)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			row := map[string]int64{}
			for _, name := range editedColumns {
				row[name] = rec.Column(sch.FieldIndices(name)[0]).(*array.Int64).Value(i)
			}
			edit(n, row)
			n++
			for _, name := range editedColumns {
				builders[name].Append(row[name])
			}
		}
		for _, name := range editedColumns {
			cols[sch.FieldIndices(name)[0]] = builders[name].NewArray()
		}
		out = append(out, array.NewRecordBatch(sch, cols, rec.NumRows()))
	}
	rdr, err := array.NewRecordReader(sch, out)
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	txn := tbl.NewTransactionOnBranch(branch)
	if err := txn.Overwrite(context.Background(), rdr, iceberg.Properties{"test": "planted rows"}, table.WithOverwriteFilter(dayFilter(day))); err != nil {
		t.Fatal(err)
	}
	commit(t, txn)
}

// plantRevenue multiplies the gross revenue of one partition by factor,
// keeping net = gross − refund.
func plantRevenue(t *testing.T, cat *catalog.Catalog, branch string, day features.Date, factor float64) {
	t.Helper()
	rewritePartition(t, cat, branch, day, func(_ int, row map[string]int64) {
		row["gross_revenue_cents"] = int64(math.Round(float64(row["gross_revenue_cents"]) * factor))
		row["net_revenue_cents"] = row["gross_revenue_cents"] - row["refund_cents"]
	})
}

// plantMissing deletes one partition.
func plantMissing(t *testing.T, cat *catalog.Catalog, branch string, day features.Date) {
	t.Helper()
	txn := loadTable(t, cat).NewTransactionOnBranch(branch)
	if err := txn.Delete(context.Background(), dayFilter(day), iceberg.Properties{"test": "planted missing partition"}); err != nil {
		t.Fatal(err)
	}
	commit(t, txn)
}

// plantDuplicate appends a copy of the partition's row of the smallest
// customer_id with one order; it returns its key.
func plantDuplicate(t *testing.T, cat *catalog.Catalog, branch string, day features.Date) string {
	t.Helper()
	tbl := loadTable(t, cat)
	sch, recs := partitionRows(t, tbl, branch, day)
	var pick arrow.RecordBatch
	var key string
	for _, rec := range recs {
		cust := rec.Column(sch.FieldIndices("customer_id")[0]).(*array.String)
		ch := rec.Column(sch.FieldIndices("channel")[0]).(*array.String)
		orders := rec.Column(sch.FieldIndices("orders")[0]).(*array.Int64)
		for i := 0; i < int(rec.NumRows()); i++ {
			k := day.String() + " " + cust.Value(i) + " " + ch.Value(i)
			if orders.Value(i) == 1 && (key == "" || k < key) {
				key = k
				pick = rec.NewSlice(int64(i), int64(i+1))
			}
		}
	}
	if pick == nil {
		t.Fatalf("no row with one order on %s", day)
	}
	defer pick.Release()
	rdr, err := array.NewRecordReader(sch, []arrow.RecordBatch{pick})
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	txn := tbl.NewTransactionOnBranch(branch)
	if err := txn.Append(context.Background(), rdr, iceberg.Properties{"test": "planted duplicate"}); err != nil {
		t.Fatal(err)
	}
	commit(t, txn)
	return key
}

// dayWhere picks the day of the clean main-vs-clv-fix comparison whose
// relative difference of metric is extreme (smallest when lowest is true).
func dayWhere(t *testing.T, clean *validate.Report, metric string, pick func(a, b float64) bool) (features.Date, float64) {
	t.Helper()
	var best validate.GroupDiff
	for i, g := range clean.Table(metric, validate.DimEventDate).Groups {
		if i == 0 || pick(g.RelDiff, best.RelDiff) {
			best = g
		}
	}
	return features.MustParseDate(best.Group), best.RelDiff
}

func hasFailure(r *validate.Report, name, dim, group string) (validate.Check, bool) {
	for _, c := range r.Failed() {
		if c.Name == name && c.Dimension == dim && c.Group == group {
			return c, true
		}
	}
	return validate.Check{}, false
}

func TestPlantedErrorsAreCaught(t *testing.T) {
	cat := fixture(t)
	exp := loadExpected(t)
	clean := compare(t, cat, validate.Options{Base: "main", Candidate: "clv-fix", Expected: exp})
	if !clean.Pass {
		t.Fatalf("the clean candidate fails: %v", failedLabels(clean))
	}
	cleanStatus := statuses(clean)
	// The day where the fix changed gross revenue least: +2 % there turns
	// the declared decrease into an increase.
	revDay, revDiff := dayWhere(t, clean, validate.MetricGross, func(a, b float64) bool { return a > b })
	if revDiff < -0.012 {
		t.Fatalf("fixture changed: the smallest gross decrease is %v; +2%% no longer flips it", revDiff)
	}
	// The day where orders fell most: one duplicated row stays within the
	// declared bounds there, so only the invariant can catch it.
	dupDay, _ := dayWhere(t, clean, validate.MetricOrders, func(a, b float64) bool { return a < b })
	missDay := first + 4

	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, branch string) string
		check func(t *testing.T, branch, note string)
	}{
		{
			name:  "one partition's revenue +2%",
			plant: func(t *testing.T, b string) string { plantRevenue(t, cat, b, revDay, 1.02); return "" },
			check: func(t *testing.T, b, _ string) {
				// Against the legacy main, with the declared differences.
				r := compare(t, cat, validate.Options{Base: "main", Candidate: b, Expected: exp})
				c, ok := hasFailure(r, validate.MetricGross, validate.DimEventDate, revDay.String())
				if r.Pass || !ok || !strings.Contains(c.Message, "declared down") {
					t.Fatalf("against main: pass %v, failed %v; want gross_revenue_cents on %s failing its declared direction", r.Pass, failedLabels(r), revDay)
				}
				assertNotFailed(t, r, validate.SectionInvariants, validate.SectionPartitions)
				// Against the validated clv-fix, no declarations: the day
				// fails, the totals stay within the tolerance.
				r = compare(t, cat, validate.Options{Base: "clv-fix", Candidate: b})
				g, ok := hasFailure(r, validate.MetricGross, validate.DimEventDate, revDay.String())
				if !ok || math.Abs(g.RelDiff-0.02) > 0.0005 {
					t.Fatalf("against clv-fix: failed %v; want gross_revenue_cents on %s at +2%% (got %v)", failedLabels(r), revDay, g.RelDiff)
				}
				if _, ok := hasFailure(r, validate.MetricNet, validate.DimEventDate, revDay.String()); !ok {
					t.Errorf("net_revenue_cents on %s not failed", revDay)
				}
				if st := statuses(r); st["gross_revenue_cents by overall = all"] != validate.StatusPass || st["orders by event_date"] != validate.StatusPass {
					t.Errorf("overall gross %s, orders by day %s; want both pass", st["gross_revenue_cents by overall = all"], st["orders by event_date"])
				}
				assertNotFailed(t, r, validate.SectionInvariants, validate.SectionPartitions)
				if len(r.Sample) == 0 || r.Sample[0].EventDate != revDay.String() || !slices.Contains(r.Sample[0].Differs, "gross_revenue_cents") {
					t.Errorf("sample %+v does not show the changed rows", r.Sample)
				}
			},
		},
		{
			name:  "one partition missing",
			plant: func(t *testing.T, b string) string { plantMissing(t, cat, b, missDay); return "" },
			check: func(t *testing.T, b, _ string) {
				r := compare(t, cat, validate.Options{Base: "main", Candidate: b, Expected: exp})
				c, ok := hasFailure(r, validate.MetricPartitions, validate.DimEventDate, missDay.String())
				if r.Pass || !ok || !strings.Contains(c.Message, "missing from the candidate") {
					t.Fatalf("failed %v; want the partition %s reported missing", failedLabels(r), missDay)
				}
				if !slices.Equal(r.Partitions.OnlyBase, []string{missDay.String()}) || len(r.Partitions.OnlyCandidate) != 0 {
					t.Errorf("partitions %+v", r.Partitions)
				}
				// The other days still differ only as declared.
				for _, c := range r.Failed() {
					if c.Dimension == validate.DimEventDate && c.Name != validate.MetricPartitions {
						t.Errorf("day-level check failed besides the partition: %s", c.Label())
					}
				}
				if _, ok := r.Table(validate.MetricRows, validate.DimEventDate).Group(missDay.String()); ok {
					t.Error("the missing partition is also judged as a metric group")
				}
				// Declared as intended, it is expected instead.
				declared, err := validate.ParseExpected([]byte(fmt.Sprintf(
					"expected:\n  - {metric: partitions, direction: down, groups: [%s], reason: withdrawn}\n", missDay)))
				if err != nil {
					t.Fatal(err)
				}
				r = compare(t, cat, validate.Options{Base: "clv-fix", Candidate: b, Expected: declared})
				st := statuses(r)
				if st["partitions by event_date = "+missDay.String()] != validate.StatusExpected || st["partitions by event_date"] != validate.StatusExpected {
					t.Errorf("declared missing partition: failed %v", failedLabels(r))
				}
				if r.Keys.OnlyBase == 0 || r.Keys.OnlyCandidate != 0 || r.Keys.Differing != 0 || len(r.Sample) == 0 || r.Sample[0].Candidate != nil {
					t.Errorf("keys %+v, sample %d", r.Keys, len(r.Sample))
				}
			},
		},
		{
			name: "net != gross - refund and a negative count",
			plant: func(t *testing.T, b string) string {
				rewritePartition(t, cat, b, first+1, func(n int, row map[string]int64) {
					switch n {
					case 3:
						row["net_revenue_cents"]++
					case 5:
						row["orders"] = -1
					}
				})
				return ""
			},
			check: func(t *testing.T, b, _ string) {
				// Invariants cannot be declared: they fail whatever the
				// expected file says.
				r := compare(t, cat, validate.Options{Base: "main", Candidate: b, Expected: exp})
				st := statuses(r)
				if st[validate.InvariantNetEquation] != validate.StatusFail || st["non_negative (orders)"] != validate.StatusFail || st[validate.InvariantUniqueKey] != validate.StatusPass {
					t.Fatalf("failed %v; want net_equals_gross_minus_refund and non_negative (orders)", failedLabels(r))
				}
				for _, inv := range r.Invariants {
					want := int64(0)
					if inv.Name == validate.InvariantNetEquation || inv.Column == "orders" {
						want = 1
					}
					if inv.Candidate != want || len(inv.Examples) != int(want) {
						t.Errorf("%s %s: %d violations %v, want %d", inv.Name, inv.Column, inv.Candidate, inv.Examples, want)
					}
				}
			},
		},
		{
			name:  "one duplicated key",
			plant: func(t *testing.T, b string) string { return plantDuplicate(t, cat, b, dupDay) },
			check: func(t *testing.T, b, key string) {
				r := compare(t, cat, validate.Options{Base: "main", Candidate: b, Expected: exp})
				if got := failedLabels(r); !slices.Equal(got, []string{validate.InvariantUniqueKey}) {
					t.Fatalf("failed %v; want exactly unique_key", got)
				}
				inv := r.Invariants[slices.IndexFunc(r.Invariants, func(i validate.InvariantResult) bool { return i.Name == validate.InvariantUniqueKey })]
				if inv.Candidate != 1 || inv.Base != 0 || len(inv.Examples) != 1 || !strings.HasPrefix(inv.Examples[0], key) {
					t.Fatalf("unique_key %+v; want the key %s", inv, key)
				}
				// Every other check keeps its clean status.
				for label, st := range statuses(r) {
					if label != validate.InvariantUniqueKey && st != cleanStatus[label] {
						t.Errorf("%s: %s, clean %s", label, st, cleanStatus[label])
					}
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := forkBranch(t, cat, "planted", "clv-fix")
			note := tc.plant(t, b)
			tc.check(t, b, note)
		})
	}
}

func assertNotFailed(t *testing.T, r *validate.Report, sections ...string) {
	t.Helper()
	for _, c := range r.Failed() {
		if slices.Contains(sections, c.Section) {
			t.Errorf("unexpected failure %s: %s", c.Label(), c.Message)
		}
	}
}
