package report

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/validate"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixtureState is a plan of days partitions from 2024-01-01 with every
// state: every 7th failed, every 11th source changed, every 13th logic
// changed, the last tenth to do, the rest done.
func fixtureState(days int) *snapshots.State {
	st := snapshots.NewState("clv-fix")
	from := features.MustParseDate("2024-01-01")
	to := from.AddDays(days - 1)
	st.Plan = &snapshots.Plan{From: from.String(), To: to.String(), Logic: "clv-corrected/1", Source: "s3://raw/events", Partitions: days, Base: 111}
	st.SourceChanged = map[string]string{}
	for i := 0; i < days; i++ {
		day := from.AddDays(i).String()
		at := t0.Add(time.Duration(i) * 40 * time.Second).UnixMilli()
		cp := snapshots.Checkpoint{Logic: "clv-corrected/1", Fingerprint: "fp" + day, RunID: "run-1", CommittedAt: at,
			InputRows: 1000 + int64(i), OutputRows: 400, Seconds: 30 + float64(i%5), Bytes: 1 << 20}
		switch {
		case i >= days*9/10:
			// to do
		case i%7 == 3:
			st.Failures[day] = snapshots.Failure{RunID: "run-1", Error: fmt.Sprintf("source file dt=%s/part-0.parquet is not readable Parquet <&>", day), At: at, Logic: "clv-corrected/1"}
		case i%11 == 5:
			st.Checkpoints[day] = cp
			st.SourceChanged[day] = "new" + day
		case i%13 == 6:
			cp.Logic = "clv-legacy/1"
			st.Checkpoints[day] = cp
		default:
			st.Checkpoints[day] = cp
		}
	}
	return st
}

func expectedStates(days int) map[string]string {
	from := features.MustParseDate("2024-01-01")
	out := map[string]string{}
	for i := 0; i < days; i++ {
		s := StateDone
		switch {
		case i >= days*9/10:
			s = StateTodo
		case i%7 == 3:
			s = StateFailed
		case i%11 == 5:
			s = StateSourceChanged
		case i%13 == 6:
			s = StateLogicChanged
		}
		out[from.AddDays(i).String()] = s
	}
	return out
}

