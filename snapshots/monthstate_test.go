package snapshots

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/tinypart"
)

// commitTinyAttempt commits a one-row partition i with the given attempt id.
func commitTinyAttempt(t *testing.T, c *Committer, i int, attempt string) {
	t.Helper()
	ctx := context.Background()
	tbl, err := c.Catalog.LoadTable(ctx, c.Ident)
	if err != nil {
		t.Fatal(err)
	}
	day, files, err := tinypart.Write(ctx, tbl, i)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Commit(ctx, PartitionCommit{Day: iceberg.Date(day), DayText: day.String(), Files: files,
		Checkpoint: Checkpoint{Logic: "test", Fingerprint: fmt.Sprint("f", i), Attempt: attempt, CommittedAt: time.Now().UnixMilli()}}); err != nil {
		t.Fatal(err)
	}
}

// Recommitting days of compacted months (month boundaries included), then
// compacting again, keeps one file per day, every day's row and every
// checkpoint: the overwrite path of month-clustered manifests.
func TestRecommitCompactedMonths(t *testing.T) {
	ctx := context.Background()
	cat, c := tinyCommitter(t, "b", 0)
	for i := 0; i < 62; i++ { // Jan, Feb, Mar 2020
		commitTinyAttempt(t, c, i, fmt.Sprint("a", i))
	}
	if done, err := c.CompactManifests(ctx, 8); err != nil || !done {
		t.Fatalf("compact: %v %v", done, err)
	}
	// Recommit days across months, including month boundaries.
	for r := 0; r < 3; r++ {
		for _, i := range []int{0, 30, 31, 59, 60, 61, 15, 45} {
			commitTinyAttempt(t, c, i, fmt.Sprint("r", r, "-", i))
		}
		if _, err := c.CompactManifests(ctx, 2); err != nil {
			t.Fatal(err)
		}
	}
	tbl, _ := cat.Iceberg().LoadTable(ctx, cat.Ident())
	if got := branchRows(t, tbl, "b"); got != 62 {
		t.Errorf("rows %d want 62", got)
	}
	for i := 0; i < 62; i++ {
		day := features.MustParseDate("2020-01-01") + features.Date(i)
		files, err := PartitionFiles(ctx, tbl, "b", iceberg.Date(day))
		if err != nil || len(files) != 1 {
			t.Errorf("day %s: %d files, %v", day, len(files), err)
		}
	}
	fs, _ := tbl.FS(ctx)
	ms, _ := tbl.SnapshotByName("b").Manifests(fs)
	for _, m := range ms {
		lo, hi, ok := manifestMonths(m)
		if !ok {
			t.Errorf("manifest %s has no partition range", m.FilePath())
		}
		t.Logf("manifest %d..%d added=%d existing=%d deleted=%d", lo, hi, m.AddedDataFiles(), m.ExistingDataFiles(), m.DeletedDataFiles())
	}
	st, err := LoadState(tbl, "b")
	if err != nil || st.SetAside != "" || len(st.Checkpoints) != 62 {
		t.Fatalf("state %d %q %v", len(st.Checkpoints), st.SetAside, err)
	}
}

// A commit on a branch whose state is set aside (the branch moved by
// another tool mid-run) must not keep the old incarnation's checkpoints:
// the one-month encoding applies only to a state read as the table stores
// it, never to a set-aside one.
func TestSetAsideStateIsNotMergedByOneMonthEncode(t *testing.T) {
	ctx := context.Background()
	cat, c := tinyCommitter(t, "b", 0)
	for i := 0; i < 3; i++ {
		commitTinyAttempt(t, c, i, fmt.Sprint("a", i))
	}
	tbl, _ := cat.Iceberg().LoadTable(ctx, cat.Ident())
	first := tbl.SnapshotByName("b")
	// Another tool moves the branch back to its first snapshot.
	parent := *first.ParentSnapshotID
	for s := tbl.SnapshotByID(parent); s != nil && s.ParentSnapshotID != nil; s = tbl.SnapshotByID(*s.ParentSnapshotID) {
		parent = *s.ParentSnapshotID
	}
	if _, _, err := cat.Iceberg().CommitTable(ctx, cat.Ident(), nil,
		[]table.Update{table.NewSetSnapshotRefUpdate("b", parent, table.BranchRef, 0, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	c.forgetTable()
	commitTinyAttempt(t, c, 10, "new")
	tbl, _ = cat.Iceberg().LoadTable(ctx, cat.Ident())
	st, err := LoadState(tbl, "b")
	if err != nil || st.SetAside != "" {
		t.Fatalf("%v %q", err, st.SetAside)
	}
	if len(st.Checkpoints) != 1 {
		t.Errorf("after a commit on a set-aside state: %d checkpoints %v, want only the new one", len(st.Checkpoints), st.Done())
	}
}
