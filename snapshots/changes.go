package snapshots

import (
	"context"
	"fmt"
	"sort"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// Change is a partition some commit on a ref added or removed files of.
type Change struct {
	Day iceberg.Date
	// At is the time of the newest such commit (Unix ms).
	At int64
	// Snapshots touching the partition, newest first.
	Snapshots []int64
}

// ChangedPartitions lists the partitions changed by the snapshots after
// base up to head (head's ancestry), skipping snapshots icefill made itself
// (promotion rebases and restores) and those that only rewrite manifests.
// ok is false when base is not an ancestor of head.
func ChangedPartitions(ctx context.Context, tbl *table.Table, base, head int64) (map[iceberg.Date]*Change, bool, error) {
	changes := map[iceberg.Date]*Change{}
	if base == head {
		return changes, true, nil
	}
	lookup := tbl.Metadata().SnapshotByID
	if !table.IsAncestorOf(head, base, lookup) {
		return nil, false, nil
	}
	chain, _ := table.AncestorsBetween(head, base, lookup)
	fs, err := tbl.FS(ctx)
	if err != nil {
		return nil, false, err
	}
	fieldID := partitionFieldID(tbl)
	for _, s := range chain {
		if s.SnapshotID == base {
			continue
		}
		if s.Summary != nil {
			if s.Summary.Properties[SummaryOperation] != "" || s.Summary.Operation == table.OpReplace {
				continue
			}
		}
		manifests, err := s.Manifests(fs)
		if err != nil {
			return nil, false, fmt.Errorf("read manifests of snapshot %d: %w", s.SnapshotID, err)
		}
		for _, m := range manifests {
			if m.SnapshotID() != s.SnapshotID {
				continue // carried over from an earlier snapshot
			}
			entries, err := m.FetchEntries(fs, false)
			if err != nil {
				return nil, false, fmt.Errorf("read manifest %s: %w", m.FilePath(), err)
			}
			for _, e := range entries {
				if e.Status() == iceberg.EntryStatusEXISTING || e.SnapshotID() != s.SnapshotID {
					continue
				}
				day, ok := e.DataFile().Partition()[fieldID].(iceberg.Date)
				if !ok {
					continue
				}
				c := changes[day]
				if c == nil {
					c = &Change{Day: day}
					changes[day] = c
				}
				if s.TimestampMs > c.At {
					c.At = s.TimestampMs
				}
				if n := len(c.Snapshots); n == 0 || c.Snapshots[n-1] != s.SnapshotID {
					c.Snapshots = append(c.Snapshots, s.SnapshotID)
				}
			}
		}
	}
	return changes, true, nil
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
func FilesByPartition(ctx context.Context, tbl *table.Table, snapshotID int64) (map[iceberg.Date][]iceberg.DataFile, error) {
	tasks, err := tbl.Scan(table.WithSnapshotID(snapshotID)).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of snapshot %d: %w", snapshotID, err)
	}
	fieldID := partitionFieldID(tbl)
	out := map[iceberg.Date][]iceberg.DataFile{}
	for _, t := range tasks {
		day, ok := t.File.Partition()[fieldID].(iceberg.Date)
		if !ok {
			return nil, fmt.Errorf("data file %s has no %s partition value", t.File.FilePath(), PartitionColumn)
		}
		out[day] = append(out[day], t.File)
	}
	return out, nil
}

// SortedDays returns the map's days, oldest first.
func SortedDays[V any](m map[iceberg.Date]V) []iceberg.Date {
	out := make([]iceberg.Date, 0, len(m))
	for d := range m {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
