package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptSaysWhatRemains: Ctrl-C during a run exits 130 with a line
// that says how many partitions remain and to run the same command again,
// not "context canceled" alone.
func TestInterruptSaysWhatRemains(t *testing.T) {
	dir := t.TempDir()
	args := append(runArgs(), "--workers", "1", "--catalog-db", filepath.Join(dir, "catalog.db"), "--warehouse", filepath.Join(dir, "warehouse"))
	cmd := exec.Command(binary, args...)
	// The process stops itself before its second commit: one partition is
	// committed, the rest remain, and the test knows when to interrupt.
	cmd.Env = append(os.Environ(), "ICEFILL_LOG_LEVEL=warn", "ICEFILL_FAULT=before-commit:2:stop")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !stopped(cmd.Process.Pid) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the run never reached its second commit")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	cmd.Process.Signal(syscall.SIGCONT)
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want %d; stderr:\n%s", err, exitInterrupted, stderr.String())
	}
	last := strings.TrimSpace(stderr.String())
	last = last[strings.LastIndex(last, "\n")+1:]
	if !strings.HasPrefix(last, "icefill: interrupted: ") || !strings.Contains(last, "partitions to compute remain") ||
		!strings.Contains(last, "run the same command again") {
		t.Errorf("last line after SIGINT: %q", last)
	}
}

// stopped reports whether process pid is stopped (state T in /proc).
func stopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && i+2 < len(s) && s[i+2] == 'T'
}
