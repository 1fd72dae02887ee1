package validate

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/icefill/icefill/features"
)

// Metric names: the additive sums (per dimension group), the partition
// presence, null rates, new/dropped columns and the customer lifetime value
// distribution.
const (
	MetricRows       = "rows"
	MetricOrders     = features.OutOrders
	MetricGross      = features.OutGrossRevenueCents
	MetricRefund     = features.OutRefundCents
	MetricNet        = features.OutNetRevenueCents
	MetricPartitions = "partitions"
	MetricNullRate   = "null_rate"
	MetricColumns    = "columns"
	MetricLTVP50     = "ltv_p50"
	MetricLTVP90     = "ltv_p90"
	MetricLTVP99     = "ltv_p99"
	MetricLTVKS      = "ltv_ks"
)

// Invariants of the candidate; they always fail when violated.
const (
	InvariantUniqueKey   = "unique_key"                    // (event_date, customer_id, channel) unique
	InvariantNetEquation = "net_equals_gross_minus_refund" // net = gross − refund
	InvariantNonNegative = "non_negative"                  // per column, Group names it
)

// Dimensions the metrics are grouped by.
const (
	DimOverall   = "overall"    // one group, "all"
	DimEventDate = "event_date" // the partition, YYYY-MM-DD
	DimMonth     = "month"      // YYYY-MM of event_date
	DimCountry   = "country"    // NullGroup for null
	DimChannel   = "channel"
	DimColumn    = "column"   // null rates and columns: the column name
	DimCustomer  = "customer" // the lifetime value distribution
)

// Check statuses.
const (
	StatusPass     = "pass"
	StatusExpected = "expected"
	StatusFail     = "fail"
)

// Sections of the report a check belongs to.
const (
	SectionPartitions = "partitions"
	SectionMetrics    = "metrics"
	SectionNullRates  = "null_rates"
	SectionColumns    = "columns"
	SectionLTV        = "ltv"
	SectionInvariants = "invariants"
)

// NullGroup is the group of rows whose dimension value is null.
const NullGroup = "(null)"

// OverallGroup is the only group of the overall dimension.
const OverallGroup = "all"

var (
	additiveMetrics = []string{MetricRows, MetricOrders, MetricGross, MetricRefund, MetricNet}
	groupDimensions = []string{DimOverall, DimEventDate, DimMonth, DimCountry, DimChannel}
	allDimensions   = append(slices.Clone(groupDimensions), DimColumn, DimCustomer)
	invariantNames  = []string{InvariantUniqueKey, InvariantNetEquation, InvariantNonNegative}
	ltvMetrics      = []string{MetricLTVP50, MetricLTVP90, MetricLTVP99, MetricLTVKS}
	// nonNegativeColumns must be >= 0 on the candidate.
	nonNegativeColumns = []string{features.OutOrders, features.OutRefundCents, features.OutTouches7d, features.OutDistinctChannels7d}
)

// metricDimensions lists every metric's dimensions.
var metricDimensions = func() map[string][]string {
	m := map[string][]string{
		MetricPartitions: {DimEventDate},
		MetricNullRate:   {DimColumn},
		MetricColumns:    {DimColumn},
	}
	for _, a := range additiveMetrics {
		m[a] = groupDimensions
	}
	for _, l := range ltvMetrics {
		m[l] = []string{DimCustomer}
	}
	return m
}()

// Metrics lists the metric names an expected file may declare.
func Metrics() []string {
	out := append(append(slices.Clone(additiveMetrics), MetricPartitions, MetricNullRate, MetricColumns), ltvMetrics...)
	return out
}

func ruleMetrics() []string {
	return append(append(slices.Clone(additiveMetrics), MetricNullRate), ltvMetrics...)
}

// verdict is the judgement of one group.
type verdict struct {
	status string
	within bool // |rel| < tolerance
	// violated: declared, but outside the declaration (always fails).
	violated bool
	rel      float64
	x        *Expectation
	msg      string
}

