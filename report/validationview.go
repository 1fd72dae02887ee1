package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/validate"
)

type validationView struct {
	V                        *Validation
	Pass                     bool
	Failed, Expected, Passed int
	When, Range, ExpectedAs  string
	Certificate              string
	CertificateOK            bool
	Dimensions               []string
	Rows                     []metricRow
	FailedChecks             []checkRow
	MoreFailed               int
	LTV                      []ltvRow
	LTVChart                 *ltvChart
	LTVChecks                []checkRow
	KS                       string
	Invariants               []checkRow
	Columns                  []checkRow
	Partitions               string
	Keys                     string
	SampleHead               []string
	Sample                   []sampleRow
}

type metricRow struct {
	Metric string
	Cells  []*miniChart
}

type checkRow struct {
	Label, Figures, Message, Status string
}

// miniChart is one metric by one dimension: a bar per group (its relative
// difference), the ±tolerance band and the declared bounds.
type miniChart struct {
	Metric, Dimension, Status string
	W, H                      int
	ZeroY                     float64
	BandY, BandH              float64
	Bounds                    []boundLine
	Bars                      []barView
	Paths                     []pathView
	Scale, OffScale           string
	Summary                   string
	Title                     string
}

type boundLine struct {
	Y     float64
	Title string
}

type pathView struct{ Class, D string }

type ltvRow struct {
	Side                                     string
	Customers, Mean, Min, P50, P90, P99, Max string
}

type ltvChart struct {
	W, H  int
	Axis  []labelView
	Ticks []int
	Rows  []ltvChartRow
}

type ltvChartRow struct {
	Label string
	Y     int
	Dots  []dotView
	Line  [2]float64
}

type dotView struct {
	X, LabelY float64
	Label     string
	Title     string
}

type sampleRow struct {
	Key   string
	Side  string
	Cells []sampleCell
	First bool
}

type sampleCell struct {
	Text string
	Diff bool
}

const (
	miniW, miniH = 150, 60
	// manyGroups: above this many groups, bars are drawn as one path per
	// status (a tooltip per bar would make a five-year page heavy).
	manyGroups = 120
	// maxFailedShown caps the failed checks listed.
	maxFailedShown = 15
)

