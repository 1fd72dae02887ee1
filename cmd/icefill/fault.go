package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/icefill/icefill/snapshots"
)

// faultFromEnv reads ICEFILL_FAULT=POINT:N, a test hook: the process kills
// itself with SIGKILL (as kill -9 would) the N-th time it reaches POINT of
// the commit protocol (before-commit, after-commit). It exists so crash
// tests and the demo can interrupt a run at an exact step; unset, it costs
// nothing.
func faultFromEnv() (snapshots.Fault, error) {
	spec := os.Getenv("ICEFILL_FAULT")
	if spec == "" {
		return nil, nil
	}
	point, nth, ok := strings.Cut(spec, ":")
	n, err := strconv.Atoi(nth)
	if !ok || err != nil || n < 1 {
		return nil, fmt.Errorf("ICEFILL_FAULT=%q: want POINT:N, e.g. before-commit:3", spec)
	}
	var hits atomic.Int64
	return func(p string) error {
		if p == point && hits.Add(1) == int64(n) {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
		return nil
	}, nil
}