// judge compares one group's values. den is the denominator of the relative
// difference (the base, or the base of x.RelativeTo). A group within the
// tolerance passes whatever is declared; outside it, a declaration matching
// in direction and bound makes it expected, a declaration it breaks makes it
// fail, and without a declaration it is left to the group rule (outside).
func judge(base, cand, den, tol float64, x *Expectation) verdict {
	v := verdict{rel: relDiff(base, cand, den), x: x}
	if math.Abs(v.rel) < tol {
		v.status, v.within = StatusPass, true
		return v
	}
	if x == nil {
		v.status = StatusFail
		if math.IsInf(v.rel, 0) {
			v.msg = fmt.Sprintf("undeclared: base is 0, candidate %s (relative difference undefined; declare it with relative_to or bound .inf)", fmtNum(cand))
		} else {
			v.msg = fmt.Sprintf("undeclared difference %s (tolerance ±%s)", fmtRel(v.rel), fmtShare(tol))
		}
		return v
	}
	what := "relative difference"
	if x.RelativeTo != "" {
		what = "difference relative to base " + x.RelativeTo
	}
	dirOK := x.Direction == Any || (x.Direction == Up && v.rel > 0) || (x.Direction == Down && v.rel < 0)
	bound := math.Inf(1)
	if x.Bound != nil {
		bound = *x.Bound
	}
	switch {
	case !dirOK:
		v.status, v.violated = StatusFail, true
		v.msg = fmt.Sprintf("declared %s but the %s is %s (%s)", x.Direction, what, fmtRel(v.rel), x.String())
	case math.Abs(v.rel) > bound:
		v.status, v.violated = StatusFail, true
		v.msg = fmt.Sprintf("outside the declared bound: %s %s, declared %s at most %s", what, fmtRel(v.rel), x.Direction, fmtShare(bound))
	default:
		v.status = StatusExpected
		v.msg = fmt.Sprintf("as declared (%s): %s", x.String(), x.Reason)
	}
	return v
}

// judger judges with an expected file and counts how many groups each
// declaration matched.
type judger struct {
	exp  *Expected
	uses map[*Expectation]int
}

func (j *judger) judge(base, cand, den, tol float64, x *Expectation) verdict {
	v := judge(base, cand, den, tol, x)
	j.use(x, v.status == StatusExpected || v.violated)
	return v
}

func (j *judger) use(x *Expectation, matched bool) {
	if x != nil && matched {
		j.uses[x]++
	}
}

// GroupDiff is one group of a metric table.
type GroupDiff struct {
	Group     string  `json:"group"`
	Base      int64   `json:"base"`
	Candidate int64   `json:"candidate"`
	RelDiff   float64 `json:"rel_diff"`
	Status    string  `json:"status"`
	Note      string  `json:"note,omitempty"`
}

// MetricTable is a metric by one dimension: every group, its difference and
// status, and the verdict of the whole (Status).
type MetricTable struct {
	Metric     string      `json:"metric"`
	Dimension  string      `json:"dimension"`
	Status     string      `json:"status"`
	GroupShare float64     `json:"group_share"`
	Tolerance  float64     `json:"tolerance"`
	Groups     []GroupDiff `json:"groups"`
	// Declared are the expected-file entries that matched groups of the
	// table, in the order first matched.
	Declared []DeclaredBound `json:"declared,omitempty"`
}

// DeclaredBound is a declaration as it applies to a metric table: the
// groups between -Bound and +Bound on the declared side are as expected.
type DeclaredBound struct {
	Direction Direction `json:"direction"`
	// Bound is nil when unbounded (.inf).
	Bound      *float64 `json:"bound"`
	Groups     []string `json:"groups,omitempty"`
	RelativeTo string   `json:"relative_to,omitempty"`
	Reason     string   `json:"reason"`
}

// Group finds a group of the table.
func (t *MetricTable) Group(name string) (GroupDiff, bool) {
	for _, g := range t.Groups {
		if g.Group == name {
			return g, true
		}
	}
	return GroupDiff{}, false
}

func declaredBound(x *Expectation) DeclaredBound {
	d := DeclaredBound{Direction: x.Direction, Groups: x.Groups, RelativeTo: x.RelativeTo, Reason: x.Reason}
	if x.Bound != nil && !math.IsInf(*x.Bound, 0) {
		b := *x.Bound
		d.Bound = &b
	}
	return d
}