func validationOf(v *Validation, cert *snapshots.Validation, head int64) *validationView {
	if v == nil {
		return nil
	}
	vv := &validationView{V: v, Pass: v.Pass, Failed: v.Counts[validate.StatusFail], Expected: v.Counts[validate.StatusExpected], Passed: v.Counts[validate.StatusPass]}
	vv.When = fmtTime(time.UnixMilli(v.At))
	vv.Range = "all partitions"
	if v.From != "" || v.To != "" {
		vv.Range = fmt.Sprintf("%s … %s", orDash(v.From, "first"), orDash(v.To, "last"))
	}
	vv.ExpectedAs = "none declared: every difference beyond the rule fails"
	if v.ExpectedFile != "" {
		vv.ExpectedAs = v.ExpectedFile
	}
	switch {
	case cert == nil:
		vv.Certificate = "No passing validation is recorded for this branch: promote will refuse it."
	case head != 0 && cert.CandidateSnapshot != head:
		vv.Certificate = fmt.Sprintf("The recorded pass (%s by %s, %s) is of snapshot %d; the branch is now at %d. Promote publishes only content a pass certifies: validate again if partitions changed since.",
			fmtTime(time.UnixMilli(cert.At)), cert.By, certified(cert), cert.CandidateSnapshot, head)
	default:
		vv.CertificateOK = true
		vv.Certificate = fmt.Sprintf("A pass is recorded for the branch head, snapshot %d, against %s snapshot %d (%s by %s, %s).",
			cert.CandidateSnapshot, cert.Base, cert.BaseSnapshot, fmtTime(time.UnixMilli(cert.At)), cert.By, certified(cert))
	}

	// Small multiples: a row per metric, a column per dimension.
	byMetric := map[string]map[string]*Metric{}
	var metricOrder []string
	for i := range v.Metrics {
		m := &v.Metrics[i]
		if byMetric[m.Metric] == nil {
			byMetric[m.Metric] = map[string]*Metric{}
			metricOrder = append(metricOrder, m.Metric)
		}
		byMetric[m.Metric][m.Dimension] = m
		if !slices.Contains(vv.Dimensions, m.Dimension) {
			vv.Dimensions = append(vv.Dimensions, m.Dimension)
		}
	}
	for _, name := range metricOrder {
		row := metricRow{Metric: name}
		for _, dim := range vv.Dimensions {
			if m := byMetric[name][dim]; m != nil {
				row.Cells = append(row.Cells, mini(m))
			} else {
				row.Cells = append(row.Cells, nil)
			}
		}
		vv.Rows = append(vv.Rows, row)
	}

	// The verdicts of whole metrics first, then single groups (the charts
	// show every group).
	failed := slices.Clone(v.Failed)
	isGroup := func(c validate.Check) bool {
		return c.Section == validate.SectionMetrics && c.Group != "" && c.Dimension != validate.DimOverall
	}
	slices.SortStableFunc(failed, func(a, b validate.Check) int {
		switch {
		case isGroup(a) == isGroup(b):
			return 0
		case isGroup(a):
			return 1
		}
		return -1
	})
	for _, c := range failed[:min(len(failed), maxFailedShown)] {
		vv.FailedChecks = append(vv.FailedChecks, checkRow{Label: c.Label(), Figures: figures(c), Message: c.Message, Status: c.Status})
	}
	vv.MoreFailed = max(v.FailedTotal, len(v.Failed)) - len(vv.FailedChecks)

	// Lifetime value.
	for _, side := range []struct {
		name string
		d    validate.Distribution
	}{{"base " + v.Base, v.LTV.Base}, {"candidate " + v.Candidate, v.LTV.Candidate}} {
		d := side.d
		vv.LTV = append(vv.LTV, ltvRow{Side: side.name, Customers: fmtInt(int64(d.Customers)), Mean: fmtInt(int64(math.Round(d.Mean))),
			Min: fmtInt(d.Min), P50: fmtInt(d.P50), P90: fmtInt(d.P90), P99: fmtInt(d.P99), Max: fmtInt(d.Max)})
	}
	vv.LTVChart = ltvDots(v)
	for _, c := range v.LTVChecks {
		vv.LTVChecks = append(vv.LTVChecks, checkRow{Label: c.Name, Figures: figures(c), Message: c.Message, Status: c.Status})
	}
	vv.KS = fmt.Sprintf("D = %.4f, p ≈ %.3g", v.LTV.KSD, v.LTV.KSPValue)

	for _, inv := range v.Invariants {
		name := inv.Name
		if inv.Column != "" {
			name += " (" + inv.Column + ")"
		}
		r := checkRow{Label: name, Figures: fmt.Sprintf("%s violations (base %s)", fmtInt(inv.Candidate), fmtInt(inv.Base)), Status: validate.StatusPass}
		if inv.Candidate > 0 {
			r.Status = validate.StatusFail
			r.Message = strings.Join(inv.Examples, "; ")
		}
		vv.Invariants = append(vv.Invariants, r)
	}
	for _, c := range v.Columns {
		r := checkRow{Label: c.Column, Status: c.Class,
			Figures: fmt.Sprintf("null %s → %s", fmtPct(c.BaseRate), fmtPct(c.CandidateRate))}
		if !c.InBase {
			r.Figures = "absent on base → null " + fmtPct(c.CandidateRate)
		}
		if !c.InCandidate {
			r.Figures = "null " + fmtPct(c.BaseRate) + " → absent on candidate"
		}
		vv.Columns = append(vv.Columns, r)
	}
	pd := v.Partitions
	vv.Partitions = fmt.Sprintf("base %d, candidate %d, on both %d", pd.Base, pd.Candidate, pd.Both)
	if len(pd.OnlyBase) > 0 {
		vv.Partitions += "; only on base: " + strings.Join(pd.OnlyBase, ", ")
	}
	if len(pd.OnlyCandidate) > 0 {
		vv.Partitions += "; only on candidate: " + strings.Join(pd.OnlyCandidate, ", ")
	}
	k := v.Keys
	vv.Keys = fmt.Sprintf("%s keys on both sides, %s only on base, %s only on candidate, %s differing",
		fmtInt(k.Common), fmtInt(k.OnlyBase), fmtInt(k.OnlyCandidate), fmtInt(k.Differing))
	vv.SampleHead, vv.Sample = sample(v.Sample)
	return vv
}

