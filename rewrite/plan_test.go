package rewrite

import (
	"testing"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/snapshots"
)

// Remaining counts the whole job's days not done in a state: any shard's,
// by logic and input fingerprint, and a day this process recomputes until
// its new checkpoint lands.
func TestPlanRemaining(t *testing.T) {
	d1, d2, d3, d4 := features.MustParseDate("2024-01-01"), features.MustParseDate("2024-01-02"), features.MustParseDate("2024-01-03"), features.MustParseDate("2024-01-04")
	const made = 1000
	p := &Plan{logic: "clv-corrected/1", made: made,
		job:  map[features.Date]string{d1: "f1", d2: "f2", d3: "f3", d4: "f4"},
		todo: map[features.Date]bool{d1: true, d2: true}}
	cp := func(fp string, at int64) snapshots.Checkpoint {
		return snapshots.Checkpoint{Logic: "clv-corrected/1", Fingerprint: fp, CommittedAt: at}
	}
	for _, tc := range []struct {
		name string
		done map[string]snapshots.Checkpoint
		want int
	}{
		{"nothing committed", nil, 4},
		{"another shard's day", map[string]snapshots.Checkpoint{"2024-01-03": cp("f3", 10)}, 3},
		{"another shard's day with another input", map[string]snapshots.Checkpoint{"2024-01-03": cp("old", 10)}, 4},
		{"another logic", map[string]snapshots.Checkpoint{"2024-01-04": {Logic: "clv-legacy/1", Fingerprint: "f4"}}, 4},
		{"own day, checkpoint from before the plan (forced)", map[string]snapshots.Checkpoint{"2024-01-01": cp("f1", made-1)}, 4},
		{"own day recommitted", map[string]snapshots.Checkpoint{"2024-01-01": cp("f1", made)}, 3},
		{"all", map[string]snapshots.Checkpoint{"2024-01-01": cp("f1", made), "2024-01-02": cp("f2", made+5), "2024-01-03": cp("f3", 1), "2024-01-04": cp("f4", 2)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := snapshots.NewState("b")
			for day, c := range tc.done {
				s.Checkpoints[day] = c
			}
			if got := p.Remaining(s); got != tc.want {
				t.Errorf("Remaining = %d, want %d", got, tc.want)
			}
		})
	}
}
