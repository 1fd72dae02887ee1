package snapshots_test

import (
	"context"
	"testing"

	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/snapshots"
)

// The state counts while the branch head is the snapshot that recorded it or
// a manifest rewrite of it, even once the branch's own intermediate
// snapshots (that snapshot included) are expired; it is set aside as soon as
// the branch points anywhere else.
func TestStateBindingSurvivesCompactionAndExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	bound := func(label string) *snapshots.State {
		t.Helper()
		st, err := snapshots.LoadState(e.table(), "clv-fix")
		if err != nil {
			t.Fatal(err)
		}
		if st.SetAside != "" || len(st.Checkpoints) == 0 {
			t.Fatalf("%s: state set aside (%q) or empty (%d checkpoints)", label, st.SetAside, len(st.Checkpoints))
		}
		return st
	}
	want := len(bound("after the run").Checkpoints)

	c := &snapshots.Committer{Catalog: e.cat.Iceberg(), Ident: e.cat.Ident(), Branch: "clv-fix"}
	if done, err := c.CompactManifests(ctx, 0); err != nil || !done {
		t.Fatalf("compaction: done %v, %v", done, err)
	}
	head := e.table().SnapshotByName("clv-fix")
	if head.Summary.Operation != table.OpReplace || head.ParentSnapshotID == nil {
		t.Fatalf("the head after compaction is a %s", head.Summary.Operation)
	}
	bound("after a manifest rewrite")

	// Expire the snapshot that recorded the state: only the head remains.
	tbl := e.table()
	if _, _, err := e.cat.Iceberg().CommitTable(ctx, e.cat.Ident(),
		[]table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())},
		[]table.Update{table.NewRemoveSnapshotsUpdate([]int64{*head.ParentSnapshotID}, false)}); err != nil {
		t.Fatal(err)
	}
	if e.table().SnapshotByID(*head.ParentSnapshotID) != nil {
		t.Fatal("the state's snapshot was not expired")
	}
	if got := len(bound("after the state's snapshot was expired").Checkpoints); got != want {
		t.Fatalf("%d checkpoints, want %d", got, want)
	}

	// Pointed at main's head by another tool: set aside, and status says so.
	tbl = e.table()
	if _, _, err := e.cat.Iceberg().CommitTable(ctx, e.cat.Ident(),
		[]table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())},
		[]table.Update{table.NewSetSnapshotRefUpdate("clv-fix", tbl.CurrentSnapshot().SnapshotID, table.BranchRef, 0, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	st, err := snapshots.LoadState(e.table(), "clv-fix")
	if err != nil {
		t.Fatal(err)
	}
	if st.SetAside == "" || len(st.Checkpoints) != 0 || st.SetAsideCheckpoints != want {
		t.Fatalf("a moved branch kept its state: set aside %q, %d checkpoints, %d set aside", st.SetAside, len(st.Checkpoints), st.SetAsideCheckpoints)
	}
}
