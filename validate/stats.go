package validate

import (
	"math"
)

// Quantile is the nearest-rank quantile of sorted values: the smallest value
// v such that at least a share p of the values are <= v, i.e.
// sorted[ceil(p·n)−1]. It is always one of the values (no interpolation),
// so it is exact on integers. Zero values give 0.
func Quantile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	k := int(math.Ceil(p*float64(n))) - 1
	return sorted[min(max(k, 0), n-1)]
}

// KS is the two-sample Kolmogorov–Smirnov statistic D = sup_x |F_a(x) −
// F_b(x)| of two sorted samples (ties handled: both empirical distribution
// functions are evaluated after every distinct value) and its approximate
// p-value. The p-value is the asymptotic Kolmogorov distribution with
// Stephens' small-sample correction, λ = (√nₑ + 0.12 + 0.11/√nₑ)·D with
// nₑ = n·m/(n+m) (Numerical Recipes' kstwo/probks); it is an approximation,
// conservative with many ties. Two empty samples give D 0, p 1; one empty
// sample gives D 1, p 0.
func KS(a, b []int64) (d, p float64) {
	n, m := len(a), len(b)
	switch {
	case n == 0 && m == 0:
		return 0, 1
	case n == 0 || m == 0:
		return 1, 0
	}
	i, j := 0, 0
	for i < n && j < m {
		x := min(a[i], b[j])
		for i < n && a[i] == x {
			i++
		}
		for j < m && b[j] == x {
			j++
		}
		if diff := math.Abs(float64(i)/float64(n) - float64(j)/float64(m)); diff > d {
			d = diff
		}
	}
	ne := float64(n) * float64(m) / float64(n+m)
	sq := math.Sqrt(ne)
	return d, kolmogorovQ((sq + 0.12 + 0.11/sq) * d)
}

// kolmogorovQ is Q_KS(λ) = 2 Σ_{k≥1} (−1)^{k−1} e^{−2k²λ²}, the probability
// that the Kolmogorov statistic exceeds λ.
func kolmogorovQ(lambda float64) float64 {
	if lambda < 0.2 {
		return 1 // the series converges badly there; the value is 1 to 1e-8
	}
	const eps1, eps2 = 1e-6, 1e-16
	a2 := -2 * lambda * lambda
	sum, sign, prev := 0.0, 2.0, 0.0
	for k := 1; k <= 100; k++ {
		term := sign * math.Exp(a2*float64(k*k))
		sum += term
		if math.Abs(term) <= eps1*prev || math.Abs(term) <= eps2*sum {
			return min(max(sum, 0), 1)
		}
		sign = -sign
		prev = math.Abs(term)
	}
	return 1 // did not converge: λ is tiny
}

// Distribution summarises one side's per-customer lifetime values.
type Distribution struct {
	Customers int     `json:"customers"`
	Sum       int64   `json:"sum"`
	Mean      float64 `json:"mean"`
	Min       int64   `json:"min"`
	P50       int64   `json:"p50"`
	P90       int64   `json:"p90"`
	P99       int64   `json:"p99"`
	Max       int64   `json:"max"`
}

// describe summarises sorted values.
func describe(sorted []int64) Distribution {
	d := Distribution{Customers: len(sorted)}
	if len(sorted) == 0 {
		return d
	}
	for _, v := range sorted {
		d.Sum += v
	}
	d.Mean = float64(d.Sum) / float64(len(sorted))
	d.Min, d.Max = sorted[0], sorted[len(sorted)-1]
	d.P50, d.P90, d.P99 = Quantile(sorted, 0.50), Quantile(sorted, 0.90), Quantile(sorted, 0.99)
	return d
}

// relDiff is (cand − base)/|den|: 0 when equal, ±Inf when den is 0 and the
// values differ.
func relDiff(base, cand, den float64) float64 {
	if cand == base {
		return 0
	}
	if den == 0 {
		return math.Copysign(math.Inf(1), cand-base)
	}
	return (cand - base) / math.Abs(den)
}
