package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestPeakRSSWithinSmallBudget runs the external path through the binary
// under the smallest budget accepted, 256 MiB, on windows of 2.4 M events
// (their days would take about 700 MiB decoded in memory), and checks the
// process's peak resident memory against the budget. It measures memory,
// not time: the figure does not move with the machine's load. The run case
// is the whole backfill, where a partition's data files are written and
// committed while the next partition is computed: the budget plans for
// the external path only, so this is where an overrun would show.
func TestPeakRSSWithinSmallBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("generates and computes 2.4 M-event windows")
	}
	for _, tc := range []struct {
		mode       string
		partitions int
	}{
		{"compute", 1},
		{"run", 3},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"bench", "--mode", tc.mode, "--days", fmt.Sprint(tc.partitions), "--events-per-day", "300000",
				"--dir", dir, "--repeat", "1", "--workers", "2"}
			if out, err := exec.Command(binary, append(args, "--generate-only")...).CombinedOutput(); err != nil {
				t.Fatalf("generate: %v: %s", err, out)
			}
			const limit = 256 << 20
			out, err := exec.Command(binary, append(args, "--memory-limit", "256MiB", "--json")...).Output()
			if err != nil {
				t.Fatalf("bench: %v: %s", err, out)
			}
			var r benchResult
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, `"median"`) {
					if err := json.Unmarshal([]byte(line), &r); err != nil {
						t.Fatal(err)
					}
				}
			}
			if r.Spilled != int64(tc.partitions) || r.OutputRows == 0 || r.Events < int64(tc.partitions)*200_000 {
				t.Fatalf("want %d partitions computed on the external path with rows, got %+v", tc.partitions, r)
			}
			t.Logf("peak RSS %d MiB under --memory-limit 256MiB (%d spill bytes)", r.PeakRSSBytes>>20, r.SpillBytes)
			if r.PeakRSSBytes > limit {
				t.Fatalf("peak RSS %d MiB over the 256 MiB budget", r.PeakRSSBytes>>20)
			}
		})
	}
}

// TestRunTooLargeForBudget runs partitions the budget cannot compute: a
// window cut into more buckets than the external path allows (the plan
// knows it) and customers too heavy for the budget (known only while
// computing). Retrying cannot help either, so run must exit 2 with the
// advice to raise the budget, not 1 with a retry hint; a window known too
// large up front must stop the run before anything is committed.
func TestRunTooLargeForBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary")
	}
	for _, tc := range []struct {
		name, want string
		env        []string
		upFront    bool
	}{
		{"window", "too large for the memory budget", []string{"ICEFILL_SPILL_BUCKETS=70000"}, true},
		{"heavy customer", "raise --memory-limit to at least", []string{"ICEFILL_SPILL_BUCKETS=4", "ICEFILL_SPILL_EVENT_BYTES=1073741824"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			code, _, out := icefill(t, dir, tc.env, 0, append(runArgs(), "--spill-dir", t.TempDir(), "--memory-limit", "256MiB")...)
			if code != exitUsage || !strings.Contains(out, tc.want) || strings.Contains(out, "retry") {
				t.Fatalf("exit %d, want %d saying %q and no retry hint:\n%s", code, exitUsage, tc.want, out)
			}
			if tc.upFront && !strings.Contains(out, " 0 committed now, 0 failed") {
				t.Fatalf("partitions computed although the plan knew the window too large:\n%s", out)
			}
		})
	}
}

// TestLowDefaultBudgetWarns: a default budget below the minimum (60 % of
// a small container) is used with a warning that says what to do; a
// budget at the minimum or above has none.
func TestLowDefaultBudgetWarns(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		warn  bool
	}{{150 << 20, true}, {256<<20 - 1, true}, {256 << 20, false}, {4 << 30, false}} {
		msg := lowDefault(tc.limit, "60% of 250 MiB (cgroup limit)")
		if tc.warn != (msg != "") || tc.warn && (!strings.Contains(msg, "--memory-limit to at least 256 MiB") || !strings.Contains(msg, "cgroup limit")) {
			t.Errorf("budget %d: warning %q", tc.limit, msg)
		}
	}
}
