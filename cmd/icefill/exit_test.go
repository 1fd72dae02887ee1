package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/source"
)

// TestExitCode checks the one mapping from marked errors to exit codes.
func TestExitCode(t *testing.T) {
	base := errors.New("boom")
	cases := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{base, exitFailed},
		{errkind.UsageError(base), exitUsage},
		{fmt.Errorf("open: %w", errkind.UnavailableError(base)), exitUnavailable},
		{fmt.Errorf("promote: %w", errkind.RefusedError(base)), exitRefused},
		{fmt.Errorf("day: %w", source.ErrMissingDay), exitUsage},
		{&source.MissingDaysError{}, exitUsage},
		{fmt.Errorf("run: %w", context.Canceled), exitInterrupted},
		{errors.New(`Required flag "branch" not set`), exitUsage},
	}
	for _, c := range cases {
		if got := exitCode(c.err); got != c.want {
			t.Errorf("exitCode(%v) = %d, want %d", c.err, got, c.want)
		}
	}
}

// TestExitCodes checks the documented exit codes on the real binary.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	notParquet := filepath.Join(dir, "src", "dt=2024-05-01")
	if err := os.MkdirAll(notParquet, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(notParquet, "broken.parquet"), []byte("not parquet at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"unknown flag", []string{"status", "--no-such-flag"}, exitUsage},
		{"missing required flag", []string{"status"}, exitUsage},
		{"bad date", []string{"compute", "--source", crashSrc, "--date", "2024-13-01"}, exitUsage},
		{"table does not exist", []string{"status", "--branch", "x"}, exitUsage},
		{"missing source days", []string{"run", "--source", crashSrc, "--from", "2030-01-01", "--to", "2030-01-02", "--branch", "b"}, exitUsage},
		{"unreadable source file", []string{"compute", "--source", filepath.Join(dir, "src"), "--date", "2024-05-01", "--logic", "legacy"}, exitUsage},
		{"nothing to roll back", []string{"rollback"}, exitUsage},
		{"compute works", []string{"compute", "--source", crashSrc, "--date", crashFrom.String()}, exitOK},
		{"run --workers 0", []string{"run", "--source", crashSrc, "--from", crashFrom.String(), "--to", crashFrom.String(), "--branch", "b", "--workers", "0"}, exitUsage},
		{"validate --workers -1", []string{"validate", "--candidate", "b", "--workers", "-1"}, exitUsage},
		{"bench --workers 0", []string{"bench", "--workers", "0"}, exitUsage},
		{"log level after the command", []string{"status", "--branch", "x", "--log-level", "loud"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, out := icefill(t, dir, nil, 0, tt.args...)
			if code != tt.want {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tt.want, out)
			}
		})
	}
}

// icefillIn runs the binary in dir with exactly args (no catalog flags
// added) and returns its exit code, stdout and stderr.
func icefillIn(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "ICEFILL_LOG_LEVEL=warn"), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = ee.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// TestMistakesExitTwoInOneLine: what a new user gets wrong is exit 2 with a
// one-line error, never the help text, and creates nothing.
func TestMistakesExitTwoInOneLine(t *testing.T) {
	dir := t.TempDir()
	// A folder cannot be made under a file, not even by root.
	readOnly := filepath.Join(dir, "a-file")
	if err := os.WriteFile(readOnly, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rangeArgs := []string{"--from", crashFrom.String(), "--to", crashFrom.String(), "--branch", "b"}
	tests := []struct {
		name    string
		args    []string
		mention string
	}{
		{"bogus command", []string{"bogus"}, `unknown command "bogus"`},
		{"missing source", append([]string{"run", "--source", "./missing"}, rangeArgs...), "missing"},
		{"bad catalog URI", []string{"status", "--branch", "b", "--catalog-uri", "htp://x"}, "unsupported scheme"},
		{"unwritable warehouse", append([]string{"run", "--source", crashSrc, "--catalog-db", filepath.Join(dir, "c.db"),
			"--warehouse", filepath.Join(readOnly, "wh")}, rangeArgs...), "warehouse"},
		{"unwritable catalog folder", append([]string{"run", "--source", crashSrc, "--catalog-db", filepath.Join(readOnly, "sub", "c.db")}, rangeArgs...), "catalog database"},
		{"wrong catalog-db for status", []string{"status", "--branch", "b", "--catalog-db", "nope/catalog.db"}, "nope/catalog.db"},
		{"wrong catalog-db for history", []string{"history", "--catalog-db", "nope/catalog.db"}, "nope/catalog.db"},
		{"wrong catalog-db for totals", []string{"totals", "--catalog-db", "nope/catalog.db"}, "nope/catalog.db"},
		{"wrong catalog-db for validate", []string{"validate", "--candidate", "b", "--catalog-db", "nope/catalog.db"}, "nope/catalog.db"},
		{"wrong catalog-db for promote", []string{"promote", "--branch", "b", "--catalog-db", "nope/catalog.db"}, "nope/catalog.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			work := t.TempDir()
			code, stdout, stderr := icefillIn(t, work, nil, tt.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, exitUsage, stdout, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "icefill: ") || !strings.Contains(lines[0], tt.mention) {
				t.Errorf("want one line 'icefill: …%s…' on stderr, got:\n%s", tt.mention, stderr)
			}
			if entries, _ := os.ReadDir(work); len(entries) > 0 {
				t.Errorf("a failed %s created %v in the working folder", tt.args[0], entries[0].Name())
			}
		})
	}
}

// TestReadOnlyCommandsCreateNothing: plan, status, history, totals and
// validate against the default catalog location create no catalog file and
// no warehouse folder.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	rangeArgs := []string{"--from", crashFrom.String(), "--to", crashFrom.String(), "--branch", "b"}
	for _, args := range [][]string{
		append([]string{"plan", "--source", crashSrc}, rangeArgs...),
		{"status", "--branch", "b"},
		{"history"},
		{"totals"},
		{"validate", "--candidate", "b"},
	} {
		work := t.TempDir()
		code, _, stderr := icefillIn(t, work, nil, args...)
		if entries, _ := os.ReadDir(work); len(entries) > 0 {
			t.Errorf("%s created %s (exit %d, %s)", args[0], entries[0].Name(), code, stderr)
		}
		if args[0] == "plan" && code != exitOK {
			t.Errorf("plan before any run: exit %d, want 0 (every partition to do): %s", code, stderr)
		}
	}
}

// TestVersionAndCompletion: both version spellings, and a completion
// script per shell.
func TestVersionAndCompletion(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--version"}, exitOK, "icefill version "},
		{[]string{"version"}, exitOK, "icefill version "},
		{[]string{"completion", "bash"}, exitOK, "complete -o bashdefault -o default -F _icefill_complete icefill"},
		{[]string{"completion", "zsh"}, exitOK, "compdef _icefill icefill"},
		{[]string{"completion", "fish"}, exitOK, "complete -c icefill"},
		{[]string{"completion", "pwsh"}, exitUsage, ""},
		{[]string{"completion"}, exitUsage, ""},
		{[]string{"--generate-bash-completion"}, exitOK, "promote"},
	} {
		code, stdout, stderr := icefillIn(t, dir, nil, tt.args...)
		if code != tt.code || !strings.Contains(stdout, tt.want) {
			t.Errorf("%v: exit %d (want %d), stdout lacks %q:\n%s%s", tt.args, code, tt.code, tt.want, stdout, stderr)
		}
	}
}
