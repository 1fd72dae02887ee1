package snapshots

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
)

// tinyCommitter is a committer on branch of a fresh embedded catalog.
func tinyCommitter(t *testing.T, branch string, keep int) (*catalog.Catalog, *Committer) {
	t.Helper()
	dir := t.TempDir()
	cfg := catalog.DefaultConfig()
	cfg.SQLitePath, cfg.Warehouse = filepath.Join(dir, "catalog.db"), filepath.Join(dir, "warehouse")
	cat, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	if _, _, err := cat.EnsureTable(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cat, &Committer{Catalog: cat.Iceberg(), Ident: cat.Ident(), Branch: branch, KeepHistory: keep}
}

// commitTiny commits a one-row partition of day 2020-01-01 + i.
func commitTiny(t *testing.T, c *Committer, i int) {
	t.Helper()
	commitTinyAttempt(t, c, i, fmt.Sprint("a", i))
}

func branchRows(t *testing.T, tbl *table.Table, ref string) int64 {
	t.Helper()
	tasks, err := tbl.Scan(table.WithSnapshotID(tbl.SnapshotByName(ref).SnapshotID)).PlanFiles(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, task := range tasks {
		n += task.File.Count()
	}
	return n
}

// The table metadata must not grow with the number of partitions: the
// branch's own older snapshots go in the same commit, while snapshots any
// other ref needs stay, and every checkpoint stays in the state.
func TestCommitsTrimBranchHistoryButKeepState(t *testing.T) {
	ctx := context.Background()
	cat, c := tinyCommitter(t, "b", 3)
	for i := 0; i < 6; i++ {
		commitTiny(t, c, i)
	}
	// Tag the 6th partition's snapshot, as a user or a promotion would.
	tbl, _ := cat.Iceberg().LoadTable(ctx, cat.Ident())
	tagged := tbl.SnapshotByName("b").SnapshotID
	if _, _, err := cat.Iceberg().CommitTable(ctx, cat.Ident(), nil,
		[]table.Update{table.NewSetSnapshotRefUpdate("keep-me", tagged, table.TagRef, 0, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	tagHistory := map[int64]bool{}
	for _, s := range table.AncestorsOf(tagged, tbl.Metadata().SnapshotByID) {
		tagHistory[s.SnapshotID] = true
	}
	// No forgetTable: the committer's cached table predates the tag, and
	// must not trim what the tag holds.
	for i := 6; i < 45; i++ {
		commitTiny(t, c, i)
	}
	tbl, err := cat.Iceberg().LoadTable(ctx, cat.Ident())
	if err != nil {
		t.Fatal(err)
	}
	// Everything the tag held stays; of the branch's own snapshots, the
	// head and the 3 kept before it, plus at most 2 more committed on the
	// cached table since the last trim (every 3rd commit trims).
	own := 0
	for _, s := range tbl.Metadata().Snapshots() {
		if !tagHistory[s.SnapshotID] {
			own++
		}
	}
	for id := range tagHistory {
		if tbl.SnapshotByID(id) == nil {
			t.Errorf("snapshot %d of the tag's history was removed", id)
		}
	}
	if own < 4 || own > 6 {
		t.Errorf("metadata holds %d of the branch's own snapshots after 45 commits, want 4 to 6", own)
	}
	if got := branchRows(t, tbl, "b"); got != 45 {
		t.Errorf("branch has %d rows, want 45", got)
	}
	state, err := LoadState(tbl, "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(state.Checkpoints) != 45 {
		t.Fatalf("state has %d checkpoints, want 45", len(state.Checkpoints))
	}
	for i := 0; i < 45; i++ {
		day := (features.MustParseDate("2020-01-01") + features.Date(i)).String()
		if cp := state.Checkpoints[day]; cp.Attempt != fmt.Sprint("a", i) || cp.Seq == 0 {
			t.Errorf("checkpoint of %s = %+v", day, cp)
		}
	}
	// 45 days from 2020-01-01 span two months: two month properties.
	months := 0
	for k := range tbl.Properties() {
		if _, ok := daysPropertyMonth(k, "b"); ok {
			months++
		}
	}
	if months != 2 {
		t.Errorf("%d month properties, want 2", months)
	}
	h := header(t, tbl, "b")
	if h.Count != 45 || h.Head != tbl.SnapshotByName("b").SnapshotID {
		t.Errorf("header count %d, bound to %d; want 45 and the head", h.Count, h.Head)
	}
	if s := tbl.SnapshotByName("b").Summary.Properties[SummaryDone]; s != "45" {
		t.Errorf("head summary says %s partitions done, want 45", s)
	}
}

// A state written whole in one property (format 1) is read, and the next
// commit rewrites it in months without losing a checkpoint or failure.
func TestFormat1StateIsRewrittenByTheNextCommit(t *testing.T) {
	ctx := context.Background()
	cat, c := tinyCommitter(t, "b", 0)
	commitTiny(t, c, 40) // creates the branch
	tbl, _ := cat.Iceberg().LoadTable(ctx, cat.Ident())
	old := map[string]any{"v": 1, "branch": "b", "h": tbl.SnapshotByName("b").SnapshotID,
		"plan":   map[string]any{"from": "2020-01-01", "to": "2020-03-01", "logic": "test", "partitions": 61},
		"done":   map[string]Checkpoint{"2019-12-31": {Logic: "test", Attempt: "old"}, "2020-01-02": {Logic: "test", Attempt: "old2"}},
		"failed": map[string]Failure{"2020-01-03": {Error: "boom"}, "2020-01-04": {Error: "bang"}}}
	enc, err := encodeJSON(old)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cat.Iceberg().CommitTable(ctx, cat.Ident(), nil, []table.Update{
		table.NewSetPropertiesUpdate(iceberg.Properties{StateProperty("b"): enc}),
		table.NewRemovePropertiesUpdate([]string{StateDaysProperty("b", "2020-02")})}); err != nil {
		t.Fatal(err)
	}
	c.forgetTable()
	tbl, _ = cat.Iceberg().LoadTable(ctx, cat.Ident())
	if s, err := LoadState(tbl, "b"); err != nil || len(s.Checkpoints) != 2 || s.Plan == nil || s.Plan.Partitions != 61 {
		t.Fatalf("format 1 state read as %+v, %v", s, err)
	}
	commitTiny(t, c, 2) // 2020-01-03: clears its failure
	tbl, _ = cat.Iceberg().LoadTable(ctx, cat.Ident())
	s, err := LoadState(tbl, "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Checkpoints) != 3 || s.Checkpoints["2019-12-31"].Attempt != "old" || s.Checkpoints["2020-01-03"].Attempt != "a2" {
		t.Errorf("checkpoints after the rewrite: %+v", s.Checkpoints)
	}
	if _, ok := s.Failures["2020-01-03"]; ok || len(s.Failures) != 1 {
		t.Errorf("failures after the rewrite: %+v", s.Failures)
	}
	if s.Plan == nil || s.Plan.Partitions != 61 {
		t.Errorf("plan lost: %+v", s.Plan)
	}
	h := header(t, tbl, "b")
	if h.Version != stateVersion || h.Count != 3 {
		t.Errorf("header after the rewrite: %+v", h)
	}
}

// A month property of one branch is never read as another's, whatever
// dots the names hold.
func TestMonthPropertyNames(t *testing.T) {
	k := StateDaysProperty("a.b", "2024-02")
	if m, ok := daysPropertyMonth(k, "a.b"); !ok || m != "2024-02" {
		t.Errorf("%s: %q %v", k, m, ok)
	}
	for _, other := range []string{"b", "a", "2024-02.a.b", "a.b.c"} {
		if _, ok := daysPropertyMonth(k, other); ok {
			t.Errorf("%s read as a month of branch %q", k, other)
		}
	}
}

// A commit that starts from a table another writer has since changed loses
// the race once, counts it as a conflict and lands on the next attempt.
func TestCommitCountsConflicts(t *testing.T) {
	cat, c1 := tinyCommitter(t, "b", 0)
	c2 := &Committer{Catalog: cat.Iceberg(), Ident: cat.Ident(), Branch: "b"}
	commitTiny(t, c2, 0)
	commitTiny(t, c2, 3) // c2 now starts its next commit from this table
	commitTiny(t, c1, 1) // which is now stale
	ctx := context.Background()
	day := features.MustParseDate("2020-01-01") + 2
	res, err := c2.Commit(ctx, PartitionCommit{Day: iceberg.Date(day), DayText: day.String(),
		Checkpoint: Checkpoint{Logic: "test", Attempt: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || res.Conflicts != 1 {
		t.Errorf("attempts %d, conflicts %d; want 2 and 1", res.Attempts, res.Conflicts)
	}
}

func header(t *testing.T, tbl *table.Table, branch string) stateHeader {
	t.Helper()
	var h stateHeader
	if err := decodeJSON("header", tbl.Properties()[StateProperty(branch)], &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// Compaction clusters the branch's manifests by month and rewrites only the
// months of manifests added since: a commit then reads and rewrites one
// month's manifest, however many partitions the branch holds. Rows and the
// state's binding survive it.
func TestCompactionClustersManifestsByMonth(t *testing.T) {
	ctx := context.Background()
	cat, c := tinyCommitter(t, "b", 0)
	layout := func() map[int][]iceberg.ManifestFile {
		t.Helper()
		tbl, err := cat.Iceberg().LoadTable(ctx, cat.Ident())
		if err != nil {
			t.Fatal(err)
		}
		fs, err := tbl.FS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ms, err := tbl.SnapshotByName("b").Manifests(fs)
		if err != nil {
			t.Fatal(err)
		}
		byMonth := map[int][]iceberg.ManifestFile{}
		for _, m := range ms {
			lo, hi, ok := manifestMonths(m)
			if !ok || lo != hi || !monthManifest(m) {
				lo = -1 // not one month's compacted manifest
			}
			byMonth[lo] = append(byMonth[lo], m)
		}
		return byMonth
	}
	compact := func(want bool) {
		t.Helper()
		done, err := c.CompactManifests(ctx, 8)
		if err != nil || done != want {
			t.Fatalf("compaction: done %v, err %v; want done %v", done, err, want)
		}
	}
	// 2020-01-01 … 2020-02-14: January and February.
	for i := 0; i < 45; i++ {
		commitTiny(t, c, i)
	}
	compact(true)
	jan, feb := 2020*12, 2020*12+1
	first := layout()
	if len(first) != 2 || len(first[jan]) != 1 || len(first[feb]) != 1 {
		t.Fatalf("after compaction: %d groups (%d January, %d February manifests), want one manifest per month", len(first), len(first[jan]), len(first[feb]))
	}
	// Eight more days of February: not above the threshold yet.
	for i := 45; i < 53; i++ {
		commitTiny(t, c, i)
	}
	compact(false)
	commitTiny(t, c, 53)
	compact(true)
	second := layout()
	if len(second) != 2 || len(second[feb]) != 1 || second[jan][0].FilePath() != first[jan][0].FilePath() {
		t.Fatalf("after the second compaction: %d groups; January's manifest rewritten: %v", len(second), second[jan][0].FilePath() != first[jan][0].FilePath())
	}
	if second[feb][0].FilePath() == first[feb][0].FilePath() || second[feb][0].ExistingDataFiles() != 23 {
		t.Errorf("February's manifest: %s with %d files, want a new one with 23", second[feb][0].FilePath(), second[feb][0].ExistingDataFiles())
	}
	tbl, err := cat.Iceberg().LoadTable(ctx, cat.Ident())
	if err != nil {
		t.Fatal(err)
	}
	if got := branchRows(t, tbl, "b"); got != 54 {
		t.Errorf("branch has %d rows, want 54", got)
	}
	state, err := LoadState(tbl, "b")
	if err != nil || state.SetAside != "" || len(state.Checkpoints) != 54 {
		t.Fatalf("state after compactions: %d checkpoints, set aside %q, err %v", len(state.Checkpoints), state.SetAside, err)
	}
	// The commit after a compaction reads and replaces a day's files through
	// the month's manifest.
	files, err := PartitionFiles(ctx, tbl, "b", iceberg.Date(features.MustParseDate("2020-01-15")))
	if err != nil || len(files) != 1 {
		t.Fatalf("files of 2020-01-15: %d, err %v", len(files), err)
	}
}

// A commit that changes one checkpoint encodes only that day's month; the
// changes must be those a comparison of every checkpoint finds.
func TestEncodeOneDayMatchesFullComparison(t *testing.T) {
	base := NewState("b")
	for i := 0; i < 70; i++ {
		day := (features.MustParseDate("2020-01-01") + features.Date(i)).String()
		base.Checkpoints[day] = Checkpoint{Logic: "l", Fingerprint: fmt.Sprint(i), Attempt: fmt.Sprint("a", i), Seq: int64(i + 1)}
	}
	base.Checkpoints["2020-05-09"] = Checkpoint{Logic: "l", Fingerprint: "alone in its month"}
	stored, err := encodeState(iceberg.Properties{}, "b", base, "")
	if err != nil {
		t.Fatal(err)
	}
	props := stored.Set
	for _, tc := range []struct {
		name, day string
		change    func(s *State)
	}{
		{"unchanged", "2020-01-05", func(*State) {}},
		{"a day recomputed", "2020-02-03", func(s *State) { s.Checkpoints["2020-02-03"] = Checkpoint{Logic: "l", Fingerprint: "new"} }},
		{"a new day in a stored month", "2020-03-20", func(s *State) { s.Checkpoints["2020-03-20"] = Checkpoint{Logic: "l", Fingerprint: "x"} }},
		{"a new month", "2020-07-01", func(s *State) { s.Checkpoints["2020-07-01"] = Checkpoint{Logic: "l", Fingerprint: "y"} }},
		{"a day dropped", "2020-01-31", func(s *State) { delete(s.Checkpoints, "2020-01-31") }},
		{"a month's only day dropped", "2020-05-09", func(s *State) { delete(s.Checkpoints, "2020-05-09") }},
		{"a failure cleared", "2020-02-10", func(s *State) {
			s.Checkpoints["2020-02-10"] = Checkpoint{Logic: "l", Fingerprint: "z"}
			s.Failures = map[string]Failure{}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base.Clone()
			s.Failures["2020-02-10"] = Failure{Error: "boom"}
			tc.change(s)
			full, err := encodeState(props, "b", s, "")
			if err != nil {
				t.Fatal(err)
			}
			one, err := encodeState(props, "b", s, tc.day)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(full.Remove)
			slices.Sort(one.Remove)
			if !maps.Equal(full.Set, one.Set) || !slices.Equal(full.Remove, one.Remove) {
				t.Errorf("one day: set %v, remove %v; full comparison: set %v, remove %v", slices.Sorted(maps.Keys(one.Set)), one.Remove, slices.Sorted(maps.Keys(full.Set)), full.Remove)
			}
		})
	}
}