// judgeTable judges every group of t (Base and Candidate filled) and returns
// the summary check and one check per failing group. baseOf gives another
// metric's base value of a group (for relative_to).
func (j *judger) judgeTable(t *MetricTable, baseOf func(metric, group string) int64) []Check {
	exp := j.exp
	share, tol := exp.rule(t.Metric, t.Dimension)
	t.GroupShare, t.Tolerance = share, tol
	verdicts := make([]verdict, len(t.Groups))
	var sumB, sumC int64
	var nWithin, nExpected, nViolated, nOutside int
	minRel, maxRel := math.Inf(1), math.Inf(-1)
	reasons := map[*Expectation]bool{}
	var reasonOrder []*Expectation
	declared := map[*Expectation]bool{}
	t.Declared = nil
	for i := range t.Groups {
		g := &t.Groups[i]
		sumB += g.Base
		sumC += g.Candidate
		x := exp.find(t.Metric, t.Dimension, g.Group)
		if x != nil && !declared[x] {
			declared[x] = true
			t.Declared = append(t.Declared, declaredBound(x))
		}
		den := float64(g.Base)
		if x != nil && x.RelativeTo != "" {
			den = float64(baseOf(x.RelativeTo, g.Group))
		}
		v := j.judge(float64(g.Base), float64(g.Candidate), den, tol, x)
		verdicts[i] = v
		g.RelDiff = v.rel
		switch {
		case v.within:
			nWithin++
		case v.violated:
			nViolated++
		case v.status == StatusExpected:
			nExpected++
			minRel, maxRel = min(minRel, v.rel), max(maxRel, v.rel)
			if !reasons[x] {
				reasons[x] = true
				reasonOrder = append(reasonOrder, x)
			}
		default:
			nOutside++
		}
	}
	n := len(t.Groups)
	okShare := 1.0
	if n > 0 {
		okShare = float64(nWithin+nExpected) / float64(n)
	}
	ruleFails := okShare < share
	// Statuses of the groups.
	for i := range t.Groups {
		g, v := &t.Groups[i], verdicts[i]
		switch {
		case v.within:
			g.Status = StatusPass
		case v.violated:
			g.Status, g.Note = StatusFail, v.msg
		case v.status == StatusExpected:
			g.Status, g.Note = StatusExpected, v.msg
		case ruleFails:
			g.Status, g.Note = StatusFail, v.msg
		default:
			g.Status = StatusPass
			g.Note = fmt.Sprintf("%s; tolerated by the group rule (%d of %d groups within ±%s or declared, rule ≥%s)",
				v.msg, nWithin+nExpected, n, fmtShare(tol), fmtShare(share))
		}
	}

	sum := Check{Section: SectionMetrics, Name: t.Metric, Dimension: t.Dimension,
		Base: float64(sumB), Candidate: float64(sumC), RelDiff: relDiff(float64(sumB), float64(sumC), float64(sumB))}
	if t.Dimension == DimOverall && n == 1 {
		sum.Group = t.Groups[0].Group
	}
	var parts []string
	switch {
	case nViolated > 0:
		sum.Status = StatusFail
		parts = append(parts, fmt.Sprintf("%d of %d groups outside their declaration", nViolated, n))
	case ruleFails:
		sum.Status = StatusFail
		parts = append(parts, fmt.Sprintf("only %d of %d groups (%s) within ±%s or declared; the rule needs %s",
			nWithin+nExpected, n, fmtShare(okShare), fmtShare(tol), fmtShare(share)))
	case nExpected > 0:
		sum.Status = StatusExpected
	default:
		sum.Status = StatusPass
	}
	if n == 0 {
		parts = append(parts, "no groups")
	} else {
		parts = append(parts, fmt.Sprintf("%d within ±%s", nWithin, fmtShare(tol)))
		if nExpected > 0 {
			rng := fmtRel(minRel)
			if maxRel != minRel {
				rng += " … " + fmtRel(maxRel)
			}
			parts = append(parts, fmt.Sprintf("%d as declared (%s)", nExpected, rng))
		}
		if nOutside > 0 && !ruleFails {
			parts = append(parts, fmt.Sprintf("%d outside, tolerated (rule ≥%s)", nOutside, fmtShare(share)))
		}
		if nOutside > 0 && ruleFails {
			parts = append(parts, fmt.Sprintf("%d undeclared outside", nOutside))
		}
	}
	sum.Message = fmt.Sprintf("%s: %s", plural(n, "group"), strings.Join(parts, ", "))
	if n == 1 {
		// One group (overall, or a single month): the group's verdict.
		sum.RelDiff = verdicts[0].rel
		sum.Message = verdicts[0].msg
		if verdicts[0].within {
			sum.Message = fmt.Sprintf("within ±%s", fmtShare(tol))
		}
	}
	for _, x := range reasonOrder {
		if n != 1 {
			sum.Message += "; declared: " + x.Reason
		}
		sum.Reason = x.Reason
	}
	t.Status = sum.Status
	checks := []Check{sum}
	if n == 1 {
		return checks
	}
	for _, g := range t.Groups {
		if g.Status == StatusFail {
			checks = append(checks, Check{Section: SectionMetrics, Name: t.Metric, Dimension: t.Dimension, Group: g.Group,
				Status: StatusFail, Base: float64(g.Base), Candidate: float64(g.Candidate), RelDiff: g.RelDiff, Message: g.Note})
		}
	}
	return checks
}

