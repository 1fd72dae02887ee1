package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

// TestCommandsJSON walks a backfill through every reporting command on
// the real binary, checking each exit code and that --json prints one
// document with the documented fields.
func TestCommandsJSON(t *testing.T) {
	dir := t.TempDir()
	cat := []string{"--catalog-db", filepath.Join(dir, "catalog.db"), "--warehouse", filepath.Join(dir, "warehouse")}
	to := crashFrom.AddDays(2).String()
	rng := func(branch string) []string {
		return []string{"--source", crashSrc, "--from", crashFrom.String(), "--to", to, "--branch", branch}
	}
	step := func(want int, args ...string) map[string]any {
		t.Helper()
		code, stdout, stderr := icefillIn(t, dir, nil, append(append(args, cat...), "--json")...)
		if code != want {
			t.Fatalf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, code, want, stdout, stderr)
		}
		if stdout == "" {
			return nil
		}
		var doc map[string]any
		if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
			t.Fatalf("%v: stdout is not one JSON document: %v\n%s", args, err, stdout)
		}
		return doc
	}
	count := func(doc map[string]any, key string) int {
		t.Helper()
		list, ok := doc[key].([]any)
		if !ok {
			t.Fatalf("%q is not an array in %v", key, doc)
		}
		return len(list)
	}

	// Before anything: plan works, the rest names what is missing.
	if doc := step(exitOK, append([]string{"plan"}, rng("clv-fix")...)...); count(doc, "partitions") != 3 || doc["to_compute"] != 3.0 {
		t.Errorf("plan before any run: %v", doc)
	}
	step(exitUsage, "status", "--branch", "clv-fix")
	step(exitUsage, "history")

	// main holds the legacy logic's rows (the first publication: an empty
	// main has nothing to validate against).
	step(exitOK, append([]string{"run", "--logic", "legacy"}, rng("legacy")...)...)
	if doc := step(exitOK, "promote", "--branch", "legacy", "--skip-validation"); doc["method"] != "fast-forward" || doc["validation_skipped"] != true {
		t.Errorf("promote legacy: %v", doc)
	}

	// The backfill.
	if doc := step(exitOK, append([]string{"run", "--workers", "2"}, rng("clv-fix")...)...); count(doc, "committed") != 3 || count(doc, "failed") != 0 {
		t.Errorf("run: %v", doc)
	}
	if doc := step(exitOK, append([]string{"plan"}, rng("clv-fix")...)...); doc["done"] != 3.0 || doc["to_compute"] != 0.0 {
		t.Errorf("plan after the run: %v", doc)
	}
	if doc := step(exitOK, "run", "--catch-up", "--source", crashSrc, "--branch", "clv-fix"); doc["catch_up"] != true || count(doc, "catch_up_days") != 0 {
		t.Errorf("run --catch-up with nothing to catch up: %v", doc)
	}
	if doc := step(exitOK, "status", "--branch", "clv-fix"); doc["done"] != 3.0 || doc["exists"] != true || count(doc, "failed") != 0 {
		t.Errorf("status: %v", doc)
	}
	if doc := step(exitUsage, "status", "--branch", "nope"); doc["exists"] != false {
		t.Errorf("status of an unknown branch: %v", doc)
	}
	if doc := step(exitOK, "gc", "--dry-run"); count(doc, "files") != 0 || doc["dry_run"] != true {
		t.Errorf("gc: %v", doc)
	}
	if doc := step(exitOK, "totals", "--refs", "main,clv-fix"); count(doc, "refs") != 2 {
		t.Errorf("totals: %v", doc)
	}
	step(exitUsage, "totals", "--refs", "no-such-ref")

	// Validation and publication.
	if doc := step(exitFailed, "validate", "--candidate", "clv-fix", "--no-record"); doc["pass"] != false {
		t.Errorf("validate of the corrected logic against the legacy one: %v", doc)
	}
	if doc := step(exitRefused, "promote", "--branch", "clv-fix"); doc != nil {
		t.Errorf("a refused promote printed a report: %v", doc)
	}
	step(exitRefused, "validate", "--base", "clv-fix", "--candidate", "clv-fix") // itself
	// A recomputation of main with main's logic passes (and is recorded).
	step(exitOK, append([]string{"run", "--logic", "legacy"}, rng("legacy-again")...)...)
	if doc := step(exitOK, "validate", "--candidate", "legacy-again"); doc["pass"] != true {
		t.Errorf("validate of main's logic recomputed: %v", doc)
	}
	if doc := step(exitOK, "promote", "--branch", "clv-fix", "--skip-validation"); doc["kind"] != "promote" || count(doc, "partitions") != 3 || doc["validation"] != nil {
		t.Errorf("promote: %v", doc)
	}
	if doc := step(exitOK, "history"); count(doc, "events") != 2 || count(doc, "refs") < 3 {
		t.Errorf("history: %v", doc)
	}
	if doc := step(exitOK, "rollback"); doc["kind"] != "rollback" || count(doc, "partitions") != 3 {
		t.Errorf("rollback: %v", doc)
	}
	step(exitUsage, "rollback", "--to", "no-such-tag")
}
