package validate

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseExpected(t *testing.T) {
	ok := `
expected:
  - {metric: orders, dimension: "*", direction: down, bound: 0.1, reason: dups}
  - {metric: orders, dimension: channel, direction: any, bound: 1, reason: attribution}
  - {metric: orders, dimension: channel, groups: [direct], direction: down, bound: 1, reason: direct loses}
  - {metric: refund_cents, direction: up, relative_to: gross_revenue_cents, bound: .inf, reason: refunds}
  - {metric: columns, direction: up, groups: [touches_7d], reason: feature}
  - {metric: partitions, direction: down, reason: withdrawn}
rules:
  - {metric: "*", dimension: country, group_share: 0.9}
  - {metric: orders, tolerance: 0.01}
  - {metric: orders, dimension: country, tolerance: 0.02}
`
	e, err := ParseExpected([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Differences) != 6 || len(e.Rules) != 3 {
		t.Fatalf("parsed %d entries, %d rules", len(e.Differences), len(e.Rules))
	}
	if e.Differences[3].Bound == nil || !math.IsInf(*e.Differences[3].Bound, 1) {
		t.Errorf(".inf bound read as %v", e.Differences[3].Bound)
	}
	if e.Differences[4].Dimension != DimColumn || e.Differences[5].Dimension != DimEventDate {
		t.Errorf("single-dimension metrics take their dimension: %q %q", e.Differences[4].Dimension, e.Differences[5].Dimension)
	}
	if e.Differences[0].Line() != 3 {
		t.Errorf("line %d, want 3", e.Differences[0].Line())
	}

	// The most specific declaration wins.
	for _, tc := range []struct {
		metric, dim, group string
		want               string // reason, "" for none
	}{
		{MetricOrders, DimEventDate, "2024-01-01", "dups"},
		{MetricOrders, DimChannel, "email", "attribution"},
		{MetricOrders, DimChannel, "direct", "direct loses"},
		{MetricGross, DimChannel, "email", ""},
		{MetricColumns, DimColumn, "touches_7d", "feature"},
		{MetricColumns, DimColumn, "other", ""},
		{MetricPartitions, DimEventDate, "2024-01-05", "withdrawn"},
	} {
		got := ""
		if x := e.find(tc.metric, tc.dim, tc.group); x != nil {
			got = x.Reason
		}
		if got != tc.want {
			t.Errorf("find(%s, %s, %s) = %q, want %q", tc.metric, tc.dim, tc.group, got, tc.want)
		}
	}
	for _, tc := range []struct {
		metric, dim string
		share, tol  float64
	}{
		{MetricGross, DimChannel, DefaultGroupShare, DefaultTolerance},
		{MetricGross, DimCountry, 0.9, DefaultTolerance},
		{MetricOrders, DimChannel, DefaultGroupShare, 0.01},
		{MetricOrders, DimCountry, 0.9, 0.02},
	} {
		share, tol := e.rule(tc.metric, tc.dim)
		if share != tc.share || tol != tc.tol {
			t.Errorf("rule(%s, %s) = %v, %v; want %v, %v", tc.metric, tc.dim, share, tol, tc.share, tc.tol)
		}
	}
	var none *Expected
	if none.find(MetricOrders, DimOverall, OverallGroup) != nil {
		t.Error("a nil Expected declares something")
	}
	if s, tol := none.rule(MetricOrders, DimOverall); s != DefaultGroupShare || tol != DefaultTolerance {
		t.Error("a nil Expected changes the rule")
	}
}

func TestParseExpectedErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown metric", `[{metric: revenue, direction: up, bound: 1, reason: r}]`, "unknown metric"},
		{"invariant", `[{metric: unique_key, direction: up, bound: 1, reason: r}]`, "cannot be declared"},
		{"no reason", `[{metric: orders, direction: up, bound: 1}]`, "reason is required"},
		{"no bound", `[{metric: orders, direction: up, reason: r}]`, "bound is required"},
		{"negative bound", `[{metric: orders, direction: up, bound: -1, reason: r}]`, "want a number >= 0"},
		{"bound on partitions", `[{metric: partitions, direction: up, bound: 1, reason: r}]`, "does not apply"},
		{"bad direction", `[{metric: orders, direction: sideways, bound: 1, reason: r}]`, "want up, down or any"},
		{"no direction", `[{metric: orders, bound: 1, reason: r}]`, "direction is required"},
		{"bad dimension", `[{metric: orders, dimension: city, direction: up, bound: 1, reason: r}]`, "no dimension"},
		{"groups without dimension", `[{metric: orders, groups: [a], direction: up, bound: 1, reason: r}]`, "groups need a single dimension"},
		{"relative_to non additive", `[{metric: orders, relative_to: ltv_p50, direction: up, bound: 1, reason: r}]`, "relative_to"},
		{"unknown key", `[{metric: orders, direction: up, bound: 1, reason: r, bounds: 2}]`, `unknown key "bounds"`},
		{"unknown top-level key", "expected: []\nexpectations: []", `unknown key "expectations"`},
		{"rule without numbers", "rules: [{metric: orders}]", "group_share, tolerance or both"},
		{"rule share above 1", "rules: [{group_share: 1.5}]", "between 0 and 1"},
		{"rule on partitions", "rules: [{metric: partitions, tolerance: 0.1}]", "rules apply to"},
		{"not a mapping", "42", "want a mapping"},
		{"bad yaml", "expected: [", "yaml"},
	} {
		_, err := ParseExpected([]byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
	if e, err := ParseExpected([]byte("# nothing\n")); err != nil || len(e.Differences) != 0 {
		t.Errorf("an empty file: %v, %+v", err, e)
	}
}

func TestLoadExpected(t *testing.T) {
	// The shipped file parses, and every entry has a reason.
	e, err := LoadExpected(filepath.Join("..", "docs", "expected-clv-fix.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Differences) < 10 || e.Path == "" {
		t.Fatalf("%d entries", len(e.Differences))
	}
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte(`[{metric: orders, direction: up, reason: r}]`), 0o644)
	if _, err := LoadExpected(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("error %v does not name the file and line", err)
	}
	if _, err := LoadExpected(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("a missing file loaded")
	}
}
