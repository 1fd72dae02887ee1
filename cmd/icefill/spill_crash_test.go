package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// spillLeft lists what the spill folders under base still hold, the lock
// files of folders aside.
func spillLeft(t *testing.T, base string) (dirs, files int) {
	t.Helper()
	root := filepath.Join(base, "icefill-spill")
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		dirs++
		filepath.WalkDir(filepath.Join(root, e.Name()), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && d.Name() != "lock" {
				files++
			}
			return nil
		})
	}
	return dirs, files
}

// TestSpillKilledThenRerun runs every partition on the external path (16
// buckets), kills the process with SIGKILL while it has spill files on
// disk, and runs again: the branch must hold the rows of an in-memory run,
// and the killed process's spill folder must be gone.
func TestSpillKilledThenRerun(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests run real processes")
	}
	want, _ := cleanRun(t)
	env := []string{"ICEFILL_SPILL_BUCKETS=16"}
	// How long a spilling run takes, to aim the kills.
	probe, base := t.TempDir(), t.TempDir()
	start := time.Now()
	if code, _, out := icefill(t, probe, env, 0, append(runArgs(), "--spill-dir", base)...); code != 0 {
		t.Fatalf("spilling run failed (%d): %s", code, out)
	}
	took := time.Since(start)
	sameRows(t, "spilling run", branchRows(t, probe), want)
	if d, f := spillLeft(t, base); d != 0 || f != 0 {
		t.Fatalf("a finished run left %d spill folders, %d files", d, f)
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	dir := t.TempDir()
	caught := false
	for try := 0; try < 30 && !caught; try++ {
		after := time.Duration(rng.Int64N(int64(took)))
		code, killed, out := icefill(t, dir, env, after, append(runArgs(), "--spill-dir", base)...)
		if !killed {
			if code != 0 {
				t.Fatalf("run failed (%d): %s", code, out)
			}
			dir = t.TempDir() // finished first: start over
			continue
		}
		_, files := spillLeft(t, base)
		caught = files > 0
	}
	if !caught {
		t.Fatal("no kill landed while spill files were on disk: the test proves nothing")
	}
	code, _, out := icefill(t, dir, env, 0, append(runArgs(), "--spill-dir", base, "--gc-min-age", "0s")...)
	if code != 0 {
		t.Fatalf("re-run failed (%d): %s", code, out)
	}
	sameRows(t, "after a kill while spilling", branchRows(t, dir), want)
	if d, f := spillLeft(t, base); d != 0 || f != 0 {
		t.Fatalf("after the re-run %d spill folders, %d files remain", d, f)
	}
}

// TestSpillInterrupted: SIGINT while spilling removes the spill files.
func TestSpillInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("runs real processes")
	}
	base := t.TempDir()
	for try := 0; try < 20; try++ {
		cmd := exec.Command(binary, append(runArgs(), "--spill-dir", base,
			"--catalog-db", filepath.Join(t.TempDir(), "catalog.db"), "--warehouse", filepath.Join(t.TempDir(), "wh"))...)
		cmd.Env = append(os.Environ(), "ICEFILL_LOG_LEVEL=warn", "ICEFILL_SPILL_BUCKETS=16")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until spill files exist, then interrupt.
		seen := false
		for i := 0; i < 2000 && !seen; i++ {
			_, f := spillLeft(t, base)
			seen = f > 0
			if !seen {
				time.Sleep(2 * time.Millisecond)
			}
		}
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		if !seen {
			continue
		}
		if d, f := spillLeft(t, base); d != 0 || f != 0 {
			t.Fatalf("after SIGINT %d spill folders, %d files remain", d, f)
		}
		return
	}
	t.Fatal("never saw spill files before the run ended: the test proves nothing")
}
