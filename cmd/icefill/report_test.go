package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/golden"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
	"github.com/icefill/icefill/source"
	"github.com/icefill/icefill/validate"
)

var (
	at      = time.Date(2024, 6, 1, 12, 30, 0, 0, time.UTC)
	d1, d2  = features.MustParseDate("2024-05-01"), features.MustParseDate("2024-05-02")
	aPlan   = &snapshots.Plan{From: "2024-05-01", To: "2024-05-10", Logic: "clv-corrected/1", Source: "./events", Partitions: 10}
	anEvent = snapshots.Event{Kind: "promote", Method: "rebase", Branch: "clv-fix", From: 11, To: 22,
		Tag: "pre-promote-clv-fix-20240601T123000Z-11", Partitions: []string{"2024-05-01", "2024-05-02"}, At: at.UnixMilli(), By: "ana@host"}
)

// reports are the text reports of every command, from fixed values.
func reports() map[string]printable {
	runRes := &rewrite.RunResult{RunID: "20240601T123000Z-abcdef",
		Plan:      &rewrite.Plan{Partitions: []rewrite.PlannedPartition{{Day: d2, Status: rewrite.StatusDone}, {Day: d1, Status: rewrite.StatusTodo}}},
		Committed: []features.Date{d1}, Events: 12345, OutputRows: 2345, Elapsed: 1500 * time.Millisecond, Recovered: 1,
		Failed: []rewrite.PartitionFailure{{Day: d2, Err: errors.New("source file x is corrupt")}}}
	verified := &rewrite.RunResult{RunID: "20240601T123000Z-abcdef", Plan: &rewrite.Plan{Partitions: []rewrite.PlannedPartition{{Day: d1, Status: rewrite.StatusFilesBad}}},
		Committed: []features.Date{d1}, SetAsideCheckpoints: 2, SetAside: "the branch head moved past the checkpoints",
		Bad: map[string]string{"2024-05-01": "data file x.parquet is missing"}}
	plan := &rewrite.Plan{Partitions: []rewrite.PlannedPartition{
		{Day: d2, Status: rewrite.StatusDone, Files: 3, Bytes: 98765},
		{Day: d1, Status: rewrite.StatusTodo, Files: 0, MissingInput: true}},
		MissingPartitions: []features.Date{d1}}
	st := &rewrite.Status{Table: "analytics.clv_daily", Branch: "clv-fix", Exists: true, HeadID: 42, Plan: aPlan,
		Done: 4, Total: 10, Remaining: 6, Events: 100000, OutputRows: 9000, LastCommit: at,
		PartitionsPerHour: 120, EventsPerSecond: 3000.4, ETA: 45 * time.Second, StaleLogic: 1,
		Logics: map[string]int{"clv-corrected/1": 3, "clv-legacy/1": 1}, SetAsideCheckpoints: 2, SetAside: "the branch was recreated",
		Failed: []rewrite.FailedPartition{{Day: "2024-05-03", Error: "boom", RunID: "r1", At: at}}}
	gc := &snapshots.GCResult{Scanned: 10, Referenced: 7, Young: 1, Deleted: 2,
		Orphans: []snapshots.Orphan{{}, {}}}
	gc.Orphans[0].URL, gc.Orphans[0].Size, gc.Orphans[0].ModTime = "file:///wh/data/a.parquet", 2048, at.Add(-2*time.Hour)
	gc.Orphans[1].URL, gc.Orphans[1].Size, gc.Orphans[1].ModTime = "file:///wh/data/b.parquet", 5<<20, at.Add(-90*time.Minute)
	rollback := anEvent
	rollback.Kind, rollback.Method, rollback.Branch = "rollback", "restore", ""
	skipped := anEvent
	skipped.Skipped, skipped.RolledBack = true, true
	val := &snapshots.Validation{Candidate: "clv-fix", CandidateSnapshot: 42, At: at.UnixMilli(), By: "ana@host"}
	return map[string]printable{
		"run":             newRunReport("embedded SQLite catalog \"icefill\" at /data/catalog.db", "clv-fix", nil, false, runRes),
		"run-catch-up":    newRunReport("embedded SQLite catalog", "clv-fix", []string{"2024-05-02", "2024-05-01"}, false, runRes),
		"run-verify":      newRunReport("embedded SQLite catalog", "clv-fix", nil, true, verified),
		"run-caught-up":   newRunReport("", "clv-fix", []string{}, false, nil),
		"plan":            newPlanReport(plan, map[features.Date]rewrite.Estimate{d1: {WindowRows: 16000, Spill: true, Buckets: 4}}),
		"status":          newStatusReport(st),
		"status-new":      newStatusReport(&rewrite.Status{Table: "analytics.clv_daily", Branch: "nope"}),
		"gc":              newGCReport(gc, false, time.Hour, at),
		"gc-dry-run":      newGCReport(gc, true, time.Hour, at),
		"totals":          &totalsReport{Refs: []*validate.Totals{{Ref: "main", SnapshotID: 11, Partitions: 5, Rows: 1499, Customers: 779, Orders: 2079, Gross: 13598492, Net: 13598492}, {Ref: "clv-fix", SnapshotID: 42, Partitions: 5, Rows: 2070, Customers: 838, Orders: 2037, Gross: 13364933, Refund: 2827289, Net: 10537644, WithFeatures: 2070}}},
		"promote":         newPublishReport(anEvent, []string{"snapshot expiry may remove the tag"}),
		"promote-skipped": newPublishReport(skipped, nil),
		"rollback":        newPublishReport(rollback, nil),
		"history": &historyReport{Table: "analytics.clv_daily",
			Refs: []refInfo{{Name: "clv-fix", Type: "branch", Snapshot: 42, Status: newStatusReport(st), Validation: val},
				{Name: "main", Type: "branch", Snapshot: 22}, {Name: anEvent.Tag, Type: "tag", Snapshot: 11}},
			Events: historyEvents([]snapshots.Event{anEvent, rollback})},
		"history-empty": &historyReport{Table: "analytics.clv_daily", Refs: []refInfo{}, Events: historyEvents(nil)},
		"compute": &computeSummary{Date: "2024-05-01", Logic: "corrected", LogicVersion: "clv-corrected/1", Fingerprint: "3f8a",
			InputRows: 2079, Rejected: 2, RejectReasons: nil, OutputRows: 412, Totals: features.Totals{Orders: 401, Gross: 2462984, Refund: 658861, Net: 1804123}, Seconds: 0.05},
	}
}

