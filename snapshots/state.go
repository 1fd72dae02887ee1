package snapshots

import (
	"fmt"
	"maps"
	"slices"

	"github.com/apache/iceberg-go/table"
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
	// SummaryBranch names, on icefill's own commits on main (promotion
	// rebase, rollback restore), the branch whose publication they are.
	SummaryBranch = "icefill.branch"
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
	// Bytes is the size of the partition day's own source files.
	Bytes int64 `json:"b,omitempty"`
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
	// SourceChanged maps a committed partition whose input files changed
	// since its checkpoint, as the last run's plan saw them, to the new
	// input fingerprint: until a checkpoint with that fingerprint lands,
	// the report shows the day as "source changed" from the catalog alone.
	SourceChanged map[string]string `json:"src,omitempty"`
	// MissingAsEmpty are source days (partition or lookback) a run with
	// --allow-missing found missing and counted as empty, sorted; a later
	// run's plan clears a partition day that is present again.
	MissingAsEmpty []string `json:"missing,omitempty"`
	// Head is the id of the snapshot made by the commit that wrote this
	// state: the state describes that snapshot and nothing else (§2.1 of
	// docs/commit-protocol.md). 0 in states written before binding.
	Head int64 `json:"h,omitempty"`

	// SetAside, when not empty, says why the stored state was not used:
	// it does not describe the branch as it is now (LoadState).
	SetAside string `json:"-"`
	// SetAsideCheckpoints counts the checkpoints of the state set aside.
	SetAsideCheckpoints int `json:"-"`

	// stored is true when the state is exactly what the properties of the
	// table it was read from (or committed to) hold, in format 2: a commit
	// that changes one checkpoint then re-encodes only that month. A clone
	// is not (it is made to be changed).
	stored bool
}

// NewState is an empty state for branch.
func NewState(branch string) *State {
	return &State{Version: 1, Branch: branch, Checkpoints: map[string]Checkpoint{}, Failures: map[string]Failure{}}
}

// Clone deep-copies the maps so a retry can start from a fresh copy.
func (s *State) Clone() *State {
	c := *s
	c.stored = false
	c.Checkpoints = maps.Clone(s.Checkpoints)
	c.Failures = maps.Clone(s.Failures)
	c.SourceChanged = maps.Clone(s.SourceChanged)
	c.MissingAsEmpty = slices.Clone(s.MissingAsEmpty)
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

// IsSourceChanged reports whether day's committed checkpoint was computed
// from input files a later plan found changed (and not recomputed since).
func (s *State) IsSourceChanged(day string) bool {
	fp, ok := s.SourceChanged[day]
	c, done := s.Checkpoints[day]
	return ok && done && c.Fingerprint != fp
}

// Current reports whether partition day is committed with this logic
// version and input fingerprint.
func (s *State) Current(day, logic, fingerprint string) bool {
	c, ok := s.Checkpoints[day]
	return ok && c.Logic == logic && c.Fingerprint == fingerprint
}

const stateEncodingPrefix = "z1:"

// DecodeState reads a state property value ("" gives an empty state).
func DecodeState(branch, v string) (*State, error) {
	s := NewState(branch)
	if err := decodeJSON(fmt.Sprintf("state of branch %q", branch), v, s); err != nil {
		return nil, err
	}
	return s.Clone(), nil
}

// LoadState returns branch's state if it describes the branch as it is now,
// and an empty state otherwise (with SetAside saying why). The state is
// bound to the snapshot its commit made (State.Head): it counts only when
// that snapshot is the branch head, or the head descends from it through
// manifest rewrites alone (operation replace: same rows). A branch dropped
// and created again, a ref expired and re-made, a branch moved by another
// tool or written by another writer: its checkpoints no longer say what
// the branch holds, so the branch starts from nothing.
//
// Only the head and the snapshots between it and the state's snapshot are
// read; intermediate snapshots of the branch may be expired.
func LoadState(tbl *table.Table, branch string) (*State, error) {
	raw, err := readStoredState(tbl.Properties(), branch)
	if err != nil {
		return nil, err
	}
	if raw.Head == 0 && len(raw.Checkpoints) == 0 && len(raw.Failures) == 0 && raw.Plan == nil {
		return raw, nil // nothing recorded yet
	}
	if why := unbound(tbl, branch, raw.Head); why != "" {
		s := NewState(branch)
		s.SetAside, s.SetAsideCheckpoints = why, len(raw.Checkpoints)
		return s, nil
	}
	return raw, nil
}

// unbound says why a state written with snapshot head does not describe
// branch now ("" when it does).
func unbound(tbl *table.Table, branch string, head int64) string {
	ref := tbl.SnapshotByName(branch)
	if ref == nil {
		return fmt.Sprintf("branch %q does not exist (dropped or expired since its checkpoints were made)", branch)
	}
	if head == 0 {
		return "the state was written by an icefill that did not bind it to a snapshot"
	}
	id := ref.SnapshotID
	for {
		if id == head {
			return ""
		}
		s := tbl.SnapshotByID(id)
		if s == nil || s.Summary == nil || s.Summary.Operation != table.OpReplace || s.ParentSnapshotID == nil {
			break
		}
		id = *s.ParentSnapshotID
	}
	return fmt.Sprintf("branch %q is at snapshot %d, which does not descend from snapshot %d that recorded its checkpoints (the branch was re-created, moved or written by another writer)",
		branch, ref.SnapshotID, head)
}

// stageState sets branch's state property in txn, bound to the snapshot
// txn stages on branch: call it after staging that snapshot. It returns
// the snapshot id the state is bound to. A non-empty onlyDay says that s
// differs from what txn's table stores only in onlyDay's checkpoint and
// the header (encodeState).
func stageState(txn *table.Transaction, branch string, s *State, onlyDay string) (int64, error) {
	staged, err := txn.StagedTable()
	if err != nil {
		return 0, err
	}
	snap := staged.SnapshotByName(branch)
	if snap == nil {
		return 0, fmt.Errorf("stage state of branch %s: the transaction made no snapshot on it", branch)
	}
	s.Head = snap.SnapshotID
	ch, err := encodeState(staged.Properties(), branch, s, onlyDay)
	if err != nil {
		return 0, err
	}
	return s.Head, ch.stage(txn)
}
