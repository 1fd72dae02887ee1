package snapshots

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
)

// A validation is a certificate of exact content: for every partition it
// compared, the digest of the base's files and of the candidate's files of
// that partition. Promote publishes a partition only when the certificate
// holds the very content main has now (base) and the very content main
// will have (candidate); nothing else about the branch or the validation's
// date range is trusted. See docs/commit-protocol.md, "The publishing gate".

// CertEntry is one compared partition: the digests of its file sets on the
// validation's base and candidate.
type CertEntry struct {
	Base      string `json:"b"`
	Candidate string `json:"c"`
}

// emptyDigest is the digest of a partition with no files.
const emptyDigest = "empty"

// Digest identifies a partition's content by its set of data files (data
// files are immutable and have unique names: the same paths are the same
// rows).
func Digest(files []iceberg.DataFile) string {
	if len(files) == 0 {
		return emptyDigest
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.FilePath()
	}
	slices.Sort(paths)
	sum := sha256.Sum256([]byte(strings.Join(paths, "\n")))
	return hex.EncodeToString(sum[:10])
}

// Files are a snapshot's data files by partition day.
type Files map[features.Date][]iceberg.DataFile

// SnapshotFiles lists the data files of snapshot id by day (empty for 0,
// "no snapshot").
func SnapshotFiles(ctx context.Context, tbl *table.Table, id int64) (Files, error) {
	if id == 0 {
		return Files{}, nil
	}
	return FilesByPartition(ctx, tbl, id)
}

// ChangedDays lists the days whose file sets differ between a and b,
// oldest first.
func ChangedDays(a, b Files) []features.Date {
	var out []features.Date
	for d, fs := range a {
		if Digest(fs) != Digest(b[d]) {
			out = append(out, d)
		}
	}
	for d, fs := range b {
		if _, ok := a[d]; !ok && len(fs) > 0 {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return out
}

// Certify computes the certificate a validation of snapshot cand against
// snapshot base over [from, to] (nil: unbounded) gives: every partition in
// range present on either side. outside lists the partitions that differ
// between the two but lie outside the range: the certificate does not
// cover them, and promote will ask for them.
func Certify(ctx context.Context, tbl *table.Table, base, cand int64, from, to *features.Date) (map[string]CertEntry, []string, error) {
	bf, err := SnapshotFiles(ctx, tbl, base)
	if err != nil {
		return nil, nil, err
	}
	cf, err := SnapshotFiles(ctx, tbl, cand)
	if err != nil {
		return nil, nil, err
	}
	in := func(d features.Date) bool { return (from == nil || d >= *from) && (to == nil || d <= *to) }
	cert := map[string]CertEntry{}
	var outside []string
	for _, files := range []Files{bf, cf} {
		for d := range files {
			if _, done := cert[d.String()]; done {
				continue
			}
			e := CertEntry{Base: Digest(bf[d]), Candidate: Digest(cf[d])}
			switch {
			case in(d):
				cert[d.String()] = e
			case e.Base != e.Candidate && !slices.Contains(outside, d.String()):
				outside = append(outside, d.String())
			}
		}
	}
	slices.Sort(outside)
	return cert, outside, nil
}

// MainHasBeen reports whether main has ever been at snapshot id, as far as
// the table can tell: main's head or one of its ancestors, a snapshot an
// icefill tag keeps (taken of main before a publication), or one the
// promotion history names as main's before or after.
func MainHasBeen(tbl *table.Table, id int64) bool {
	if main := tbl.CurrentSnapshot(); main != nil && table.IsAncestorOf(main.SnapshotID, id, tbl.Metadata().SnapshotByID) {
		return true
	}
	for name, r := range tbl.Metadata().Refs() {
		if r.SnapshotRefType == table.TagRef && r.SnapshotID == id &&
			(strings.HasPrefix(name, PromoteTagPrefix) || strings.HasPrefix(name, WriteMainTagPrefix)) {
			return true
		}
	}
	history, _ := ReadHistory(tbl.Properties())
	for _, ev := range history {
		if ev.From == id || ev.To == id {
			return true
		}
	}
	return false
}

// CheckValidationRefs refuses (exit 4) a validation that could certify
// nothing: a ref against itself, or a base main has never been (a
// validation proves a candidate against production, not against another
// candidate).
func CheckValidationRefs(tbl *table.Table, base, cand string, baseSnap, candSnap int64) error {
	switch {
	case base == cand:
		return errkind.Refusedf("%w: --base and --candidate are both %q: a ref validated against itself proves nothing", ErrNotValidated, base)
	case baseSnap == candSnap:
		return errkind.Refusedf("%w: --base %s and --candidate %s are the same snapshot %d: a snapshot validated against itself proves nothing", ErrNotValidated, base, cand, baseSnap)
	case !MainHasBeen(tbl, baseSnap):
		return errkind.Refusedf("%w: --base %s (snapshot %d) is not a snapshot main has been; validate against main (the default) so the pass says what publishing changes", ErrNotValidated, base, baseSnap)
	}
	return nil
}

// GateError says which partitions a publication would change on main that
// no passing validation of the branch covers with exactly that content.
type GateError struct {
	Branch string
	// Missing were never compared; Stale were compared, but main's or the
	// branch's files of them have changed since.
	Missing, Stale []string
}

func (e *GateError) Error() string {
	var parts []string
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("%d never validated (%s)", len(e.Missing), strings.Join(trimList(e.Missing, 12), ", ")))
	}
	if len(e.Stale) > 0 {
		parts = append(parts, fmt.Sprintf("%d validated against other content than main's or the branch's now (%s)", len(e.Stale), strings.Join(trimList(e.Stale, 12), ", ")))
	}
	days := append(append([]string{}, e.Missing...), e.Stale...)
	slices.Sort(days)
	return fmt.Sprintf("%v: publishing %s would change partitions of main that no passing validation covers: %s; run `icefill validate --base main --candidate %s --from %s --to %s` (or without --from/--to), then promote",
		ErrNotValidated, e.Branch, strings.Join(parts, "; "), e.Branch, days[0], days[len(days)-1])
}