func fixtureValidation(groupsPerDay int) *Validation {
	bound := 0.15
	rep := &validate.Report{
		Pass: false, Base: "main", Candidate: "clv-fix", BaseSnapshot: 111, CandidateSnapshot: 222,
		Counts: map[string]int{validate.StatusFail: 2, validate.StatusExpected: 1, validate.StatusPass: 10},
		LTV: validate.LTVReport{Base: validate.Distribution{Customers: 900, Mean: 21000, P50: 11000, P90: 50000, P99: 130000, Max: 740000},
			Candidate: validate.Distribution{Customers: 920, Mean: 15600, Min: -60000, P50: 6800, P90: 45000, P99: 100000, Max: 550000}, KSD: 0.17, KSPValue: 5.7e-12},
		Keys: validate.KeyDiff{Common: 1000, Differing: 321},
		Sample: []validate.SampleRow{{EventDate: "2024-01-02", CustomerID: "c-0042", Channel: "email", Differs: []string{"refund_cents"},
			Base: &validate.RowValues{RefundCents: ptr(int64(0))}, Candidate: &validate.RowValues{RefundCents: ptr(int64(1200))}}},
		Checks: []validate.Check{
			{Section: validate.SectionMetrics, Name: "net_revenue_cents", Dimension: "channel", Status: validate.StatusFail, Base: 100, Candidate: 80, RelDiff: -0.2, Message: "only 1 of 3 groups within ±0.5%"},
			{Section: validate.SectionMetrics, Name: "refund_cents", Dimension: "overall", Group: "all", Status: validate.StatusFail, Base: 0, Candidate: 9, RelDiff: math.Inf(1), Message: "base is 0"},
			{Section: validate.SectionLTV, Name: validate.MetricLTVKS, Dimension: validate.DimCustomer, Status: validate.StatusPass, Candidate: 0.17, RelDiff: 0.17},
		},
		Metrics: []validate.MetricTable{
			{Metric: "net_revenue_cents", Dimension: "channel", Status: validate.StatusFail, GroupShare: 0.95, Tolerance: 0.005,
				Declared: []validate.DeclaredBound{{Direction: validate.Down, Bound: &bound, Reason: "refunds are now subtracted"}},
				Groups: []validate.GroupDiff{{Group: "email", Base: 100, Candidate: 80, RelDiff: -0.2, Status: validate.StatusFail, Note: "outside"},
					{Group: "search", Base: 100, Candidate: 90, RelDiff: -0.1, Status: validate.StatusExpected, Note: "as declared"},
					{Group: "social", Base: 100, Candidate: 100, Status: validate.StatusPass}}},
			{Metric: "refund_cents", Dimension: "overall", Status: validate.StatusFail, GroupShare: 0.95, Tolerance: 0.005,
				Groups: []validate.GroupDiff{{Group: "all", Base: 0, Candidate: 9, RelDiff: math.Inf(1), Status: validate.StatusFail}}},
		},
	}
	if groupsPerDay > 0 {
		// Every additive metric by day, with differences that do not
		// repeat (a deterministic generator), as a real validation has.
		x := uint64(42)
		next := func() float64 {
			x = x*6364136223846793005 + 1442695040888963407
			return float64(x>>11) / (1 << 53)
		}
		from := features.MustParseDate("2024-01-01")
		for _, metric := range []string{"rows", "orders", "gross_revenue_cents", "refund_cents", "net_revenue_cents"} {
			t := validate.MetricTable{Metric: metric, Dimension: "event_date", Status: validate.StatusPass, GroupShare: 0.95, Tolerance: 0.005}
			for i := 0; i < groupsPerDay; i++ {
				base := 100000 + int64(next()*900000)
				rel := (next() - 0.5) * 0.012
				g := validate.GroupDiff{Group: from.AddDays(i).String(), Base: base, Candidate: base + int64(float64(base)*rel), RelDiff: rel, Status: validate.StatusPass}
				if math.Abs(rel) >= 0.005 {
					g.Note = "tolerated"
				}
				t.Groups = append(t.Groups, g)
			}
			rep.Metrics = append(rep.Metrics, t)
		}
	}
	return Summarize(rep, t0, "ana@host")
}

func ptr[T any](v T) *T { return &v }

func fixturePage(days int) *Page {
	st := fixtureState(days)
	p := &Page{Table: "analytics.clv_daily", Catalog: "embedded SQLite catalog \"icefill\"", Branch: "clv-fix", Head: 222, Base: "main", BaseHead: 111,
		Generated: t0.Add(48 * time.Hour), State: st,
		Status:      &rewrite.Status{Events: 123456789, OutputRows: 4567, Bytes: 3 << 30, PartitionsPerHour: 90, EventsPerSecond: 1234, ETA: 3 * time.Hour},
		Validation:  fixtureValidation(days),
		Certificate: &snapshots.Validation{Candidate: "clv-fix", CandidateSnapshot: 200, Base: "main", BaseSnapshot: 111, At: t0.UnixMilli(), By: "ana@host"},
		History: []snapshots.Event{
			{Kind: "promote", Method: "fast-forward", Branch: "clv-fix", From: 111, To: 200, Tag: "pre-promote-clv-fix-1", Partitions: []string{"2024-01-01", "2024-01-09"},
				Validation: &snapshots.Validation{Candidate: "clv-fix", CandidateSnapshot: 200, Base: "main", BaseSnapshot: 111, At: t0.UnixMilli(), By: "ana@host"},
				RolledBack: true, At: t0.Add(time.Hour).UnixMilli(), By: "bob@host"},
			{Kind: "rollback", Method: "reset", From: 200, To: 111, At: t0.Add(2 * time.Hour).UnixMilli(), By: "bob@host", Note: "numbers looked off"},
			{Kind: "write-main", Method: "run", From: 0, To: 111, At: t0.Add(-2 * time.Hour).UnixMilli(), By: "ops@host"},
		},
		Tags: []Tag{{Name: "pre-promote-clv-fix-1", Snapshot: 111, At: t0}, {Name: "audit-2025", Snapshot: 99, At: t0.Add(-time.Hour)}},
	}
	return p
}

