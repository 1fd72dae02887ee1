package snapshots

import (
	"context"
	"fmt"
	"sort"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
)

// Change is a partition some commit on a ref added or removed files of.
type Change struct {
	Day features.Date
	// At is the time of the newest such commit (Unix ms).
	At int64
	// Seq is the sequence number of the newest such commit.
	Seq int64
	// Snapshots touching the partition, newest first.
	Snapshots []int64
}

// ChangedPartitions lists the partitions whose content differs between
// snapshot base and snapshot head, as seen by branch: when head descends
// from base through snapshots still in the metadata, it reads what each of
// those commits added or removed, which also says when each partition last
// changed. It skips only manifest rewrites and icefill's publications of
// branch itself (its own rebase and the restore that undid it): every
// other commit counts, other branches' promotions and restores included.
// When that history is cut (snapshot expiry removes intermediate snapshots)
// it compares the two snapshots' files per partition instead and dates
// every change at head: conservative, never blind.
func ChangedPartitions(ctx context.Context, tbl *table.Table, base, head int64, branch string) (map[features.Date]*Change, error) {
	changes := map[features.Date]*Change{}
	if base == head {
		return changes, nil
	}
	lookup := tbl.Metadata().SnapshotByID
	if !table.IsAncestorOf(head, base, lookup) {
		return diffPartitions(ctx, tbl, base, head)
	}
	chain, _ := table.AncestorsBetween(head, base, lookup)
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, err
	}
	fieldID := partitionFieldID(tbl)
	for _, s := range chain {
		if s.SnapshotID == base {
			continue
		}
		if s.Summary != nil {
			own := s.Summary.Properties[SummaryOperation] != "" && s.Summary.Properties[SummaryBranch] == branch
			if own || s.Summary.Operation == table.OpReplace {
				continue
			}
		}
		manifests, err := s.Manifests(fs)
		if err != nil {
			return nil, fmt.Errorf("read manifests of snapshot %d: %w", s.SnapshotID, err)
		}
		for _, m := range manifests {
			if m.SnapshotID() != s.SnapshotID {
				continue // carried over from an earlier snapshot
			}
			for e, err := range m.Entries(fs, false) {
				if err != nil {
					return nil, fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
				}
				if e.Status() == iceberg.EntryStatusEXISTING || e.SnapshotID() != s.SnapshotID {
					continue
				}
				iday, ok := e.DataFile().Partition()[fieldID].(iceberg.Date)
				if !ok {
					continue
				}
				day := features.Date(iday)
				c := changes[day]
				if c == nil {
					c = &Change{Day: day}
					changes[day] = c
				}
				c.At = max(c.At, s.TimestampMs)
				c.Seq = max(c.Seq, s.SequenceNumber)
				if n := len(c.Snapshots); n == 0 || c.Snapshots[n-1] != s.SnapshotID {
					c.Snapshots = append(c.Snapshots, s.SnapshotID)
				}
			}
		}
	}
	return changes, nil
}

// diffPartitions compares two snapshots' data files partition by partition.
func diffPartitions(ctx context.Context, tbl *table.Table, base, head int64) (map[features.Date]*Change, error) {
	hs, bs := tbl.SnapshotByID(head), tbl.SnapshotByID(base)
	if hs == nil || bs == nil {
		return nil, fmt.Errorf("snapshot %d or %d is no longer in the table metadata (expired?); cannot tell what changed between them", base, head)
	}
	before, err := FilesByPartition(ctx, tbl, base)
	if err != nil {
		return nil, err
	}
	after, err := FilesByPartition(ctx, tbl, head)
	if err != nil {
		return nil, err
	}
	changes := map[features.Date]*Change{}
	for _, d := range ChangedDays(before, after) {
		changes[d] = &Change{Day: d, At: hs.TimestampMs, Seq: hs.SequenceNumber, Snapshots: []int64{head}}
	}
	return changes, nil
}

// partitionFieldID is the id of the event_date partition field.
func partitionFieldID(tbl *table.Table) int {
	spec := tbl.Spec()
	for _, f := range spec.Fields() {
		if f.Name == PartitionColumn {
			return f.FieldID
		}
	}
	return 1000
}

// FilesByPartition plans every data file of a snapshot, grouped by day.
func FilesByPartition(ctx context.Context, tbl *table.Table, snapshotID int64) (Files, error) {
	tasks, err := tbl.Scan(table.WithSnapshotID(snapshotID)).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of snapshot %d: %w", snapshotID, err)
	}
	fieldID := partitionFieldID(tbl)
	out := Files{}
	for _, t := range tasks {
		day, ok := t.File.Partition()[fieldID].(iceberg.Date)
		if !ok {
			return nil, fmt.Errorf("data file %s has no %s partition value", t.File.FilePath(), PartitionColumn)
		}
		out[features.Date(day)] = append(out[features.Date(day)], t.File)
	}
	return out, nil
}

// SortedDays returns the map's days, oldest first.
func SortedDays[V any](m map[features.Date]V) []features.Date {
	out := make([]features.Date, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
