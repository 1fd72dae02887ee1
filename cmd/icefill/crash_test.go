package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/synth"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/validate"
)

// The crash tests run the real binary and kill it with SIGKILL, at chosen
// steps of the commit protocol and at random moments, then resume it and
// demand a branch identical, row for row, to an uninterrupted run's, and no
// data file left that no snapshot references.

var (
	binary    string
	crashSrc  string
	crashFrom = features.MustParseDate("2024-05-01")
	crashTo   = features.MustParseDate("2024-05-10")
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "icefill-cmd-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "icefill")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("build icefill: " + err.Error())
	}
	crashSrc = filepath.Join(dir, "events")
	st, _ := objstore.NewLocal(crashSrc)
	if _, err := synth.Generate(context.Background(), st, synth.Config{From: crashFrom - 7, To: crashTo, EventsPerDay: 2000, Seed: 11, V2From: crashFrom + 3, Customers: 400}, nil); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// icefill runs the binary against the catalog in dir; it returns the exit
// status and whether the process died of SIGKILL.
func icefill(t *testing.T, dir string, env []string, killAfter time.Duration, args ...string) (int, bool, string) {
	t.Helper()
	if len(args) > 0 && args[0] != "compute" && args[0] != "gen-events" {
		args = append(args, "--catalog-db", filepath.Join(dir, "catalog.db"), "--warehouse", filepath.Join(dir, "warehouse"))
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(append(os.Environ(), "ICEFILL_LOG_LEVEL=warn"), env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if killAfter > 0 {
		timer := time.AfterFunc(killAfter, func() { cmd.Process.Signal(syscall.SIGKILL) })
		defer timer.Stop()
	}
	err := cmd.Wait()
	if err == nil {
		return 0, false, out.String()
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatal(err)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	return ee.ExitCode(), ws.Signaled() && ws.Signal() == syscall.SIGKILL, out.String()
}

func runArgs() []string {
	return []string{"run", "--source", crashSrc, "--from", crashFrom.String(), "--to", crashTo.String(), "--branch", "clv-fix", "--workers", "2"}
}

func branchRows(t *testing.T, dir string) []string {
	t.Helper()
	cfg := catalog.DefaultConfig()
	cfg.SQLitePath, cfg.Warehouse = filepath.Join(dir, "catalog.db"), filepath.Join(dir, "warehouse")
	cat, err := catalog.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	tbl, err := cat.LoadTable(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rows, err := validate.RefRows(context.Background(), tbl, "clv-fix")
	if err != nil {
		t.Fatal(err)
	}
	gc, err := snapshots.CollectGarbage(context.Background(), cat.Iceberg(), cat.Ident(), snapshots.GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(gc.Orphans) > 0 {
		t.Fatalf("%d unreferenced data files remain after the resumed run", len(gc.Orphans))
	}
	return rows
}

// cleanRun is the uninterrupted reference run; it also says how long a
// whole run takes, so random kills can land inside one.
func cleanRun(t *testing.T) ([]string, time.Duration) {
	t.Helper()
	dir := t.TempDir()
	start := time.Now()
	if code, _, out := icefill(t, dir, nil, 0, runArgs()...); code != 0 {
		t.Fatalf("clean run failed (%d): %s", code, out)
	}
	took := time.Since(start)
	rows := branchRows(t, dir)
	if len(rows) == 0 {
		t.Fatal("clean run wrote no rows")
	}
	return rows, took
}

// resumeUntilDone re-runs until a run exits 0 (each resume deletes the
// orphans of the killed attempts: only one process runs at a time here).
func resumeUntilDone(t *testing.T, dir string) {
	t.Helper()
	code, _, out := icefill(t, dir, nil, 0, append(runArgs(), "--gc-min-age", "0s")...)
	if code != 0 {
		t.Fatalf("resume failed (%d): %s", code, out)
	}
}

func sameRows(t *testing.T, label string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows, want %d", label, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: row %d:\n got  %s\n want %s", label, i, got[i], want[i])
		}
	}
}

func TestKillAtProtocolSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests run real processes")
	}
	want, _ := cleanRun(t)
	for _, fault := range []string{"before-commit:1", "before-commit:6", "after-commit:3", "after-commit:10"} {
		t.Run(fault, func(t *testing.T) {
			dir := t.TempDir()
			_, killed, out := icefill(t, dir, []string{"ICEFILL_FAULT=" + fault}, 0, runArgs()...)
			if !killed {
				t.Fatalf("the process was not killed at %s: %s", fault, out)
			}
			resumeUntilDone(t, dir)
			sameRows(t, "after kill at "+fault, branchRows(t, dir), want)
		})
	}
}

func TestKillAtRandomMoments(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests run real processes")
	}
	want, took := cleanRun(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, a clean run takes %v", seed, took)
	rng := rand.New(rand.NewPCG(seed, 7))
	for trial := 0; trial < 8; trial++ {
		t.Run(fmt.Sprint(trial), func(t *testing.T) {
			dir := t.TempDir()
			var kills []time.Duration
			window := took
			// Up to 4 kills; a run that finished before its kill shrinks the
			// window to its own duration (the machine's speed varies) and
			// does not count. Bounded either way.
			for tries := 0; len(kills) < 4 && tries < 12; tries++ {
				// Anywhere from start-up to the end of a run: reading, writing
				// data files, committing.
				after := time.Duration(rng.Int64N(int64(window)))
				start := time.Now()
				code, killed, out := icefill(t, dir, nil, after, runArgs()...)
				if killed {
					kills = append(kills, after)
					continue
				}
				if code != 0 {
					t.Fatalf("run failed (%d): %s", code, out)
				}
				if len(kills) > 0 {
					break // the branch is complete: resumed to the end
				}
				// Nothing was written to kill yet? Start over on a fresh catalog.
				window = max(time.Since(start)*9/10, 10*time.Millisecond)
				dir = t.TempDir()
			}
			if len(kills) == 0 {
				t.Fatalf("no kill landed inside the run: the trial proves nothing")
			}
			t.Logf("killed after %v", kills)
			resumeUntilDone(t, dir)
			sameRows(t, fmt.Sprintf("after kills at %v", kills), branchRows(t, dir), want)
		})
	}
}
