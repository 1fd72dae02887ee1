package validate

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

func bound(x float64) *float64 { return &x }

func TestJudge(t *testing.T) {
	down := &Expectation{Metric: MetricOrders, Direction: Down, Bound: bound(0.10), Reason: "dups"}
	up := &Expectation{Metric: MetricRows, Direction: Up, Bound: bound(0.80), Reason: "refund rows"}
	anyDir := &Expectation{Metric: MetricOrders, Direction: Any, Bound: bound(1), Reason: "mix"}
	inf := &Expectation{Metric: MetricRefund, Direction: Up, Bound: bound(math.Inf(1)), Reason: "new"}
	for _, tc := range []struct {
		name            string
		base, cand, den float64
		x               *Expectation
		status          string
		msg             string
	}{
		{"equal", 100, 100, 100, nil, StatusPass, ""},
		{"within tolerance, undeclared", 1000, 1004, 1000, nil, StatusPass, ""},
		{"at the tolerance is outside", 1000, 1005, 1000, nil, StatusFail, "undeclared difference +0.50%"},
		{"within tolerance, declared", 1000, 1004, 1000, down, StatusPass, ""},
		{"undeclared", 100, 102, 100, nil, StatusFail, "undeclared difference +2.00%"},
		{"declared down, went down", 100, 95, 100, down, StatusExpected, "as declared"},
		{"declared down, went up", 100, 102, 100, down, StatusFail, "declared down but"},
		{"declared down, beyond bound", 100, 85, 100, down, StatusFail, "outside the declared bound"},
		{"bound is inclusive", 100, 90, 100, down, StatusExpected, "as declared"},
		{"declared up", 100, 160, 100, up, StatusExpected, "as declared"},
		{"declared up, went down", 100, 90, 100, up, StatusFail, "declared up but"},
		{"declared any", 100, 10, 100, anyDir, StatusExpected, "as declared"},
		{"base 0, undeclared", 0, 5, 0, nil, StatusFail, "base is 0"},
		{"base 0, bound .inf", 0, 5, 0, inf, StatusExpected, "as declared"},
		{"base 0, relative_to", 0, 25, 100, &Expectation{Metric: MetricRefund, Direction: Up, Bound: bound(0.3), RelativeTo: MetricGross, Reason: "refunds"}, StatusExpected, "as declared"},
		{"relative_to beyond bound", 0, 40, 100, &Expectation{Metric: MetricRefund, Direction: Up, Bound: bound(0.3), RelativeTo: MetricGross, Reason: "refunds"}, StatusFail, "relative to base gross_revenue_cents"},
	} {
		v := judge(tc.base, tc.cand, tc.den, DefaultTolerance, tc.x)
		if v.status != tc.status || !strings.Contains(v.msg, tc.msg) {
			t.Errorf("%s: %s %q; want %s %q", tc.name, v.status, v.msg, tc.status, tc.msg)
		}
	}
}

// metricTable builds a metric table of n groups, the first k off by rel.
func metricTable(n, k int, rel float64) *MetricTable {
	t := &MetricTable{Metric: MetricGross, Dimension: DimEventDate}
	for i := 0; i < n; i++ {
		g := GroupDiff{Group: fmt.Sprintf("g%02d", i), Base: 10000, Candidate: 10000}
		if i < k {
			g.Candidate = int64(math.Round(10000 * (1 + rel)))
		}
		t.Groups = append(t.Groups, g)
	}
	return t
}

func TestGroupRule(t *testing.T) {
	relaxed, _ := ParseExpected([]byte("rules: [{metric: gross_revenue_cents, dimension: event_date, group_share: 0.8}]"))
	declared, _ := ParseExpected([]byte(`[{metric: gross_revenue_cents, direction: down, bound: 0.1, reason: dups}]`))
	for _, tc := range []struct {
		name       string
		n, k       int
		rel        float64
		exp        *Expected
		status     string
		groupFails int
	}{
		{"all within", 20, 0, 0, nil, StatusPass, 0},
		{"1 of 20 outside: 95% within", 20, 1, 0.02, nil, StatusPass, 0},
		{"2 of 20 outside: 90% within", 20, 2, 0.02, nil, StatusFail, 2},
		{"1 of 10 outside", 10, 1, 0.02, nil, StatusFail, 1},
		{"1 of 10 outside, rule relaxed to 80%", 10, 1, 0.02, relaxed, StatusPass, 0},
		{"3 of 10 outside, rule relaxed to 80%", 10, 3, 0.02, relaxed, StatusFail, 3},
		{"declared, all as declared", 10, 10, -0.05, declared, StatusExpected, 0},
		{"declared, one violates its direction", 20, 1, 0.02, declared, StatusFail, 1},
		{"one group, within", 1, 0, 0, nil, StatusPass, 0},
		{"one group, outside", 1, 1, 0.01, nil, StatusFail, 0},
	} {
		j := &judger{exp: tc.exp, uses: map[*Expectation]int{}}
		tab := metricTable(tc.n, tc.k, tc.rel)
		checks := j.judgeTable(tab, func(string, string) int64 { return 0 })
		if checks[0].Status != tc.status || tab.Status != tc.status || len(checks)-1 != tc.groupFails {
			t.Errorf("%s: %s with %d group failures (%s); want %s with %d", tc.name, checks[0].Status, len(checks)-1, checks[0].Message, tc.status, tc.groupFails)
		}
		for _, c := range checks[1:] {
			if c.Status != StatusFail || c.Group == "" || c.Message == "" {
				t.Errorf("%s: group check %+v", tc.name, c)
			}
		}
		if tc.name == "1 of 20 outside: 95% within" && !strings.Contains(tab.Groups[0].Note, "tolerated") {
			t.Errorf("the tolerated group is not marked: %+v", tab.Groups[0])
		}
		if tc.exp == declared && j.uses[&declared.Differences[0]] == 0 {
			t.Errorf("%s: the declaration's use is not counted", tc.name)
		}
	}
}
