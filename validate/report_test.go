package validate

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCheckJSON(t *testing.T) {
	for _, rel := range []float64{0, 0.025, -1, math.Inf(1), math.Inf(-1)} {
		c := Check{Section: SectionMetrics, Name: MetricRefund, Dimension: DimOverall, Group: OverallGroup, Status: StatusFail,
			Base: 0, Candidate: 12, RelDiff: rel, Message: "m"}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("%v: %v", rel, err)
		}
		if math.IsInf(rel, 0) && !strings.Contains(string(b), `"rel_diff":null`) {
			t.Errorf("infinite diff written as %s", b)
		}
		var back Check
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back != c {
			t.Errorf("round trip: %+v, want %+v", back, c)
		}
		g := GroupDiff{Group: "x", Base: 0, Candidate: 3, RelDiff: rel, Status: StatusPass}
		b, _ = json.Marshal(g)
		var gb GroupDiff
		if err := json.Unmarshal(b, &gb); err != nil || gb != g {
			t.Errorf("group round trip: %+v (%v), want %+v", gb, err, g)
		}
	}
}

func TestWriters(t *testing.T) {
	r := &Report{Base: "main", Candidate: "clv-fix", Counts: map[string]int{StatusFail: 1},
		Checks: []Check{
			{Section: SectionMetrics, Name: MetricRefund, Dimension: DimOverall, Group: OverallGroup, Status: StatusFail, Candidate: 5, RelDiff: math.Inf(1), Message: "base is 0"},
			{Section: SectionInvariants, Name: InvariantUniqueKey, Status: StatusFail, Candidate: 2, Message: "duplicated"},
		},
		Metrics: []MetricTable{{Metric: MetricRefund, Dimension: DimOverall, Status: StatusFail,
			Groups: []GroupDiff{{Group: OverallGroup, Candidate: 5, RelDiff: math.Inf(1), Status: StatusFail}}}},
	}
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RESULT: FAIL", "FAILED CHECKS", "refund_cents by overall = all", "unique_key", "INVARIANTS", "+inf"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || !math.IsInf(back.Checks[0].RelDiff, 1) {
		t.Fatalf("JSON: %v %+v", err, back.Checks)
	}
	if err := r.WriteText(failingWriter{}); err == nil {
		t.Error("a write error was swallowed")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
