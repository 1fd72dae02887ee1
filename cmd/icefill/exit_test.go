package main

import (
	"os"
	"path/filepath"
	"testing"
)

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
