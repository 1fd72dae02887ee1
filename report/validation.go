package report

import (
	"math"
	"time"

	"github.com/icefill/icefill/validate"
)

// Validation is what a validation found, trimmed to what the page shows so
// that it fits in a table property: `icefill validate` stores it in the
// catalog (pass or fail) and the report reads it back. Unknown fields are
// ignored when reading, so newer writers stay readable.
type Validation struct {
	Pass              bool           `json:"pass"`
	Base              string         `json:"base"`
	Candidate         string         `json:"candidate"`
	BaseSnapshot      int64          `json:"base_snapshot"`
	CandidateSnapshot int64          `json:"candidate_snapshot"`
	From              string         `json:"from,omitempty"`
	To                string         `json:"to,omitempty"`
	ExpectedFile      string         `json:"expected_file,omitempty"`
	Counts            map[string]int `json:"counts"`
	At                int64          `json:"at"`
	By                string         `json:"by,omitempty"`
	Seconds           float64        `json:"seconds"`

	Partitions validate.PartitionDiff `json:"partitions"`
	Metrics    []Metric               `json:"metrics"`
	// Failed are the failing checks (the first MaxFailedChecks).
	Failed      []validate.Check           `json:"failed,omitempty"`
	FailedTotal int                        `json:"failed_total,omitempty"`
	Columns     []validate.ColumnNulls     `json:"columns,omitempty"`
	LTV         validate.LTVReport         `json:"ltv"`
	LTVChecks   []validate.Check           `json:"ltv_checks,omitempty"`
	Invariants  []validate.InvariantResult `json:"invariants,omitempty"`
	Keys        validate.KeyDiff           `json:"keys"`
	Sample      []validate.SampleRow       `json:"sample,omitempty"`
}

// Metric is one metric by one dimension, column-wise: Groups[i] differs by
// Rel[i] and has status Status[i] (p pass, t tolerated by the group rule,
// e as declared, f fail). Base and Cand are kept for tables of at most
// maxGroupValues groups. An infinite difference (base 0) is stored as
// ±math.MaxFloat64, which JSON can carry.
type Metric struct {
	Metric     string                   `json:"metric"`
	Dimension  string                   `json:"dimension"`
	Status     string                   `json:"status"`
	GroupShare float64                  `json:"group_share"`
	Tolerance  float64                  `json:"tolerance"`
	Declared   []validate.DeclaredBound `json:"declared,omitempty"`
	Groups     []string                 `json:"groups"`
	Rel        []float64                `json:"rel"`
	States     string                   `json:"states"`
	Base       []int64                  `json:"base,omitempty"`
	Cand       []int64                  `json:"cand,omitempty"`
}

// Caps that keep a summary of five years of partitions small.
const (
	MaxFailedChecks = 100
	maxGroupValues  = 400
	maxListed       = 50
)

// Summarize trims a validation report for storage and display.
func Summarize(r *validate.Report, at time.Time, by string) *Validation {
	v := &Validation{
		Pass: r.Pass, Base: r.Base, Candidate: r.Candidate, BaseSnapshot: r.BaseSnapshot, CandidateSnapshot: r.CandidateSnapshot,
		From: r.From, To: r.To, ExpectedFile: r.ExpectedFile, Counts: r.Counts, At: at.UnixMilli(), By: by, Seconds: r.Seconds,
		Partitions: r.Partitions, Columns: r.Columns, LTV: r.LTV, Invariants: r.Invariants, Keys: r.Keys, Sample: r.Sample,
	}
	v.Partitions.OnlyBase = capList(v.Partitions.OnlyBase)
	v.Partitions.OnlyCandidate = capList(v.Partitions.OnlyCandidate)
	for _, c := range r.Checks {
		if c.Section == validate.SectionLTV {
			v.LTVChecks = append(v.LTVChecks, c)
		}
		if c.Status != validate.StatusFail {
			continue
		}
		v.FailedTotal++
		if len(v.Failed) < MaxFailedChecks {
			v.Failed = append(v.Failed, c)
		}
	}
	for _, t := range r.Metrics {
		m := Metric{Metric: t.Metric, Dimension: t.Dimension, Status: t.Status, GroupShare: t.GroupShare, Tolerance: t.Tolerance, Declared: t.Declared}
		states := make([]byte, len(t.Groups))
		keep := len(t.Groups) <= maxGroupValues
		for i, g := range t.Groups {
			m.Groups = append(m.Groups, g.Group)
			m.Rel = append(m.Rel, storableRel(g.RelDiff))
			states[i] = groupState(g)
			if keep {
				m.Base = append(m.Base, g.Base)
				m.Cand = append(m.Cand, g.Candidate)
			}
		}
		m.States = string(states)
		v.Metrics = append(v.Metrics, m)
	}
	return v
}

func capList(l []string) []string {
	if len(l) > maxListed {
		return l[:maxListed]
	}
	return l
}

func groupState(g validate.GroupDiff) byte {
	switch {
	case g.Status == validate.StatusFail:
		return 'f'
	case g.Status == validate.StatusExpected:
		return 'e'
	case g.Note != "":
		return 't'
	}
	return 'p'
}

// storableRel rounds a relative difference to 5 decimals (0.001 %) and
// maps what JSON cannot carry to finite stand-ins.
func storableRel(x float64) float64 {
	switch {
	case math.IsNaN(x):
		return 0
	case math.IsInf(x, 1):
		return math.MaxFloat64
	case math.IsInf(x, -1):
		return -math.MaxFloat64
	}
	return math.Round(x*1e5) / 1e5
}

// isInfinite reads storableRel's stand-ins back.
func isInfinite(x float64) bool { return math.Abs(x) >= math.MaxFloat64/2 }
