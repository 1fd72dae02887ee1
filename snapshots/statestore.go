package snapshots

import (
	"fmt"
	"maps"
	"strings"

	"github.com/apache/iceberg-go"
)

// State format 2 stores a branch's state in several table properties, all
// written in the same atomic commit as the change they describe:
//
//   - icefill.state.<branch>: the header (format, plan, failures, number of
//     checkpoints), small whatever the number of partitions;
//   - icefill.state-days.<YYYY-MM>.<branch>: the checkpoints of one month's
//     partitions (at most 31).
//
// A partition commit rewrites the header and one month, so its cost does not
// grow with the number of partitions already committed (format 1 rewrote the
// whole state, ~115 KB at 1,825 partitions, and compressing it was a tenth
// of a commit). A state still in format 1 is read as before and rewritten in
// format 2 by the next commit.
const (
	stateVersion = 2
	// StateDaysPrefix prefixes the properties holding one month's checkpoints.
	StateDaysPrefix = "icefill.state-days."
	monthLen        = len("2006-01")
)

// stateHeader is the value of icefill.state.<branch>.
type stateHeader struct {
	Version int    `json:"v"`
	Branch  string `json:"branch"`
	Plan    *Plan  `json:"plan,omitempty"`
	// Done is where format 1 kept every checkpoint; empty in format 2.
	Done     map[string]Checkpoint `json:"done,omitempty"`
	Failures map[string]Failure    `json:"failed,omitempty"`
	// Count is the number of checkpoints in all months.
	Count int `json:"n"`
}

// StateDaysProperty is the property holding branch's checkpoints of month
// (YYYY-MM).
func StateDaysProperty(branch, month string) string {
	return StateDaysPrefix + month + "." + branch
}

// monthOf is the month a partition's checkpoint is stored under.
func monthOf(day string) string {
	if len(day) >= monthLen && day[4] == '-' {
		return day[:monthLen]
	}
	return "0000-00"
}

// daysPropertyMonth returns the month of key when it holds checkpoints of
// branch. The month has a fixed length, so a branch whose name contains dots
// cannot be mistaken for another.
func daysPropertyMonth(key, branch string) (string, bool) {
	rest, ok := strings.CutPrefix(key, StateDaysPrefix)
	if !ok || len(rest) != monthLen+1+len(branch) || rest[monthLen] != '.' || rest[monthLen+1:] != branch {
		return "", false
	}
	return rest[:monthLen], true
}

func readHeader(props iceberg.Properties, branch string) (*stateHeader, error) {
	h := &stateHeader{Version: stateVersion, Branch: branch}
	if err := decodeJSON(fmt.Sprintf("state of branch %q", branch), props[StateProperty(branch)], h); err != nil {
		return nil, err
	}
	if h.Version > stateVersion {
		return nil, fmt.Errorf("state of branch %q has format %d, newer than this icefill understands (%d): upgrade icefill", branch, h.Version, stateVersion)
	}
	return h, nil
}

func readMonth(props iceberg.Properties, branch, month string) (map[string]Checkpoint, error) {
	days := map[string]Checkpoint{}
	err := decodeJSON(fmt.Sprintf("checkpoints of branch %q for %s", branch, month), props[StateDaysProperty(branch, month)], &days)
	return days, err
}

// ReadState decodes branch's state from table properties (either format).
func ReadState(props iceberg.Properties, branch string) (*State, error) {
	h, err := readHeader(props, branch)
	if err != nil {
		return nil, err
	}
	s := &State{Version: stateVersion, Branch: branch, Plan: h.Plan, Checkpoints: h.Done, Failures: h.Failures}
	s = s.Clone()
	for k := range props {
		month, ok := daysPropertyMonth(k, branch)
		if !ok {
			continue
		}
		days, err := readMonth(props, branch, month)
		if err != nil {
			return nil, err
		}
		maps.Copy(s.Checkpoints, days)
	}
	return s, nil
}

// stateChanges are the property changes that store a state.
type stateChanges struct {
	Set    iceberg.Properties
	Remove []string
}

