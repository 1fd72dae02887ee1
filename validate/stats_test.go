package validate

import (
	"math"
	"testing"
)

func TestQuantile(t *testing.T) {
	v := []int64{10, 20, 30, 40, 50, 60, 70, 80, 90, 100}
	for _, tc := range []struct {
		name string
		v    []int64
		p    float64
		want int64
	}{
		{"empty", nil, 0.5, 0},
		{"one value", []int64{7}, 0.99, 7},
		{"p50 of 10 is the 5th", v, 0.5, 50},
		{"p90 of 10 is the 9th", v, 0.9, 90},
		{"p99 of 10 is the 10th", v, 0.99, 100},
		{"p0 is the minimum", v, 0, 10},
		{"p100 is the maximum", v, 1, 100},
		{"p50 of 3 is the 2nd", []int64{-5, 1, 9}, 0.5, 1},
		{"ties", []int64{1, 1, 1, 2}, 0.75, 1},
	} {
		if got := Quantile(tc.v, tc.p); got != tc.want {
			t.Errorf("%s: Quantile(%v) = %d, want %d", tc.name, tc.p, got, tc.want)
		}
	}
}

func TestKS(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b []int64
		d    float64
	}{
		{"identical", []int64{1, 2, 3}, []int64{1, 2, 3}, 0},
		{"disjoint", []int64{1, 2, 3}, []int64{4, 5}, 1},
		// F_a(5) = 1, F_b(5) = 3/6.
		{"overlap", []int64{1, 2, 3, 4, 5}, []int64{3, 4, 5, 6, 7, 8}, 0.5},
		// Ties across the samples are evaluated after the tied value:
		// F_a(1) = 1/2, F_b(1) = 1/2, then F_a(2) = 1, F_b(2) = 1/2.
		{"ties across samples", []int64{1, 2}, []int64{1, 3}, 0.5},
		{"one value differs", []int64{1, 2, 3, 4}, []int64{1, 2, 3, 5}, 0.25},
		{"empty against values", nil, []int64{1}, 1},
		{"both empty", nil, nil, 0},
	} {
		d, p := KS(tc.a, tc.b)
		if math.Abs(d-tc.d) > 1e-12 {
			t.Errorf("%s: D = %v, want %v", tc.name, d, tc.d)
		}
		if p < 0 || p > 1 {
			t.Errorf("%s: p = %v", tc.name, p)
		}
		if tc.d == 0 && p != 1 {
			t.Errorf("%s: p = %v for identical samples, want 1", tc.name, p)
		}
	}
}

// The Kolmogorov distribution's textbook critical values: Q(1.358) ≈ 0.05,
// Q(1.628) ≈ 0.01, Q(1.224) ≈ 0.10.
func TestKolmogorovQ(t *testing.T) {
	for _, tc := range []struct{ lambda, want float64 }{
		{1.3581, 0.05}, {1.6276, 0.01}, {1.2239, 0.10}, {0.1, 1}, {3, 3.046e-8},
	} {
		if got := kolmogorovQ(tc.lambda); math.Abs(got-tc.want) > 1e-3*math.Max(tc.want, 1e-5) {
			t.Errorf("Q(%v) = %v, want %v", tc.lambda, got, tc.want)
		}
	}
	// Large samples, same D: the p-value falls with n.
	big := make([]int64, 2000)
	shifted := make([]int64, 2000)
	for i := range big {
		big[i], shifted[i] = int64(i), int64(i+100)
	}
	_, pBig := KS(big, shifted)
	_, pSmall := KS(big[:200:200], []int64{10, 30, 50, 70, 90, 110, 130, 150, 170, 190, 210, 230, 250, 270, 290})
	if pBig > 0.05 || pSmall < pBig {
		t.Errorf("p-values %v (n=2000, D=0.05) and %v", pBig, pSmall)
	}
}

func TestRelDiff(t *testing.T) {
	for _, tc := range []struct{ base, cand, den, want float64 }{
		{100, 102, 100, 0.02},
		{100, 98, 100, -0.02},
		{-100, -50, -100, 0.5}, // relative to |base|
		{0, 0, 0, 0},
		{0, 5, 0, math.Inf(1)},
		{0, -5, 0, math.Inf(-1)},
		{0, 25, 100, 0.25}, // relative to another base (relative_to)
	} {
		if got := relDiff(tc.base, tc.cand, tc.den); got != tc.want && math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("relDiff(%v, %v, %v) = %v, want %v", tc.base, tc.cand, tc.den, got, tc.want)
		}
	}
}

func TestParseCustomer(t *testing.T) {
	for _, s := range []string{"0219d6c8-68b7-512e-afd3-6a104eef9436", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"} {
		k, ok := parseCustomer(s)
		if !ok || k.odd || k.uuid() != s {
			t.Errorf("%s: ok %v, back %s", s, ok, k.uuid())
		}
	}
	for _, s := range []string{"0219D6C8-68b7-512e-afd3-6a104eef9436", "0219d6c8-68b7-512e-afd3-6a104eef943", "0219d6c8x68b7-512e-afd3-6a104eef9436", "0219d6c8-68b7-512e-afd3-6a104eef943g", ""} {
		if _, ok := parseCustomer(s); ok {
			t.Errorf("%q parsed as a canonical UUID", s)
		}
	}
	// Other ids get a stable key and keep their text.
	a := newAccumulator(1)
	k1, k2 := a.customer("user-42"), a.customer("USER-42")
	if !k1.odd || k1 == k2 || a.customer("user-42") != k1 || a.customerText(k1) != "user-42" || a.customerText(k2) != "USER-42" {
		t.Errorf("odd ids: %v %v %q %q", k1, k2, a.customerText(k1), a.customerText(k2))
	}
}