// certified says how many partitions a recorded pass certifies.
func certified(v *snapshots.Validation) string {
	n := max(len(v.Partitions), v.Covered)
	if n == 1 {
		return "1 partition certified"
	}
	return fmt.Sprintf("%d partitions certified", n)
}

func orDash(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func figures(c validate.Check) string {
	switch c.Section {
	case validate.SectionInvariants:
		return fmt.Sprintf("candidate %s (base %s)", fmtFloat(c.Candidate), fmtFloat(c.Base))
	case validate.SectionNullRates, validate.SectionColumns:
		return fmt.Sprintf("null %s → %s", fmtPct(c.Base), fmtPct(c.Candidate))
	case validate.SectionLTV:
		if c.Name == validate.MetricLTVKS {
			return fmt.Sprintf("D = %.4f", c.Candidate)
		}
	case validate.SectionPartitions:
		return fmt.Sprintf("%s → %s", fmtFloat(c.Base), fmtFloat(c.Candidate))
	}
	return fmt.Sprintf("%s → %s (%s)", fmtFloat(c.Base), fmtFloat(c.Candidate), fmtRel(c.RelDiff))
}

var groupClass = map[byte]string{'p': "pass", 't': "tolerated", 'e': "expected", 'f': "fail"}

func mini(m *Metric) *miniChart {
	mc := &miniChart{Metric: m.Metric, Dimension: m.Dimension, Status: m.Status, W: miniW, H: miniH}
	// Symmetric scale: the band, the declared bounds and every finite
	// difference fit (infinite ones are drawn to the edge).
	// The scale fits the band and the differences; a declared bound far
	// beyond them would flatten every bar, so it is named, not drawn.
	s := 2.5 * m.Tolerance
	for _, r := range m.Rel {
		if !isInfinite(r) {
			s = max(s, math.Abs(r)*1.15)
		}
	}
	s = max(s, 1e-6)
	for _, d := range m.Declared {
		if d.Bound != nil && *d.Bound <= 3*s {
			s = max(s, *d.Bound*1.08)
		}
	}
	var offScale []string
	top, plotH := 4.0, float64(miniH-8)
	mc.ZeroY = top + plotH/2
	y := func(r float64) float64 {
		r = max(min(r, s), -s)
		return mc.ZeroY - plotH/2*r/s
	}
	mc.BandY, mc.BandH = y(m.Tolerance), y(-m.Tolerance)-y(m.Tolerance)
	for _, d := range m.Declared {
		if d.Bound == nil {
			continue
		}
		title := fmt.Sprintf("declared %s, bound %s: %s", d.Direction, fmtPct(*d.Bound), d.Reason)
		if *d.Bound > s {
			offScale = append(offScale, "≤"+fmtPct(*d.Bound))
			continue
		}
		if d.Direction != validate.Down {
			mc.Bounds = append(mc.Bounds, boundLine{Y: y(*d.Bound), Title: title})
		}
		if d.Direction != validate.Up {
			mc.Bounds = append(mc.Bounds, boundLine{Y: y(-*d.Bound), Title: title})
		}
	}
	mc.Scale = "±" + fmtPct(s)
	n := len(m.Rel)
	counts := map[byte]int{}
	step := float64(miniW-4) / float64(max(n, 1))
	bw := max(step-1, 1)
	if n <= 3 {
		bw = min(bw, 28)
	}
	paths := map[string]*strings.Builder{}
	for i, r := range m.Rel {
		st := byte('p')
		if i < len(m.States) {
			st = m.States[i]
		}
		counts[st]++
		x := 2 + float64(i)*step + (step-bw)/2
		y0, y1 := mc.ZeroY, y(r)
		if y1 > y0 {
			y0, y1 = y1, y0
		}
		h := max(y0-y1, 1)
		cls := groupClass[st]
		if n > manyGroups {
			b := paths[cls]
			if b == nil {
				b = &strings.Builder{}
				paths[cls] = b
			}
			fmt.Fprintf(b, "M%.1f %.1fh%.1fv%.1fh-%.1fz", x, y1, bw, h, bw)
			continue
		}
		title := fmt.Sprintf("%s = %s: %s", m.Dimension, m.Groups[i], fmtRel(r))
		if i < len(m.Base) && i < len(m.Cand) {
			title += fmt.Sprintf(" (%s → %s)", fmtInt(m.Base[i]), fmtInt(m.Cand[i]))
		}
		title += ", " + statusWord(st)
		mc.Bars = append(mc.Bars, barView{X: x, Y: y1, W: bw, H: h, Class: cls, Title: title})
	}
	for _, cls := range []string{"pass", "tolerated", "expected", "fail"} {
		if b := paths[cls]; b != nil {
			mc.Paths = append(mc.Paths, pathView{Class: cls, D: b.String()})
		}
	}
	var parts []string
	for _, st := range []byte{'f', 'e', 't', 'p'} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], statusWord(st)))
		}
	}
	mc.Summary = strings.Join(parts, ", ")
	if n == 1 {
		mc.Summary = fmtRel(m.Rel[0])
	}
	if len(offScale) > 0 {
		mc.OffScale = "; bound " + strings.Join(offScale, ", ") + " off scale"
	}
	mc.Title = fmt.Sprintf("%s by %s: %s; %s (band ±%s, rule ≥%s of groups)", m.Metric, m.Dimension, m.Status, mc.Summary, fmtPct(m.Tolerance), fmtPct(m.GroupShare))
	return mc
}