var cellRe = regexp.MustCompile(`<rect class="cell c-[a-z-]+" data-day="([0-9-]+)" data-state="([a-z-]+)"`)

func cells(t *testing.T, html string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, m := range cellRe.FindAllStringSubmatch(html, -1) {
		if _, dup := out[m[1]]; dup {
			t.Fatalf("day %s has two cells", m[1])
		}
		out[m[1]] = m[2]
	}
	return out
}

func TestPartitionStates(t *testing.T) {
	st := fixtureState(60)
	want := expectedStates(60)
	parts := Partitions(st)
	if len(parts) != 60 {
		t.Fatalf("%d partitions, want 60", len(parts))
	}
	for _, p := range parts {
		if want[p.Day.String()] != p.State {
			t.Errorf("%s: state %s, want %s", p.Day, p.State, want[p.Day.String()])
		}
	}
	// A partition recomputed after its source changed is done again; one
	// that failed after being committed is failed.
	day := "2024-01-06" // i=5: source changed
	cp := st.Checkpoints[day]
	cp.Fingerprint = st.SourceChanged[day]
	st.Checkpoints[day] = cp
	st.Failures["2024-01-02"] = snapshots.Failure{Error: "boom", At: st.Checkpoints["2024-01-02"].CommittedAt + 1}
	for _, p := range Partitions(st) {
		switch p.Day.String() {
		case day:
			if p.State != StateDone {
				t.Errorf("recomputed %s: %s", day, p.State)
			}
		case "2024-01-02":
			if p.State != StateFailed || !strings.Contains(p.Detail, "boom") {
				t.Errorf("failed after commit: %s %q", p.State, p.Detail)
			}
		}
	}
}

func render(t *testing.T, p *Page) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestGolden pins the whole page of a small fixture: any change to the
// markup shows up in review as a diff of testdata/page.golden.html
// (go test ./report -update rewrites it).
func TestGolden(t *testing.T) {
	got := render(t, fixturePage(40))
	golden := filepath.Join("testdata", "page.golden.html")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update)", err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("page differs from %s at line %d:\n got: %.300s\nwant: %.300s", golden, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("page differs from %s in length: %d lines, want %d", golden, len(gl), len(wl))
	}
}

func TestPageContent(t *testing.T) {
	html := render(t, fixturePage(40))
	got := cells(t, html)
	want := expectedStates(40)
	if len(got) != len(want) {
		t.Fatalf("%d cells, want %d", len(got), len(want))
	}
	for day, s := range want {
		if got[day] != s {
			t.Errorf("cell %s: %s, want %s", day, got[day], s)
		}
	}
	for _, s := range []string{
		"analytics.clv_daily", "snapshot 222", "snapshot 111", "2026-03-03 12:00:00 UTC", // what, where, when
		"<b>done</b>", "<b>failed</b>", "<b>source changed</b>", "<b>logic changed</b>", "<b>to do</b>", // legend in words
		"not readable Parquet &lt;&amp;&gt;", // failure text, escaped
		"3.0 GiB", "123,456,789", "3h 00m",   // progress
		`id="verdict">FAIL`, "net_revenue_cents by channel", "&#43;∞", "D = 0.1700", "refunds are now subtracted", // validation
		`class="bound"`, `class="band"`, "c-0042", `class="diff">1,200`,
		"is of snapshot 200; the branch is now at 222",                                                                          // stale certificate
		"published onto main (fast-forward)", "main: snapshot 111 → 200", "by bob@host", "numbers looked off", "tag audit-2025", // history
	} {
		if !strings.Contains(html, s) {
			t.Errorf("page lacks %q", s)
		}
	}
	// The promotion's tag is shown with the promotion, not again on its own.
	if strings.Contains(html, "tag pre-promote-clv-fix-1</span>") {
		t.Error("promotion tag listed twice")
	}
	// Self-contained: nothing is fetched, nothing runs.
	for _, s := range []string{"<script", "http://", "https://", "@import", "<link"} {
		if strings.Contains(html, s) {
			t.Errorf("page contains %q", s)
		}
	}
}

