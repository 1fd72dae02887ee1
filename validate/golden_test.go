package validate_test

import (
	"bytes"
	"testing"

	"github.com/icefill/icefill/internal/golden"
	"github.com/icefill/icefill/validate"
)

// TestReportGolden pins the whole report of the fixture's corrected logic
// against its legacy logic, text and JSON, so that the report's builders
// and writers change only on purpose (go test -run TestReportGolden
// -update rewrites the files). Snapshot ids and timing vary between runs
// and are zeroed.
func TestReportGolden(t *testing.T) {
	cat := fixture(t)
	for name, exp := range map[string]*validate.Expected{"corrected-vs-legacy": loadExpected(t), "corrected-vs-legacy-undeclared": nil} {
		r := compare(t, cat, validate.Options{Base: "main", Candidate: "clv-fix", Expected: exp})
		r.BaseSnapshot, r.CandidateSnapshot, r.Seconds = 0, 0, 0
		r.BaseStats.SnapshotID, r.CandidateStats.SnapshotID = 0, 0
		if exp != nil {
			r.ExpectedFile = "expected-clv-fix.yaml"
		}
		var text, js bytes.Buffer
		if err := r.WriteText(&text); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, name+".txt", text.Bytes())
		golden.Check(t, name+".json", js.Bytes())
	}
}