func (c stateChanges) empty() bool { return len(c.Set) == 0 && len(c.Remove) == 0 }

// encodeState returns the property changes that turn what props holds into
// s: the header, every month whose checkpoints differ, and the removal of
// months s no longer has. It costs time in proportion to the whole state:
// for occasional changes (plans, failures, the move to format 2).
func encodeState(props iceberg.Properties, branch string, s *State) (stateChanges, error) {
	ch := stateChanges{Set: iceberg.Properties{}}
	months := map[string]map[string]Checkpoint{}
	for day, cp := range s.Checkpoints {
		m := monthOf(day)
		if months[m] == nil {
			months[m] = map[string]Checkpoint{}
		}
		months[m][day] = cp
	}
	for m, days := range months {
		enc, err := encodeJSON(days)
		if err != nil {
			return ch, err
		}
		if props[StateDaysProperty(branch, m)] != enc {
			ch.Set[StateDaysProperty(branch, m)] = enc
		}
	}
	for k := range props {
		if m, ok := daysPropertyMonth(k, branch); ok && months[m] == nil {
			ch.Remove = append(ch.Remove, k)
		}
	}
	h := stateHeader{Version: stateVersion, Branch: branch, Plan: s.Plan, Failures: s.Failures, Count: len(s.Checkpoints)}
	enc, err := encodeJSON(h)
	if err != nil {
		return ch, err
	}
	if props[StateProperty(branch)] != enc {
		ch.Set[StateProperty(branch)] = enc
	}
	return ch, nil
}

// partitionState is the part of a branch's state one partition commit reads
// and writes: the header and the month of its day, decoded without the
// others.
type partitionState struct {
	props  iceberg.Properties
	branch string
	day    string
	header *stateHeader
	month  map[string]Checkpoint
}

func readPartitionState(props iceberg.Properties, branch, day string) (*partitionState, error) {
	h, err := readHeader(props, branch)
	if err != nil {
		return nil, err
	}
	ps := &partitionState{props: props, branch: branch, day: day, header: h}
	if len(h.Done) > 0 {
		return ps, nil // format 1: withCheckpoint rewrites it all
	}
	if ps.month, err = readMonth(props, branch, monthOf(day)); err != nil {
		return nil, err
	}
	return ps, nil
}

// checkpoint is the day's current checkpoint.
func (ps *partitionState) checkpoint() (Checkpoint, bool) {
	if len(ps.header.Done) > 0 {
		cp, ok := ps.header.Done[ps.day]
		return cp, ok
	}
	cp, ok := ps.month[ps.day]
	return cp, ok
}

// withCheckpoint returns the property changes recording cp as the day's
// checkpoint (and clearing its failure), and the number of checkpoints
// after it.
func (ps *partitionState) withCheckpoint(cp Checkpoint) (stateChanges, int, error) {
	if len(ps.header.Done) > 0 {
		s, err := ReadState(ps.props, ps.branch)
		if err != nil {
			return stateChanges{}, 0, err
		}
		s.Checkpoints[ps.day] = cp
		delete(s.Failures, ps.day)
		ch, err := encodeState(ps.props, ps.branch, s)
		return ch, len(s.Checkpoints), err
	}
	h := *ps.header
	h.Version, h.Branch = stateVersion, ps.branch
	if _, ok := ps.month[ps.day]; !ok {
		h.Count++
	}
	if _, ok := h.Failures[ps.day]; ok {
		h.Failures = maps.Clone(h.Failures)
		delete(h.Failures, ps.day)
	}
	month := maps.Clone(ps.month)
	month[ps.day] = cp
	encMonth, err := encodeJSON(month)
	if err != nil {
		return stateChanges{}, 0, err
	}
	encHeader, err := encodeJSON(h)
	if err != nil {
		return stateChanges{}, 0, err
	}
	return stateChanges{Set: iceberg.Properties{
		StateProperty(ps.branch):                      encHeader,
		StateDaysProperty(ps.branch, monthOf(ps.day)): encMonth,
	}}, h.Count, nil
}
