package rewrite

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/snapshots"
)

// Status is a branch's progress, read from the catalog alone.
type Status struct {
	Table      string            `json:"table"`
	Branch     string            `json:"branch"`
	Exists     bool              `json:"exists"`
	HeadID     int64             `json:"head_snapshot_id,omitempty"`
	Plan       *snapshots.Plan   `json:"plan,omitempty"`
	Done       int               `json:"done"`
	Total      int               `json:"total"`
	Remaining  int               `json:"remaining"`
	Failed     []FailedPartition `json:"failed,omitempty"`
	Events     int64             `json:"events"`
	Bytes      int64             `json:"bytes"`
	OutputRows int64             `json:"output_rows"`
	LastCommit time.Time         `json:"last_commit,omitzero"`
	// Rates over the last hour of commits (or all of them if fewer).
	PartitionsPerHour float64       `json:"partitions_per_hour"`
	EventsPerSecond   float64       `json:"events_per_second"`
	ETA               time.Duration `json:"eta_ns,omitempty"`
	StaleLogic        int           `json:"other_logic_version,omitempty"`
	// Logics counts checkpoints per logic version when the branch holds
	// more than one: such a branch is never shown complete.
	Logics map[string]int `json:"logics,omitempty"`
	// SetAside says why the stored checkpoints do not count (LoadState).
	SetAside            string `json:"checkpoints_set_aside_because,omitempty"`
	SetAsideCheckpoints int    `json:"checkpoints_set_aside,omitempty"`
	// MissingAsEmpty are the source days runs counted as empty
	// (--allow-missing).
	MissingAsEmpty []string `json:"missing_as_empty,omitempty"`
}

// FailedPartition is a partition whose last attempt failed.
type FailedPartition struct {
	Day   string    `json:"day"`
	Error string    `json:"error"`
	RunID string    `json:"run_id"`
	At    time.Time `json:"at"`
}

// BranchStatus computes the status of branch from the loaded table.
func BranchStatus(tbl *table.Table, branch string) (*Status, error) {
	st := &Status{Table: strings.Join(tbl.Identifier(), "."), Branch: branch}
	if head := tbl.SnapshotByName(branch); head != nil {
		st.Exists, st.HeadID = true, head.SnapshotID
	}
	state, err := snapshots.LoadState(tbl, branch)
	if err != nil {
		return nil, err
	}
	if len(state.Checkpoints) > 0 {
		st.Exists = true
	}
	st.SetAside, st.SetAsideCheckpoints = state.SetAside, state.SetAsideCheckpoints
	st.MissingAsEmpty = state.MissingAsEmpty
	st.Plan = state.Plan
	inPlan := func(day string) bool {
		return st.Plan == nil || (day >= st.Plan.From && day <= st.Plan.To)
	}
	var times []int64
	logics := map[string]int{}
	outside := 0 // partitions of another logic outside the plan's range
	for day, cp := range state.Checkpoints {
		logics[cp.Logic]++
		if st.Plan != nil && cp.Logic != st.Plan.Logic {
			st.StaleLogic++
			if !inPlan(day) {
				outside++
			}
			continue
		}
		if !inPlan(day) {
			continue
		}
		st.Done++
		st.Events += cp.InputRows
		st.Bytes += cp.Bytes
		st.OutputRows += cp.OutputRows
		times = append(times, cp.CommittedAt)
	}
	for day, f := range state.Failures {
		if _, done := state.Checkpoints[day]; done {
			continue
		}
		st.Failed = append(st.Failed, FailedPartition{Day: day, Error: f.Error, RunID: f.RunID, At: time.UnixMilli(f.At).UTC()})
	}
	sort.Slice(st.Failed, func(i, j int) bool { return st.Failed[i].Day < st.Failed[j].Day })
	if len(logics) > 1 {
		st.Logics = logics
	}
	if st.Plan != nil {
		// A partition of another logic outside the plan is still part of
		// the branch: it keeps the branch from being complete.
		st.Total = st.Plan.Partitions + outside
	} else {
		st.Total = st.Done
	}
	st.Remaining = max(st.Total-st.Done, 0)
	if len(times) > 0 {
		slices.Sort(times)
		last := time.UnixMilli(times[len(times)-1])
		st.LastCommit = last.UTC()
		// Rate over the commits of the last hour before the latest one.
		var recent []int64
		for _, t := range times {
			if last.Sub(time.UnixMilli(t)) <= time.Hour {
				recent = append(recent, t)
			}
		}
		if len(recent) >= 2 {
			span := time.UnixMilli(recent[len(recent)-1]).Sub(time.UnixMilli(recent[0]))
			if span > 0 {
				st.PartitionsPerHour = float64(len(recent)-1) / span.Hours()
				var ev int64
				for day, cp := range state.Checkpoints {
					if inPlan(day) && last.Sub(time.UnixMilli(cp.CommittedAt)) <= time.Hour {
						ev += cp.InputRows
					}
				}
				st.EventsPerSecond = float64(ev) / span.Seconds()
				if st.PartitionsPerHour > 0 && st.Remaining > 0 {
					st.ETA = time.Duration(float64(st.Remaining) / st.PartitionsPerHour * float64(time.Hour))
				}
			}
		}
	}
	return st, nil
}
