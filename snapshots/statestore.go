package snapshots

import (
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// State format 2 stores a branch's state in several table properties, all
// written in the same atomic commit as the change they describe:
//
//   - icefill.state.<branch>: the header (format, plan, failures, changed
//     sources, the snapshot the state is bound to, number of checkpoints),
//     small whatever the number of partitions;
//   - icefill.state-days.<YYYY-MM>.<branch>: the checkpoints of one month's
//     partitions (at most 31).
//
// A partition commit rewrites the header and one month, so its cost does not
// grow with the number of partitions already committed (format 1 rewrote the
// whole state, ~115 KB at 1,825 partitions, and compressing it was a twentieth
// of a commit). A state still in format 1 is read as before and rewritten in
// format 2 by the next commit.
const (
	stateVersion = 2
	// StateDaysPrefix prefixes the properties holding one month's checkpoints.
	StateDaysPrefix = "icefill.state-days."
	monthLen        = len("2006-01")
)

// stateHeader is the value of icefill.state.<branch> in format 2.
type stateHeader struct {
	Version        int                `json:"v"`
	Branch         string             `json:"branch"`
	Plan           *Plan              `json:"plan,omitempty"`
	Failures       map[string]Failure `json:"failed,omitempty"`
	SourceChanged  map[string]string  `json:"src,omitempty"`
	MissingAsEmpty []string           `json:"missing,omitempty"`
	Head           int64              `json:"h,omitempty"`
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

// monthCache keeps decoded months by their stored value (which names its
// content exactly), so a commit decodes only the months that changed since
// this process last read them. Never modify a cached map.
var monthCache = struct {
	sync.Mutex
	m map[string]map[string]Checkpoint
}{m: map[string]map[string]Checkpoint{}}

func decodeMonth(branch, month, v string) (map[string]Checkpoint, error) {
	monthCache.Lock()
	days, ok := monthCache.m[v]
	monthCache.Unlock()
	if ok {
		return days, nil
	}
	days = map[string]Checkpoint{}
	if err := decodeJSON(fmt.Sprintf("checkpoints of branch %q for %s", branch, month), v, &days); err != nil {
		return nil, err
	}
	monthCache.Lock()
	if len(monthCache.m) > 10_000 {
		clear(monthCache.m)
	}
	monthCache.m[v] = days
	monthCache.Unlock()
	return days, nil
}

// readStoredState decodes the state stored in props, either format, without
// checking what it is bound to (LoadState does).
func readStoredState(props iceberg.Properties, branch string) (*State, error) {
	raw := props[StateProperty(branch)]
	var h stateHeader
	if err := decodeJSON(fmt.Sprintf("state of branch %q", branch), raw, &h); err != nil {
		return nil, err
	}
	switch {
	case h.Version > stateVersion:
		return nil, fmt.Errorf("state of branch %q has format %d, newer than this icefill understands (%d): upgrade icefill", branch, h.Version, stateVersion)
	case h.Version < stateVersion:
		return DecodeState(branch, raw) // format 1: all in the header
	}
	s := &State{Version: stateVersion, Branch: branch, Plan: h.Plan, Failures: h.Failures, SourceChanged: h.SourceChanged, MissingAsEmpty: h.MissingAsEmpty, Head: h.Head}
	s = s.Clone()
	for k, v := range props {
		month, ok := daysPropertyMonth(k, branch)
		if !ok {
			continue
		}
		days, err := decodeMonth(branch, month, v)
		if err != nil {
			return nil, err
		}
		maps.Copy(s.Checkpoints, days)
	}
	s.stored = true
	return s, nil
}

// stateChanges are the property changes that store a state.
type stateChanges struct {
	Set    iceberg.Properties
	Remove []string
}

func (c stateChanges) empty() bool { return len(c.Set) == 0 && len(c.Remove) == 0 }

// encodeState returns the property changes that turn what props holds into
// s: the header, the months whose checkpoints differ, and the removal of
// months s no longer has (and of any month when props hold format 1). Only
// changed months are compressed.
//
// It compares each checkpoint with the stored (cached) months in place and
// gathers only the changed months' days: regrouping all of a long backfill's
// checkpoints by month at every commit was the cost that grew most with the
// number of partitions committed (2 ms of CPU per commit at 1,825).
//
// A non-empty onlyDay promises that s differs from what props hold (format
// 2) only in onlyDay's checkpoint and the header: the commit of one
// partition, from a state read from or committed to props. Then only that
// month is looked at, so the cost does not grow with the checkpoints.
func encodeState(props iceberg.Properties, branch string, s *State, onlyDay string) (stateChanges, error) {
	ch := stateChanges{Set: iceberg.Properties{}}
	if onlyDay != "" {
		if err := encodeOneMonth(props, branch, s, onlyDay, &ch); err != nil {
			return ch, err
		}
		return ch, encodeHeader(props, branch, s, &ch)
	}
	type month struct {
		stored map[string]Checkpoint // nil: not stored, or unreadable
		count  int                   // s's checkpoints in the month
		dirty  bool
	}
	months := map[string]*month{}
	for day, cp := range s.Checkpoints {
		name := monthOf(day)
		m := months[name]
		if m == nil {
			m = &month{dirty: true}
			months[name] = m
			if stored, ok := props[StateDaysProperty(branch, name)]; ok {
				if days, err := decodeMonth(branch, name, stored); err == nil {
					m.stored, m.dirty = days, false
				}
			}
		}
		m.count++
		if !m.dirty {
			if old, ok := m.stored[day]; !ok || old != cp {
				m.dirty = true
			}
		}
	}
	changed := map[string]map[string]Checkpoint{}
	for name, m := range months {
		if m.dirty || len(m.stored) != m.count {
			changed[name] = map[string]Checkpoint{}
		}
	}
	if len(changed) > 0 {
		for day, cp := range s.Checkpoints {
			if days := changed[monthOf(day)]; days != nil {
				days[day] = cp
			}
		}
	}
	for name, days := range changed {
		enc, err := encodeJSON(days)
		if err != nil {
			return ch, err
		}
		ch.Set[StateDaysProperty(branch, name)] = enc
	}
	for k := range props {
		if m, ok := daysPropertyMonth(k, branch); ok && months[m] == nil {
			ch.Remove = append(ch.Remove, k)
		}
	}
	return ch, encodeHeader(props, branch, s, &ch)
}

// encodeOneMonth adds to ch the change of onlyDay's month: the stored
// month with onlyDay's checkpoint as s has it (or without it).
func encodeOneMonth(props iceberg.Properties, branch string, s *State, onlyDay string, ch *stateChanges) error {
	name := monthOf(onlyDay)
	key := StateDaysProperty(branch, name)
	days := map[string]Checkpoint{}
	if stored, ok := props[key]; ok {
		old, err := decodeMonth(branch, name, stored)
		if err != nil {
			return err
		}
		maps.Copy(days, old)
	}
	cp, ok := s.Checkpoints[onlyDay]
	if old, had := days[onlyDay]; had == ok && old == cp {
		return nil
	}
	if !ok {
		delete(days, onlyDay)
		if len(days) == 0 {
			ch.Remove = append(ch.Remove, key)
			return nil
		}
	} else {
		days[onlyDay] = cp
	}
	enc, err := encodeJSON(days)
	if err != nil {
		return err
	}
	ch.Set[key] = enc
	return nil
}

// encodeHeader adds to ch the header of s, when it differs from props'.
func encodeHeader(props iceberg.Properties, branch string, s *State, ch *stateChanges) error {
	h := stateHeader{Version: stateVersion, Branch: branch, Plan: s.Plan, Failures: s.Failures, SourceChanged: s.SourceChanged, MissingAsEmpty: s.MissingAsEmpty,
		Head: s.Head, Count: len(s.Checkpoints)}
	enc, err := encodeJSON(h)
	if err != nil {
		return err
	}
	if props[StateProperty(branch)] != enc {
		ch.Set[StateProperty(branch)] = enc
	}
	return nil
}

// stage stages the changes on txn.
func (c stateChanges) stage(txn *table.Transaction) error {
	if len(c.Set) > 0 {
		if err := txn.SetProperties(c.Set); err != nil {
			return err
		}
	}
	if len(c.Remove) > 0 {
		return txn.RemoveProperties(c.Remove)
	}
	return nil
}
