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

// faultFromEnv reads ICEFILL_FAULT=POINT:N[:ACTION], a test hook: the N-th
// time the process reaches POINT of the commit protocol (data-written,
// before-commit, lost-response, after-commit) it does ACTION:
//
//	kill  SIGKILL itself, as kill -9 would (the default)
//	stop  SIGSTOP itself, as a long GC pause or a preempted VM would; it
//	      goes on where it stopped when it gets SIGCONT
//	lose  (data-written only) forget the data files just written, as a
//	      writer that drops an error on a full disk would
//
// It exists so crash tests and the demo can interrupt a run at an exact
// step; unset, it costs nothing.
func faultFromEnv() (snapshots.Fault, error) {
	spec := os.Getenv("ICEFILL_FAULT")
	if spec == "" {
		return nil, nil
	}
	parts := strings.Split(spec, ":")
	n := 0
	var err error
	if len(parts) >= 2 {
		n, err = strconv.Atoi(parts[1])
	}
	action := "kill"
	if len(parts) == 3 {
		action = parts[2]
	}
	if len(parts) < 2 || len(parts) > 3 || err != nil || n < 1 || (action != "kill" && action != "stop" && action != "lose") {
		return nil, fmt.Errorf("ICEFILL_FAULT=%q: want POINT:N[:kill|stop|lose], e.g. before-commit:3", spec)
	}
	point := parts[0]
	var hits atomic.Int64
	return func(p string) error {
		if p != point || hits.Add(1) != int64(n) {
			return nil
		}
		switch action {
		case "stop":
			syscall.Kill(os.Getpid(), syscall.SIGSTOP)
			return nil
		case "lose":
			return snapshots.ErrFaultLoseFiles
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}, nil
}
