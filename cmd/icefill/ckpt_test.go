package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/validate"
)

// Regression tests for what checkpoints mean (issue 8, items 7, 8 and 9):
// a checkpoint counts only on the branch it describes, committed files
// hold the rows computed, and gc never deletes what a live writer commits.
// Each drives the real binary and asserts rows, not only exit codes.

// shortRange is three days of the crash tests' source.
func shortRange(branch string, extra ...string) []string {
	return append([]string{"run", "--source", crashSrc, "--from", (crashFrom + 3).String(), "--to", (crashFrom + 5).String(),
		"--branch", branch, "--workers", "2"}, extra...)
}

// openCat opens the embedded catalog of dir.
func openCat(t *testing.T, dir string) *catalog.Catalog {
	t.Helper()
	cfg := catalog.DefaultConfig()
	cfg.SQLitePath, cfg.Warehouse = filepath.Join(dir, "catalog.db"), filepath.Join(dir, "warehouse")
	cat, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	return cat
}

func loadTable(t *testing.T, dir string) (*catalog.Catalog, *table.Table) {
	t.Helper()
	cat := openCat(t, dir)
	tbl, err := cat.LoadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cat, tbl
}

// refRows reads ref's rows, sorted, after checking that every data file
// any snapshot of the table references exists on storage.
func refRows(t *testing.T, dir, ref string) []string {
	t.Helper()
	_, tbl := loadTable(t, dir)
	assertFilesExist(t, tbl)
	rows, err := validate.RefRows(context.Background(), tbl, ref)
	if err != nil {
		t.Fatalf("read %s: %v", ref, err)
	}
	return rows
}

// assertFilesExist fails when a ref's head references a data file that is
// not on storage.
func assertFilesExist(t *testing.T, tbl *table.Table) {
	t.Helper()
	if missing := filesNotOnStorage(t, tbl); len(missing) > 0 {
		t.Fatalf("data files not on storage as committed: %v", missing)
	}
}