// TestTextReports pins every command's text output (testdata/*.golden;
// go test -run TestTextReports -update rewrites them).
func TestTextReports(t *testing.T) {
	for name, r := range reports() {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := r.writeText(&b); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, name, b.Bytes())
		})
	}
}

// TestJSONReports: each report is one JSON document whose arrays are []
// even when empty; the only nulls are the documented optional objects.
func TestJSONReports(t *testing.T) {
	nullable := map[string]bool{"plan": true, "last_commit": true, "validation": true, "status": true}
	all := reports()
	all["run-empty"] = newRunReport("", "b", nil, false, &rewrite.RunResult{Plan: &rewrite.Plan{}})
	all["plan-empty"] = newPlanReport(&rewrite.Plan{}, nil)
	all["status-empty"] = newStatusReport(&rewrite.Status{})
	all["gc-empty"] = newGCReport(&snapshots.GCResult{}, false, time.Hour, at)
	all["promote-empty"] = newPublishReport(snapshots.Event{}, nil)
	all["compute-empty"] = &computeSummary{RejectReasons: orEmpty[source.ReasonCount](nil)}
	for name, r := range all {
		var b bytes.Buffer
		if err := writeJSON(&b, r); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(&b)
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%s: not one JSON object: %v", name, err)
		}
		if dec.More() {
			t.Fatalf("%s: more than one JSON document", name)
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch v := v.(type) {
			case nil:
				key := path[strings.LastIndex(path, ".")+1:]
				if !nullable[key] {
					t.Errorf("%s: %s is null", name, path)
				}
			case map[string]any:
				for k, x := range v {
					walk(path+"."+k, x)
				}
			case []any:
				for _, x := range v {
					walk(path+"[]", x)
				}
			}
		}
		walk(name, doc)
	}
	// Every field is present, even when zero: spot-check the fields docs/cli.md names.
	for name, keys := range map[string][]string{
		"status-empty":  {"exists", "done", "total", "remaining", "failed", "events", "output_rows", "last_commit", "eta_seconds", "plan", "head_snapshot_id"},
		"plan-empty":    {"partitions", "missing_partition_days", "missing_lookback_days", "to_compute", "to_compute_bytes"},
		"run-empty":     {"run_id", "committed", "failed", "catch_up_days", "events"},
		"gc-empty":      {"files", "deleted", "data_files"},
		"promote-empty": {"tag", "partitions", "validation", "retention_risks", "branch"},
		"compute-empty": {"reject_reasons", "output", "rejects"},
	} {
		var b bytes.Buffer
		writeJSON(&b, all[name])
		var doc map[string]any
		json.Unmarshal(b.Bytes(), &doc)
		for _, k := range keys {
			if _, ok := doc[k]; !ok {
				t.Errorf("%s: field %q missing from %s", name, k, b.String())
			}
		}
	}
}