func statusWord(st byte) string {
	switch st {
	case 'f':
		return "fail"
	case 'e':
		return "as declared"
	case 't':
		return "outside, tolerated"
	}
	return "within"
}

// ltvDots places the quantiles of both sides on one axis.
func ltvDots(v *Validation) *ltvChart {
	const w, h, left, right = 560, 118, 110, 30
	hi := float64(max(v.LTV.Base.P99, v.LTV.Candidate.P99, 1))
	lo := float64(min(v.LTV.Base.P50, v.LTV.Candidate.P50, 0))
	x := func(val float64) float64 { return left + (w-left-right)*(val-lo)/(hi-lo) }
	c := &ltvChart{W: w, H: h}
	for i, side := range []struct {
		name string
		d    validate.Distribution
	}{{"base", v.LTV.Base}, {"candidate", v.LTV.Candidate}} {
		row := ltvChartRow{Label: side.name, Y: 24 + i*44}
		d := side.d
		for j, q := range []struct {
			name string
			val  float64
		}{{"p50", float64(d.P50)}, {"mean", d.Mean}, {"p90", float64(d.P90)}, {"p99", float64(d.P99)}} {
			// Labels alternate above and below: p50 and the mean are close.
			ly := float64(row.Y - 9)
			if j%2 == 1 {
				ly = float64(row.Y + 17)
			}
			row.Dots = append(row.Dots, dotView{X: x(q.val), LabelY: ly, Label: q.name, Title: fmt.Sprintf("%s %s: %s", side.name, q.name, fmtInt(int64(math.Round(q.val))))})
		}
		row.Line = [2]float64{x(float64(d.P50)), x(float64(d.P99))}
		c.Rows = append(c.Rows, row)
	}
	for _, t := range []float64{lo, (lo + hi) / 2, hi} {
		c.Axis = append(c.Axis, labelView{X: int(x(t)), Y: h - 6, Text: fmtInt(int64(math.Round(t)))})
		c.Ticks = append(c.Ticks, int(x(t)))
	}
	return c
}

func sample(rows []validate.SampleRow) ([]string, []sampleRow) {
	var out []sampleRow
	for _, s := range rows {
		key := s.EventDate + " · " + s.CustomerID + " · " + s.Channel
		for i, side := range []*validate.RowValues{s.Base, s.Candidate} {
			r := sampleRow{Key: key, Side: "base", First: i == 0}
			if i == 1 {
				r.Side = "candidate"
			}
			for j, col := range validate.SampleColumns {
				text := "absent"
				if side != nil {
					text = side.Texts()[j]
				}
				r.Cells = append(r.Cells, sampleCell{Text: text, Diff: slices.Contains(s.Differs, col)})
			}
			out = append(out, r)
		}
	}
	return validate.SampleColumns, out
}
