package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEstimateJobArithmetic(t *testing.T) {
	const gib = 1 << 30
	// 10 core-seconds per GiB; 1,825 partitions of 1 GiB.
	b := costBasis{CoreSeconds: 10, Bytes: gib}
	e := estimateJob(b, 1825, 1825*gib, jobShape{Workers: 150, Cores: 4, Deadline: 100 * time.Second, ReadBudget: 10 * gib})
	if math.Abs(e.CoreHours-18250.0/3600) > 1e-9 {
		t.Errorf("core-hours %v, want %v", e.CoreHours, 18250.0/3600)
	}
	// 600 slots: 4 rounds of 10 s, more than 18,250/600 = 30.4 s.
	if math.Abs(e.WallHours*3600-40) > 1e-9 {
		t.Errorf("wall %v s, want 40", e.WallHours*3600)
	}
	if math.Abs(e.ReadBytesPerSecond-1825*gib/40.0) > 1 {
		t.Errorf("read rate %v, want %v", e.ReadBytesPerSecond, 1825*gib/40.0)
	}
	// 46 workers = 184 slots: 10 rounds of 10 s = 100 s; 45 would take 11.
	if e.WorkersForDeadline != 46 {
		t.Errorf("workers for a 100 s deadline: %d, want 46", e.WorkersForDeadline)
	}
	// A busy worker reads 4 cores x 0.1 GiB/s: 25 fit in 10 GiB/s.
	if e.MaxWorkersInBudget != 25 {
		t.Errorf("workers in the read budget: %d, want 25", e.MaxWorkersInBudget)
	}
	// A deadline shorter than one partition cannot be met.
	if e := estimateJob(b, 1825, 1825*gib, jobShape{Workers: 1, Cores: 1, Deadline: 5 * time.Second}); e.WorkersForDeadline != 0 {
		t.Errorf("a 5 s deadline for 10 s partitions: %d workers, want 0 (impossible)", e.WorkersForDeadline)
	}
}

func TestParseDeadline(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"336h": 336 * time.Hour, "2026-12-21": 13*24*time.Hour + 12*time.Hour, "2026-12-08T00:00:00Z": 12 * time.Hour, "": 0,
	} {
		if got, err := parseDeadline(in, now); err != nil || got != want {
			t.Errorf("parseDeadline(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"2026-12-01", "soon", "-3h"} {
		if _, err := parseDeadline(bad, now); err == nil {
			t.Errorf("parseDeadline(%q) accepted", bad)
		}
	}
}

// plan --estimate through the binary: first by timing a partition (nothing
// is committed yet), then from the durations a real run recorded.
func TestPlanEstimateThroughTheBinary(t *testing.T) {
	dir := t.TempDir()
	planArgs := []string{"plan", "--source", crashSrc, "--from", crashFrom.String(), "--to", crashTo.String(), "--branch", "clv-fix",
		"--estimate", "--json", "--workers-per-job", "3", "--cores-per-worker", "2", "--deadline", "24h", "--read-budget", "1GiB/s"}
	estimate := func(extra ...string) jobEstimate {
		t.Helper()
		code, _, out := icefillStdout(t, dir, append(planArgs, extra...)...)
		if code != 0 {
			t.Fatalf("plan --estimate exited %d: %s", code, out)
		}
		var e jobEstimate
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatalf("plan --estimate --json printed %q: %v", out, err)
		}
		return e
	}
	e := estimate()
	days := int(crashTo-crashFrom) + 1
	if e.Basis.Source != "timing" || e.Basis.Events <= 0 || e.Basis.CoreSeconds <= 0 || e.Partitions != days || e.CoreHours <= 0 ||
		e.WallHours <= 0 || e.WorkersForDeadline < 1 || e.ReadBytesPerSecond <= 0 || e.MaxWorkersInBudget < 1 {
		t.Errorf("estimate by timing: %+v", e)
	}
	if code, _, out := icefill(t, dir, nil, 0, "run", "--source", crashSrc, "--from", crashFrom.String(), "--to", (crashFrom + 3).String(), "--branch", "clv-fix", "--workers", "1"); code != 0 {
		t.Fatalf("run: %d %s", code, out)
	}
	e = estimate("--estimate-from", "checkpoints")
	if e.Basis.Source != "checkpoints" || len(e.Basis.Days) != 4 || e.Partitions != days-4 || e.CoreHours <= 0 {
		t.Errorf("estimate from checkpoints: %+v", e)
	}
	if code, _, out := icefillStdout(t, t.TempDir(), append(planArgs, "--estimate-from", "checkpoints")...); code != 2 {
		t.Errorf("--estimate-from checkpoints without checkpoints: exit %d (%s), want 2", code, out)
	}
}

// icefillStdout runs the binary against the catalog in dir and returns its
// exit code, and its standard output apart from its log.
func icefillStdout(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--catalog-db", filepath.Join(dir, "catalog.db"), "--warehouse", filepath.Join(dir, "warehouse"))...)
	cmd.Env = append(os.Environ(), "ICEFILL_LOG_LEVEL=warn")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), errOut.String(), out.String() + errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, errOut.String(), out.String()
}