func (e *GateError) Unwrap() error { return ErrNotValidated }

// PartitionChange is one partition a publication changed on main: the
// digests of its files before and after.
type PartitionChange struct {
	Day string `json:"day"`
	Old string `json:"old"`
	New string `json:"new"`
}

// diffChanges lists what going from files before to files after changes.
func diffChanges(before, after Files) []PartitionChange {
	days := ChangedDays(before, after)
	out := make([]PartitionChange, len(days))
	for i, d := range days {
		out[i] = PartitionChange{Day: d.String(), Old: Digest(before[d]), New: Digest(after[d])}
	}
	return out
}

// checkCertificate is the publishing gate: every change must be covered by
// the validation with the same old (base) and new (candidate) content.
func checkCertificate(branch string, val *Validation, changes []PartitionChange) error {
	ge := &GateError{Branch: branch}
	for _, c := range changes {
		e, ok := val.Partitions[c.Day]
		switch {
		case !ok:
			ge.Missing = append(ge.Missing, c.Day)
		case e.Base != c.Old || e.Candidate != c.New:
			ge.Stale = append(ge.Stale, c.Day)
		}
	}
	if len(ge.Missing)+len(ge.Stale) > 0 {
		return ge
	}
	return nil
}

func changedDayList(changes []PartitionChange) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.Day
	}
	return out
}

// RecordValidation stores a passing validation and its certificate (v's
// Partitions, from Certify), pinned to the candidate's head when the
// candidate is a branch: if it moved meanwhile, nothing is recorded. A
// certificate of no partition, of a ref against itself or against a base
// main has never been is refused. When the last record of the candidate is
// of the same candidate snapshot, the partitions it covered and this one
// did not are kept: validating a long range in pieces certifies them all.
func RecordValidation(ctx context.Context, cat catalog.Catalog, ident table.Identifier, v Validation) error {
	tbl, err := cat.LoadTable(ctx, ident)
	if err != nil {
		return errkind.UnavailableError(err)
	}
	if err := CheckValidationRefs(tbl, v.Base, v.Candidate, v.BaseSnapshot, v.CandidateSnapshot); err != nil {
		return err
	}
	if len(v.Partitions) == 0 {
		return errkind.Refusedf("%w: the validation of %s compared no partition (is --from/--to outside the data?); a comparison of nothing is not a pass", ErrNotValidated, v.Candidate)
	}
	if old, err := ReadValidation(tbl.Properties(), v.Candidate); err == nil && old != nil && old.CandidateSnapshot == v.CandidateSnapshot {
		merged := maps.Clone(old.Partitions)
		if merged == nil {
			merged = map[string]CertEntry{}
		}
		maps.Copy(merged, v.Partitions)
		v.Partitions = merged
	}
	v.Covered = len(v.Partitions)
	enc, err := encodeJSON(&v)
	if err != nil {
		return err
	}
	reqs := []table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())}
	if r, ok := refOf(tbl, v.Candidate); ok && r.SnapshotRefType == table.BranchRef {
		id := v.CandidateSnapshot
		reqs = append(reqs, table.AssertRefSnapshotID(v.Candidate, &id))
	}
	_, _, err = cat.CommitTable(ctx, ident, reqs,
		[]table.Update{table.NewSetPropertiesUpdate(iceberg.Properties{ValidationPropertyPrefix + v.Candidate: enc})})
	if err != nil {
		return errkind.UnavailableError(fmt.Errorf("record validation of %s: %w (did the branch move during validation? validate again)", v.Candidate, err))
	}
	return nil
}
