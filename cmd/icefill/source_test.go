package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSourceConventions: a source root given through a symlink works, a
// non-Parquet file in a day folder is ignored, a missing day stops the run
// naming the day unless --allow-missing, which warns per day and records
// the days for status; a run against another --source than the branch's
// plan warns; the global flags work after the command.
func TestSourceConventions(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	missing := crashFrom.AddDays(1)
	entries, err := os.ReadDir(crashSrc)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "dt=") || e.Name() == "dt="+missing.String() {
			continue
		}
		copyDir(t, filepath.Join(crashSrc, e.Name()), filepath.Join(real, e.Name()))
	}
	if err := os.WriteFile(filepath.Join(real, "dt="+crashFrom.String(), "NOTES.txt"), []byte("not Parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "events")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	cat := []string{"--catalog-db", filepath.Join(dir, "catalog.db"), "--warehouse", filepath.Join(dir, "warehouse")}
	run := func(source string, extra ...string) (int, string, string) {
		args := append([]string{"run", "--source", source, "--from", crashFrom.String(), "--to", crashFrom.AddDays(2).String(), "--branch", "b"}, cat...)
		return icefillIn(t, dir, nil, append(args, extra...)...)
	}

	code, _, stderr := run(link)
	if code != exitUsage || !strings.Contains(stderr, missing.String()) {
		t.Fatalf("missing day: exit %d, want %d naming %s:\n%s", code, exitUsage, missing, stderr)
	}
	code, stdout, stderr := run(link, "--allow-missing", "--json", "--log-level", "warn", "--log-format", "json")
	if code != exitOK {
		t.Fatalf("--allow-missing: exit %d:\n%s", code, stderr)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil || len(rep["committed"].([]any)) != 3 {
		t.Fatalf("--allow-missing run: %v %s", err, stdout)
	}
	warned := 0
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("--log-format json after the command: %q is not a JSON log line", line)
		}
		if rec["day"] == missing.String() && strings.Contains(rec["msg"].(string), "missing") {
			warned++
		}
	}
	if warned == 0 {
		t.Errorf("no warning names the missing day %s:\n%s", missing, stderr)
	}
	code, stdout, _ = icefillIn(t, dir, nil, append([]string{"status", "--branch", "b", "--json"}, cat...)...)
	var st map[string]any
	json.Unmarshal([]byte(stdout), &st)
	if code != exitOK || !strings.Contains(stdout, missing.String()) || len(st["missing_as_empty"].([]any)) == 0 {
		t.Errorf("status does not record the missing day: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = icefillIn(t, dir, nil, append([]string{"status", "--branch", "b"}, cat...)...)
	if !strings.Contains(stdout, "counted as empty (--allow-missing): ") {
		t.Errorf("status text does not show the missing days:\n%s", stdout)
	}

	code, _, stderr = run(crashSrc, "--allow-missing")
	if code != exitOK || !strings.Contains(stderr, "differs from the source of the branch's recorded plan") {
		t.Errorf("another --source: exit %d, want a warning:\n%s", code, stderr)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConfigFileWarnings: keys of icefill.yaml that are not read from the
// file are warned about: typos, and required flags (checked before the
// file is read).
func TestConfigFileWarnings(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "icefill.yaml"), []byte("branch: from-file\ncatalog-urii: http://typo\nlog-level: info\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, stderr := icefillIn(t, dir, nil, "plan", "--source", crashSrc, "--from", crashFrom.String(), "--to", crashFrom.String(), "--branch", "b")
	for _, want := range []string{"key=branch", "required flag", "key=catalog-urii", "not a flag of any command"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
}