// filesNotOnStorage lists the data files some ref's head references that
// are not on storage as committed.
func filesNotOnStorage(t *testing.T, tbl *table.Table) []string {
	t.Helper()
	df, err := snapshots.NewDataFiles(context.Background(), tbl.Location(), objstore.S3Options{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for name, ref := range tbl.Metadata().Refs() {
		byDay, err := snapshots.FilesByPartition(context.Background(), tbl, ref.SnapshotID)
		if err != nil {
			t.Fatal(err)
		}
		for _, files := range byDay {
			problems, _, err := df.Check(context.Background(), files)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				out = append(out, "ref "+name+": "+p.String())
			}
		}
	}
	return out
}

// setRef points ref (a branch) at snapshot id, or drops it when id is 0,
// as Spark's ALTER TABLE … DROP BRANCH or a ref expiry would.
func setRef(t *testing.T, dir, ref string, id int64) {
	t.Helper()
	cat, tbl := loadTable(t, dir)
	upd := []table.Update{table.NewRemoveSnapshotRefUpdate(ref)}
	if id != 0 {
		upd = []table.Update{table.NewSetSnapshotRefUpdate(ref, id, table.BranchRef, 0, 0, 0)}
	}
	if _, _, err := cat.Iceberg().CommitTable(context.Background(), cat.Ident(),
		[]table.Requirement{table.AssertTableUUID(tbl.Metadata().TableUUID())}, upd); err != nil {
		t.Fatalf("set ref %s: %v", ref, err)
	}
}

func headOf(t *testing.T, dir, ref string) int64 {
	t.Helper()
	_, tbl := loadTable(t, dir)
	s := tbl.SnapshotByName(ref)
	if s == nil {
		t.Fatalf("no ref %s", ref)
	}
	return s.SnapshotID
}

func mustRun(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	code, _, out := icefill(t, dir, env, 0, args...)
	if code != 0 {
		t.Fatalf("icefill %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

func rowsEqual(t *testing.T, label string, got, want []string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the reference has no rows: the test proves nothing", label)
	}
	sameRows(t, label, got, want)
}

// Item 7: a re-created branch inherits "done" checkpoints. Drop the branch
// (as DROP BRANCH or a ref expiry would) after main got other rows; the
// next run must recompute every day, not print "3 already done" over a
// branch that holds main's rows.
func TestRecreatedBranchStartsFromNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	dir := t.TempDir()
	// main holds the legacy rows of the same days.
	mustRun(t, dir, nil, shortRange("legacy", "--logic", "legacy")...)
	setRef(t, dir, table.MainBranch, headOf(t, dir, "legacy"))
	legacy := refRows(t, dir, table.MainBranch)

	mustRun(t, dir, nil, shortRange("clv-fix")...)
	want := refRows(t, dir, "clv-fix")
	if strings.Join(want, "\n") == strings.Join(legacy, "\n") {
		t.Fatal("corrected and legacy rows are the same: the test proves nothing")
	}

	setRef(t, dir, "clv-fix", 0)
	code, _, out := icefill(t, dir, nil, 0, "status", "--branch", "clv-fix")
	if !strings.Contains(out, "done      0 / ") || !strings.Contains(out, "3 recorded checkpoints do not count") {
		t.Fatalf("status of a dropped branch must show nothing done (exit %d):\n%s", code, out)
	}
	out = mustRun(t, dir, nil, shortRange("clv-fix")...)
	if !strings.Contains(out, "0 already done, 3 committed now") {
		t.Fatalf("the re-created branch did not start from nothing:\n%s", out)
	}
	rowsEqual(t, "re-created branch", refRows(t, dir, "clv-fix"), want)

	// Moved by another tool to a snapshot its checkpoints do not describe
	// (main's legacy head): the same.
	setRef(t, dir, "clv-fix", headOf(t, dir, table.MainBranch))
	out = mustRun(t, dir, nil, shortRange("clv-fix")...)
	if !strings.Contains(out, "0 already done, 3 committed now") {
		t.Fatalf("a branch moved elsewhere kept its checkpoints:\n%s", out)
	}
	rowsEqual(t, "moved branch", refRows(t, dir, "clv-fix"), want)

	// Untouched, the checkpoints hold: nothing is recomputed.
	out = mustRun(t, dir, nil, shortRange("clv-fix")...)
	if !strings.Contains(out, "3 already done, 0 committed now") {
		t.Fatalf("checkpoints of an untouched branch were not used:\n%s", out)
	}
}

// Item 10 (the part on logics): a run with another --logic on a branch
// refuses (exit 4) unless --allow-mixed-logic, and status never shows a
// mixed branch as complete.
func TestMixedLogicIsRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	dir := t.TempDir()
	mustRun(t, dir, nil, shortRange("clv-fix", "--logic", "legacy")...)
	before := refRows(t, dir, "clv-fix")

	wider := []string{"run", "--source", crashSrc, "--from", (crashFrom + 4).String(), "--to", (crashFrom + 6).String(), "--branch", "clv-fix", "--workers", "2"}
	code, _, out := icefill(t, dir, nil, 0, wider...)
	if code != exitRefused || !strings.Contains(out, "clv-legacy/1") {
		t.Fatalf("a run of another logic: exit %d, want %d naming the branch's logic:\n%s", code, exitRefused, out)
	}
	sameRows(t, "after the refusal", refRows(t, dir, "clv-fix"), before)

	mustRun(t, dir, nil, append(wider, "--allow-mixed-logic")...)
	out = mustRun(t, dir, nil, "status", "--branch", "clv-fix")
	if strings.Contains(out, "(100.0%)") || !strings.Contains(out, "MIXED") {
		t.Fatalf("status of a branch mixing logics:\n%s", out)
	}
}

// Item 9: the data-file writer returns fewer rows than computed (here: no
// file and no error, as on a full disk). Nothing may be committed for the
// day; the run fails it; the next run completes the branch exactly.
func TestLostDataFilesAreNeverCommitted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	ref := t.TempDir()
	mustRun(t, ref, nil, shortRange("clv-fix")...)
	want := refRows(t, ref, "clv-fix")

	dir := t.TempDir()
	code, _, out := icefill(t, dir, []string{"ICEFILL_FAULT=data-written:2:lose"}, 0, shortRange("clv-fix", "--workers", "1")...)
	if code != exitFailed || !strings.Contains(out, "rows computed") {
		t.Fatalf("lost data files: exit %d, want %d and the reason:\n%s", code, exitFailed, out)
	}
	_, tbl := loadTable(t, dir)
	state, err := snapshots.LoadState(tbl, "clv-fix")
	if err != nil {
		t.Fatal(err)
	}
	lost := (crashFrom + 4).String() // newest first: the second partition
	if cp, ok := state.Checkpoints[lost]; ok {
		t.Fatalf("partition %s has a checkpoint (o=%d) although its files were lost", lost, cp.OutputRows)
	}
	if _, ok := state.Failures[lost]; !ok || len(state.Checkpoints) != 2 {
		t.Fatalf("want %s failed and 2 checkpoints, got %d checkpoints, failures %v", lost, len(state.Checkpoints), state.Failures)
	}
	out = mustRun(t, dir, nil, shortRange("clv-fix")...)
	if !strings.Contains(out, "2 already done, 1 committed now") {
		t.Fatalf("the re-run did not recompute exactly the failed day:\n%s", out)
	}
	rowsEqual(t, "after the re-run", refRows(t, dir, "clv-fix"), want)
}

