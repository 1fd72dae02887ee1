package snapshots

import (
	"fmt"
	"maps"
	"slices"

	"github.com/apache/iceberg-go"
)

// Summary property keys written on every checkpoint snapshot. A user sees
// them in the snapshot's summary (e.g. Spark's <table>.snapshots view).
const (
	SummaryPartition   = "icefill.partition"
	SummaryRunID       = "icefill.run-id"
	SummaryLogic       = "icefill.logic"
	SummaryFingerprint = "icefill.source-fingerprint"
	SummarySourceFiles = "icefill.source-files"
	SummaryInputRows   = "icefill.input-rows"
	SummaryOutputRows  = "icefill.output-rows"
	SummaryRejected    = "icefill.rejected-rows"
	SummaryAttempt     = "icefill.attempt"
	SummaryDone        = "icefill.partitions-done"
)

// StatePropertyPrefix prefixes the table property that holds a branch's
// cumulative checkpoint state. It is updated in the same atomic commit as
// each partition's data, guarded by the branch head, so it can never
// disagree with the branch; unlike snapshot summaries it survives snapshot
// expiry and is stored once, not once per snapshot.
const StatePropertyPrefix = "icefill.state."

// StateProperty is the name of branch's state property.
func StateProperty(branch string) string { return StatePropertyPrefix + branch }

// Checkpoint records one committed partition.
type Checkpoint struct {
	// Logic is the logic version (features.Logic.Version()).
	Logic string `json:"l"`
	// Fingerprint identifies the exact input files read.
	Fingerprint string `json:"f"`
	// RunID is the run that committed it.
	RunID string `json:"r"`
	// Attempt is unique per commit attempt: a writer that lost the answer
	// to its commit finds its own attempt here if the commit landed.
	Attempt string `json:"a"`
	// CommittedAt is the commit time, Unix milliseconds.
	CommittedAt int64 `json:"t"`
	// Seq is the table sequence number of the commit: promotion compares
	// it with main's commits to tell what the branch recomputed after.
	Seq int64 `json:"q,omitempty"`
	// InputRows, OutputRows and Rejected are the partition's counts.
	InputRows  int64 `json:"i"`
	OutputRows int64 `json:"o"`
	Rejected   int64 `json:"x,omitempty"`
	// Seconds is how long computing and committing took.
	Seconds float64 `json:"d,omitempty"`
}

// Failure records the last failure of a partition not (re)committed since.
type Failure struct {
	RunID string `json:"r"`
	Error string `json:"e"`
	At    int64  `json:"t"`
	Logic string `json:"l"`
}

// Plan records what a run set out to do, so status can tell what remains
// from any machine without the run's flags.
type Plan struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Logic  string `json:"logic"`
	Source string `json:"source"`
	// Partitions is the number of partitions in From…To.
	Partitions int `json:"partitions"`
	// Base is main's snapshot the branch was created from.
	Base int64 `json:"base,omitempty"`
}

// State is a branch's cumulative checkpoint state: which partitions are
// committed, with which logic and input, and which failed.
type State struct {
	Version     int                   `json:"v"`
	Branch      string                `json:"branch"`
	Plan        *Plan                 `json:"plan,omitempty"`
	Checkpoints map[string]Checkpoint `json:"done"`
	Failures    map[string]Failure    `json:"failed,omitempty"`
}

// NewState is an empty state for branch.
func NewState(branch string) *State {
	return &State{Version: 1, Branch: branch, Checkpoints: map[string]Checkpoint{}, Failures: map[string]Failure{}}
}

// Clone deep-copies the maps so a retry can start from a fresh copy.
func (s *State) Clone() *State {
	c := *s
	c.Checkpoints = maps.Clone(s.Checkpoints)
	c.Failures = maps.Clone(s.Failures)
	if c.Checkpoints == nil {
		c.Checkpoints = map[string]Checkpoint{}
	}
	if c.Failures == nil {
		c.Failures = map[string]Failure{}
	}
	if s.Plan != nil {
		p := *s.Plan
		c.Plan = &p
	}
	return &c
}

// Done lists the committed partitions, oldest first.
func (s *State) Done() []string {
	return slices.Sorted(maps.Keys(s.Checkpoints))
}

// Current reports whether partition day is committed with this logic
// version and input fingerprint.
func (s *State) Current(day, logic, fingerprint string) bool {
	c, ok := s.Checkpoints[day]
	return ok && c.Logic == logic && c.Fingerprint == fingerprint
}

const stateEncodingPrefix = "z1:"

// Encode packs the state as zlib-compressed JSON in base64, prefixed with
// its format: compact enough for a table property at 1,825 partitions.
func (s *State) Encode() (string, error) { return encodeJSON(s) }

// DecodeState reads a state property value ("" gives an empty state).
func DecodeState(branch, v string) (*State, error) {
	s := NewState(branch)
	if err := decodeJSON(fmt.Sprintf("state of branch %q", branch), v, s); err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

// ReadState decodes branch's state from table properties.
func ReadState(props iceberg.Properties, branch string) (*State, error) {
	return DecodeState(branch, props[StateProperty(branch)])
}