// judgeScalar is a one-value check (LTV quantiles, KS, null rates): pass
// within the tolerance, expected within a declaration, else fail.
func (j *judger) judgeScalar(section, metric, dim, group string, base, cand, diff float64) Check {
	_, tol := j.exp.rule(metric, dim)
	x := j.exp.find(metric, dim, group)
	// diff is already the judged quantity: make judge see it unchanged.
	v := j.judge(0, diff, 1, tol, x)
	c := Check{Section: section, Name: metric, Dimension: dim, Group: group, Status: v.status,
		Base: base, Candidate: cand, RelDiff: diff, Message: v.msg}
	if v.within {
		c.Message = fmt.Sprintf("within ±%s", fmtShare(tol))
	}
	if x != nil && v.status == StatusExpected {
		c.Reason = x.Reason
	}
	return c
}

// fmtShare prints a share as a percentage: 0.005 → "0.5%", 0.1 → "10%".
func fmtShare(x float64) string {
	if math.IsInf(x, 1) {
		return "∞"
	}
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", x*100), "0"), ".") + "%"
}

// fmtRel prints a relative difference: "+2.00%", "-0.31%", "+inf".
func fmtRel(x float64) string {
	switch {
	case math.IsInf(x, 1):
		return "+inf"
	case math.IsInf(x, -1):
		return "-inf"
	case math.IsNaN(x):
		return "n/a"
	case x == 0:
		return "0%"
	}
	return fmt.Sprintf("%+.2f%%", x*100)
}

// fmtNum prints a number without a fraction when it is integral, with
// thousands separators.
func fmtNum(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e18 {
		return groupDigits(int64(x))
	}
	return fmt.Sprintf("%.4g", x)
}