// run --verify: a checkpoint whose data file went missing from storage is
// found and recomputed; a plain run would believe it.
func TestVerifyRecomputesMissingFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	dir := t.TempDir()
	mustRun(t, dir, nil, shortRange("clv-fix")...)
	want := refRows(t, dir, "clv-fix")
	_, tbl := loadTable(t, dir)
	byDay, err := snapshots.FilesByPartition(context.Background(), tbl, tbl.SnapshotByName("clv-fix").SnapshotID)
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	for _, files := range byDay {
		victim = strings.TrimPrefix(files[0].FilePath(), "file://")
		break
	}
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, dir, nil, shortRange("clv-fix")...)
	if !strings.Contains(out, "3 already done") {
		t.Fatalf("without --verify the checkpoints are believed:\n%s", out)
	}
	out = mustRun(t, dir, nil, shortRange("clv-fix", "--verify")...)
	if !strings.Contains(out, "2 already done, 1 committed now") || !strings.Contains(out, "missing from storage") {
		t.Fatalf("--verify did not find and recompute the day with the missing file:\n%s", out)
	}
	rowsEqual(t, "after --verify", refRows(t, dir, "clv-fix"), want)
}

// Item 8: a writer stopped (SIGSTOP: a long GC pause, a preempted VM) after
// writing its data files and before committing them, past gc's --min-age,
// while gc runs and deletes them. Resumed (SIGCONT), it must not commit
// the deleted files: the branch must read exactly as a clean run's.
func TestPausedWriterNeverCommitsFilesGCDeleted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	ref := t.TempDir()
	mustRun(t, ref, nil, shortRange("clv-fix")...)
	want := refRows(t, ref, "clv-fix")

	dir := t.TempDir()
	args := append(shortRange("clv-fix", "--workers", "1"), "--catalog-db", filepath.Join(dir, "catalog.db"), "--warehouse", filepath.Join(dir, "warehouse"))
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "ICEFILL_LOG_LEVEL=warn", "ICEFILL_FAULT=before-commit:2:stop")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if !waitStopped(t, cmd.Process.Pid) {
		t.Fatalf("the writer never stopped at its fault point:\n%s", out.String())
	}
	time.Sleep(2500 * time.Millisecond) // past gc's --min-age by any clock
	gcOut := mustRun(t, dir, nil, "gc", "--min-age", "1s")
	if !strings.Contains(gcOut, "deleted ") {
		t.Fatalf("gc deleted nothing: the stopped writer's files were not at risk, the test proves nothing:\n%s", gcOut)
	}
	if err := cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the resumed writer: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "3 committed now") {
		t.Fatalf("the resumed writer did not commit every day:\n%s", out.String())
	}
	rowsEqual(t, "after pause, gc and resume", refRows(t, dir, "clv-fix"), want)
}

// waitStopped waits until process pid is stopped (state T in /proc): true;
// false when it exited instead (a zombie until reaped).
func waitStopped(t *testing.T, pid int) bool {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// The state follows the command name in parentheses.
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 {
			switch f[0] {
			case "T", "t":
				return true
			case "Z", "X":
				return false
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the writer neither stopped nor exited")
	return false
}