func TestFiveYears(t *testing.T) {
	p := fixturePage(1825)
	html := render(t, p)
	if dir := os.Getenv("ICEFILL_REPORT_DUMP"); dir != "" {
		os.WriteFile(filepath.Join(dir, "five-years.html"), []byte(html), 0o644)
	}
	got := cells(t, html)
	want := expectedStates(1825)
	if len(got) != 1825 {
		t.Fatalf("%d cells, want 1825", len(got))
	}
	for day, s := range want {
		if got[day] != s {
			t.Fatalf("cell %s: %s, want %s", day, got[day], s)
		}
	}
	if n := strings.Count(html, `class="year"`); n != 5 {
		t.Errorf("%d year rows, want 5 (2024…2028)", n)
	}
	// 1,825 groups of a metric are drawn as paths, not 1,825 tooltips.
	if !strings.Contains(html, `data-metric="rows" data-dimension="event_date"`) || strings.Count(html, "event_date = ") > 0 {
		t.Error("the event_date chart of 1,825 groups should be paths without per-bar titles")
	}
	if len(html) > 2<<20 {
		t.Errorf("page of 1,825 partitions is %d bytes; want under 2 MiB", len(html))
	}
	// The summary stored in the catalog stays small enough for a property.
	enc, err := json.Marshal(p.Validation)
	if err != nil {
		t.Fatal(err)
	}
	var back Validation
	if err := json.Unmarshal(enc, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Metrics) != 7 || len(back.Metrics[2].Rel) != 1825 || back.Metrics[2].Base != nil {
		t.Errorf("summary of 1,825 groups: %d metrics, %d rel, %d base values", len(back.Metrics), len(back.Metrics[2].Rel), len(back.Metrics[2].Base))
	}
	if !isInfinite(back.Metrics[1].Rel[0]) {
		t.Errorf("infinite difference read back as %v", back.Metrics[1].Rel[0])
	}
}

func TestEmptyBranch(t *testing.T) {
	p := &Page{Table: "analytics.clv_daily", Catalog: "c", Branch: "nothing-yet", Base: "main", Generated: t0,
		State: snapshots.NewState("nothing-yet"), Status: &rewrite.Status{}}
	html := render(t, p)
	for _, s := range []string{`id="no-plan"`, `id="no-validation"`, `id="no-history"`, "no such branch", `id="done-total">0 / 0`} {
		if !strings.Contains(html, s) {
			t.Errorf("empty page lacks %q", s)
		}
	}
	if n := len(cells(t, html)); n != 0 {
		t.Errorf("%d cells on an empty branch", n)
	}
}

func TestValidationOnly(t *testing.T) {
	var b bytes.Buffer
	if err := RenderValidation(&b, fixtureValidation(0), ValidationMeta{Table: "analytics.clv_daily", Catalog: "c", Generated: t0}); err != nil {
		t.Fatal(err)
	}
	html := b.String()
	for _, s := range []string{`id="verdict">FAIL`, "net_revenue_cents by channel", "clv-fix, snapshot 222", "main, snapshot 111"} {
		if !strings.Contains(html, s) {
			t.Errorf("validation page lacks %q", s)
		}
	}
	for _, s := range []string{`id="partitions"`, `id="history"`, `id="certificate"`} {
		if strings.Contains(html, s) {
			t.Errorf("validation page has %q", s)
		}
	}
}

// BenchmarkRenderFiveYears renders the page of a 1,825-partition plan
// with a validation of 1,825 event_date groups; it reports the page size.
func BenchmarkRenderFiveYears(b *testing.B) {
	p := fixturePage(1825)
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		if err := Render(&buf, p); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "bytes/page")
	// What validate stores in the table property: JSON, zlib, base64.
	raw, _ := json.Marshal(p.Validation)
	var z bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&z, zlib.BestCompression)
	zw.Write(raw)
	zw.Close()
	b.ReportMetric(float64(base64.StdEncoding.EncodedLen(z.Len())), "bytes/summary")
}