func groupDigits(n int64) string {
	neg := n < 0
	if neg {
		n = -n
	}
	s := fmt.Sprint(n)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// buildReport judges the accumulated figures and fills the report, one
// section at a time, in the order the checks are listed.
func buildReport(r *Report, acc *accumulator, sides [2]*sideScan, exp *Expected, sample int) {
	rb := &reportBuilder{r: r, acc: acc, sides: sides, exp: exp, j: &judger{exp: exp, uses: map[*Expectation]int{}},
		b: acc.side[0], c: acc.side[1]}
	rb.customers()
	rb.partitions()
	rb.sideStats()
	rb.metrics()
	rb.columns()
	rb.lifetimeValue()
	rb.invariants()
	rb.keys()
	rb.sample(sample)
	rb.declarations()
	rb.verdict()
}

// reportBuilder carries what the sections of buildReport share.
type reportBuilder struct {
	r     *Report
	acc   *accumulator
	sides [2]*sideScan
	exp   *Expected
	j     *judger
	b, c  *sideAcc // base and candidate
	// ltv holds each side's customer lifetime values, sorted; onlyCust
	// counts the customers of one side only.
	ltv      [2][]int64
	onlyCust [2]int
	// ignored marks the value columns that are new or dropped: their
	// differences are the columns check's, not the keys'.
	ignored uint16
}

// present reports whether side s has rows in partition d.
func present(s *sideAcc, d int32) bool { x := s.byDate[d]; return x != nil && x[0] > 0 }

// customers collects each side's lifetime values.
func (rb *reportBuilder) customers() {
	for _, l := range rb.acc.ltv {
		for s := range 2 {
			if l.in[s] {
				rb.ltv[s] = append(rb.ltv[s], l.v[s])
				if !l.in[1-s] {
					rb.onlyCust[s]++
				}
			}
		}
	}
	slices.Sort(rb.ltv[0])
	slices.Sort(rb.ltv[1])
}

// partitions checks the partitions present on one side only.
func (rb *reportBuilder) partitions() {
	var dates []int32
	for d := range rb.b.byDate {
		dates = append(dates, d)
	}
	for d := range rb.c.byDate {
		if _, ok := rb.b.byDate[d]; !ok {
			dates = append(dates, d)
		}
	}
	slices.Sort(dates)
	pd := PartitionDiff{OnlyBase: []string{}, OnlyCandidate: []string{}}
	var partChecks []Check
	nExp, nFail := 0, 0
	for _, d := range dates {
		inB, inC := present(rb.b, d), present(rb.c, d)
		day := features.Date(d).String()
		switch {
		case inB && inC:
			pd.Both++
			continue
		case !inB && !inC:
			continue
		}
		ch := Check{Section: SectionPartitions, Name: MetricPartitions, Dimension: DimEventDate, Group: day}
		dir := Down
		if inB {
			pd.OnlyBase = append(pd.OnlyBase, day)
			ch.Base, ch.RelDiff = float64(rb.b.byDate[d][0]), -1
			ch.Message = fmt.Sprintf("partition only on base (%d rows): missing from the candidate", rb.b.byDate[d][0])
		} else {
			dir = Up
			pd.OnlyCandidate = append(pd.OnlyCandidate, day)
			ch.Candidate, ch.RelDiff = float64(rb.c.byDate[d][0]), math.Inf(1)
			ch.Message = fmt.Sprintf("partition only on the candidate (%d rows): absent from base", rb.c.byDate[d][0])
		}
		x := rb.exp.find(MetricPartitions, DimEventDate, day)
		switch {
		case x == nil:
			ch.Status = StatusFail
			ch.Message += "; undeclared"
		case x.Direction == Any || x.Direction == dir:
			ch.Status, ch.Reason = StatusExpected, x.Reason
			ch.Message += "; as declared: " + x.Reason
			nExp++
			rb.j.use(x, true)
		default:
			ch.Status = StatusFail
			ch.Message += fmt.Sprintf("; declared %s (%s) only", x.Direction, x.String())
			rb.j.use(x, true)
		}
		if ch.Status == StatusFail {
			nFail++
		}
		partChecks = append(partChecks, ch)
	}
	pd.Base, pd.Candidate = pd.Both+len(pd.OnlyBase), pd.Both+len(pd.OnlyCandidate)
	rb.r.Partitions = pd
	psum := Check{Section: SectionPartitions, Name: MetricPartitions, Dimension: DimEventDate, Status: StatusPass,
		Base: float64(pd.Base), Candidate: float64(pd.Candidate), RelDiff: relDiff(float64(pd.Base), float64(pd.Candidate), float64(pd.Base)),
		Message: fmt.Sprintf("%d on both sides, %d only on base, %d only on the candidate", pd.Both, len(pd.OnlyBase), len(pd.OnlyCandidate))}
	if nFail > 0 {
		psum.Status = StatusFail
	} else if nExp > 0 {
		psum.Status = StatusExpected
	}
	rb.r.Checks = append(append(rb.r.Checks, psum), partChecks...)
}

// sideStats describes what each side holds.
func (rb *reportBuilder) sideStats() {
	pd := rb.r.Partitions
	rb.r.BaseStats = SideStats{Ref: rb.sides[0].ref, SnapshotID: rb.sides[0].snap, Files: len(rb.sides[0].tasks), Rows: rb.b.rows,
		Partitions: pd.Base, Customers: len(rb.ltv[0]), Columns: rb.sides[0].columns}
	rb.r.CandidateStats = SideStats{Ref: rb.sides[1].ref, SnapshotID: rb.sides[1].snap, Files: len(rb.sides[1].tasks), Rows: rb.c.rows,
		Partitions: pd.Candidate, Customers: len(rb.ltv[1]), Columns: rb.sides[1].columns}
}

// metrics judges the additive metrics by dimension, from the groups of
// both sides.
func (rb *reportBuilder) metrics() {
	for _, dim := range groupDimensions {
		grp := dimensionGroups(dim, rb.b, rb.c, present)
		names := sortedKeys(grp)
		baseOf := func(metric, g string) int64 {
			if s := grp[g]; s != nil {
				return s[0][slices.Index(additiveMetrics, metric)]
			}
			return 0
		}
		for mi, m := range additiveMetrics {
			t := MetricTable{Metric: m, Dimension: dim, Groups: make([]GroupDiff, len(names))}
			for gi, g := range names {
				t.Groups[gi] = GroupDiff{Group: g, Base: grp[g][0][mi], Candidate: grp[g][1][mi]}
			}
			rb.r.Checks = append(rb.r.Checks, rb.j.judgeTable(&t, baseOf)...)
			rb.r.Metrics = append(rb.r.Metrics, t)
		}
	}
}

// columns judges null rates, and new and dropped columns.
func (rb *reportBuilder) columns() {
	cols := slices.Clone(rb.sides[0].columns)
	for _, col := range rb.sides[1].columns {
		if !slices.Contains(cols, col) {
			cols = append(cols, col)
		}
	}
	var colChecks []Check
	for _, col := range cols {
		cn := ColumnNulls{Column: col, InBase: slices.Contains(rb.sides[0].columns, col), InCandidate: slices.Contains(rb.sides[1].columns, col)}
		rate := func(in bool, nulls, rows int64) float64 {
			switch {
			case !in:
				return 1
			case rows == 0:
				return 0
			}
			return float64(nulls) / float64(rows)
		}
		if cn.InBase {
			cn.BaseNulls = rb.b.nulls[col]
		} else {
			cn.BaseNulls = rb.b.rows
		}
		if cn.InCandidate {
			cn.CandidateNulls = rb.c.nulls[col]
		} else {
			cn.CandidateNulls = rb.c.rows
		}
		cn.BaseRate, cn.CandidateRate = rate(cn.InBase, cn.BaseNulls, rb.b.rows), rate(cn.InCandidate, cn.CandidateNulls, rb.c.rows)
		allNullB := !cn.InBase || (rb.b.rows > 0 && cn.BaseNulls == rb.b.rows)
		allNullC := !cn.InCandidate || (rb.c.rows > 0 && cn.CandidateNulls == rb.c.rows)
		change := cn.CandidateRate - cn.BaseRate
		switch {
		case allNullB && allNullC:
			cn.Class = ColumnNullBoth
			colChecks = append(colChecks, Check{Section: SectionNullRates, Name: MetricNullRate, Dimension: DimColumn, Group: col,
				Status: StatusPass, Base: cn.BaseRate, Candidate: cn.CandidateRate, RelDiff: change, Message: "null on both sides"})
		case allNullB || allNullC:
			dir := Up
			cn.Class = ColumnNew
			what := fmt.Sprintf("new column: %s on base, %s null on the candidate", absentOrNull(cn.InBase), fmtShare(cn.CandidateRate))
			if allNullC {
				cn.Class, dir = ColumnDropped, Down
				what = fmt.Sprintf("dropped column: %s null on base, %s on the candidate", fmtShare(cn.BaseRate), absentOrNull(cn.InCandidate))
			}
			if i := slices.Index(valueColumns, col); i >= 0 {
				rb.ignored |= 1 << i
			}
			ch := Check{Section: SectionColumns, Name: MetricColumns, Dimension: DimColumn, Group: col,
				Base: cn.BaseRate, Candidate: cn.CandidateRate, RelDiff: change}
			x := rb.exp.find(MetricColumns, DimColumn, col)
			switch {
			case x == nil:
				ch.Status, ch.Message = StatusFail, what+"; undeclared"
			case x.Direction == Any || x.Direction == dir:
				ch.Status, ch.Message, ch.Reason = StatusExpected, what+"; as declared", x.Reason
				rb.j.use(x, true)
			default:
				ch.Status, ch.Message = StatusFail, fmt.Sprintf("%s; declared %s only (%s)", what, x.Direction, x.String())
				rb.j.use(x, true)
			}
			colChecks = append(colChecks, ch)
		default:
			cn.Class = ColumnCommon
			colChecks = append(colChecks, rb.j.judgeScalar(SectionNullRates, MetricNullRate, DimColumn, col, cn.BaseRate, cn.CandidateRate, change))
		}
		rb.r.Columns = append(rb.r.Columns, cn)
	}
	// Null rates first, then the new and dropped columns.
	for _, sec := range []string{SectionNullRates, SectionColumns} {
		for _, ch := range colChecks {
			if ch.Section == sec {
				rb.r.Checks = append(rb.r.Checks, ch)
			}
		}
	}
}

// lifetimeValue compares the distributions of customer lifetime value.
func (rb *reportBuilder) lifetimeValue() {
	rb.r.LTV = LTVReport{Base: describe(rb.ltv[0]), Candidate: describe(rb.ltv[1]), OnlyBase: rb.onlyCust[0], OnlyCandidate: rb.onlyCust[1]}
	rb.r.LTV.KSD, rb.r.LTV.KSPValue = KS(rb.ltv[0], rb.ltv[1])
	for _, q := range []struct {
		metric string
		b, c   int64
	}{{MetricLTVP50, rb.r.LTV.Base.P50, rb.r.LTV.Candidate.P50}, {MetricLTVP90, rb.r.LTV.Base.P90, rb.r.LTV.Candidate.P90}, {MetricLTVP99, rb.r.LTV.Base.P99, rb.r.LTV.Candidate.P99}} {
		bq, cq := float64(q.b), float64(q.c)
		rb.r.Checks = append(rb.r.Checks, rb.j.judgeScalar(SectionLTV, q.metric, DimCustomer, "", bq, cq, relDiff(bq, cq, bq)))
	}
	ks := rb.j.judgeScalar(SectionLTV, MetricLTVKS, DimCustomer, "", 0, rb.r.LTV.KSD, rb.r.LTV.KSD)
	ks.Message = fmt.Sprintf("KS D = %.4f (p ≈ %.3g, %d vs %d customers); %s", rb.r.LTV.KSD, rb.r.LTV.KSPValue, len(rb.ltv[0]), len(rb.ltv[1]), ks.Message)
	rb.r.Checks = append(rb.r.Checks, ks)
}

// invariants checks the candidate's invariants.
func (rb *reportBuilder) invariants() {
	for i := range rb.b.violations {
		inv := InvariantResult{Base: rb.b.violations[i], Candidate: rb.c.violations[i], Examples: []string{}}
		var what string
		switch i {
		case 0:
			inv.Name, what = InvariantUniqueKey, "duplicated rows: their (event_date, customer_id, channel) key occurs earlier"
		case 1:
			inv.Name, what = InvariantNetEquation, "row(s) with net_revenue_cents ≠ gross_revenue_cents − refund_cents"
		default:
			inv.Name, inv.Column = InvariantNonNegative, nonNegativeColumns[i-2]
			what = "row(s) with negative " + inv.Column
		}
		for _, e := range rb.c.examples[i].entries {
			inv.Examples = append(inv.Examples, e.key.String()+": "+e.note)
		}
		ch := Check{Section: SectionInvariants, Name: inv.Name, Group: inv.Column, Status: StatusPass,
			Base: float64(inv.Base), Candidate: float64(inv.Candidate), Message: "no violations"}
		if inv.Candidate > 0 {
			ch.Status = StatusFail
			ch.Message = fmt.Sprintf("%s: %d", what, inv.Candidate)
			if len(inv.Examples) > 0 {
				ch.Message += ", e.g. " + inv.Examples[0]
			}
		}
		rb.r.Invariants = append(rb.r.Invariants, inv)
		rb.r.Checks = append(rb.r.Checks, ch)
	}
}

// keys counts the keys on both sides and those whose values differ.
func (rb *reportBuilder) keys() {
	rb.r.Keys = KeyDiff{Common: rb.acc.common, OnlyBase: rb.acc.only[0], OnlyCandidate: rb.acc.only[1], DifferingByColumn: map[string]int64{}, IgnoredColumns: []string{}}
	for i, col := range valueColumns {
		if rb.ignored&(1<<i) != 0 {
			rb.r.Keys.IgnoredColumns = append(rb.r.Keys.IgnoredColumns, col)
		}
	}
	for m, n := range rb.acc.masks {
		if m&^rb.ignored != 0 {
			rb.r.Keys.Differing += n
		}
		for i, col := range valueColumns {
			if m&(1<<i) != 0 {
				rb.r.Keys.DifferingByColumn[col] += n
			}
		}
	}
}

// sample picks the differing keys shown old beside new.
func (rb *reportBuilder) sample(sample int) {
	// The sample prefers keys on both sides (old beside new), smallest key
	// hash first, and fills up with keys present on one side only.
	picked, onesided := newTopN(sample), newTopN(sample)
	for m, t := range rb.acc.samples {
		switch {
		case m&(maskOnlyBase|maskOnlyCand) != 0:
			onesided.merge(t)
		case m&^rb.ignored != 0:
			picked.merge(t)
		}
	}
	entries := picked.entries
	for _, e := range onesided.entries {
		if len(entries) < sample {
			entries = append(entries, e)
		}
	}
	rb.r.Sample = []SampleRow{}
	for _, e := range entries {
		s := SampleRow{EventDate: features.Date(e.key.date).String(), CustomerID: e.key.customer, Channel: e.key.channel,
			Base: e.base, Candidate: e.cand}
		switch {
		case e.base == nil:
			s.Differs = []string{"only on the candidate"}
		case e.cand == nil:
			s.Differs = []string{"only on base"}
		default:
			m := e.mask &^ rb.ignored
			for i, col := range valueColumns {
				if m&(1<<i) != 0 {
					s.Differs = append(s.Differs, col)
				}
			}
		}
		rb.r.Sample = append(rb.r.Sample, s)
	}
}

// declarations reports how often each declared difference matched.
func (rb *reportBuilder) declarations() {
	rb.r.Declarations = []DeclarationUse{}
	if rb.exp != nil {
		for i := range rb.exp.Differences {
			x := &rb.exp.Differences[i]
			rb.r.Declarations = append(rb.r.Declarations, DeclarationUse{Declaration: x.String(), Reason: x.Reason, Line: x.line, Matched: rb.j.uses[x]})
		}
	}
}

// verdict counts the checks by status.
func (rb *reportBuilder) verdict() {
	rb.r.Counts = map[string]int{StatusPass: 0, StatusExpected: 0, StatusFail: 0}
	for _, ch := range rb.r.Checks {
		rb.r.Counts[ch.Status]++
	}
	rb.r.Pass = rb.r.Counts[StatusFail] == 0
}

// dimensionGroups returns, per group of the dimension, the sums of each
// side. event_date keeps only partitions present on both sides (one-sided
// ones are the partitions check's); month and overall include every row.
func dimensionGroups(dim string, b, c *sideAcc, present func(*sideAcc, int32) bool) map[string]*[2]sums {
	out := map[string]*[2]sums{}
	add := func(g string, side int, s *sums) {
		x := out[g]
		if x == nil {
			x = &[2]sums{}
			out[g] = x
		}
		x[side].addAll(s)
	}
	if dim == DimOverall {
		out[OverallGroup] = &[2]sums{} // present even when empty
	}
	for side, acc := range [2]*sideAcc{b, c} {
		switch dim {
		case DimOverall:
			for _, s := range acc.byDate {
				add(OverallGroup, side, s)
			}
		case DimEventDate:
			for d, s := range acc.byDate {
				if present(b, d) && present(c, d) {
					add(features.Date(d).String(), side, s)
				}
			}
		case DimMonth:
			for d, s := range acc.byDate {
				add(features.Date(d).String()[:7], side, s)
			}
		case DimCountry:
			for g, s := range acc.byCountry {
				add(g, side, s)
			}
		case DimChannel:
			for g, s := range acc.byChannel {
				add(g, side, s)
			}
		}
	}
	return out
}

func absentOrNull(in bool) string {
	if in {
		return "all null"
	}
	return "absent"
}
