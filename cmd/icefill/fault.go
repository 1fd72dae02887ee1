package main

import (
	"fmt"
	"os"
	"os/signal"
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
			stopUntilContinued()
			return nil
		case "lose":
			return snapshots.ErrFaultLoseFiles
		}
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}, nil
}

// stopUntilContinued stops the process (SIGSTOP) and returns once it is
// continued (SIGCONT). kill(2) on its own process does not stop the caller
// at once: the signal goes to the process, another of its threads may take
// it, and until that thread is scheduled the caller runs on. On a busy
// machine it ran on into the very commit it was meant to stop before
// (stopped inside SQLite's COMMIT, holding the embedded catalog's write
// lock, so gc then failed with "database is locked"), or to the end of the
// run without stopping at all. Waiting for SIGCONT pins it at the fault
// point whenever the stop lands.
func stopUntilContinued() {
	cont := make(chan os.Signal, 1)
	signal.Notify(cont, syscall.SIGCONT)
	defer signal.Stop(cont)
	syscall.Kill(os.Getpid(), syscall.SIGSTOP)
	<-cont
}
