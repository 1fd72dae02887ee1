package main

import (
	"strings"
	"testing"
)

func TestResolveShard(t *testing.T) {
	pod := func(index, count string) func(string) string {
		return func(k string) string {
			switch k {
			case envJobCompletionIndex:
				return index
			case envShardCount:
				return count
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name, flag   string
		env          func(string) string
		index, count int
		err          string // substring of the usage error; "" for success
	}{
		{name: "unset outside a pod takes every partition", env: pod("", "")},
		{name: "unset outside a pod ignores a stray count", env: pod("", "8")},
		{name: "explicit", flag: "3/16", env: pod("", ""), index: 3, count: 16},
		{name: "explicit wins over the pod's index", flag: "1/2", env: pod("5", "8"), index: 1, count: 2},
		{name: "unset inside an Indexed Job pod", env: pod("5", "8"), index: 5, count: 8},
		{name: "auto", flag: "auto", env: pod("0", "1"), index: 0, count: 1},
		{name: "auto last index", flag: " auto ", env: pod("7", "8"), index: 7, count: 8},
		{name: "auto outside a pod", flag: "auto", env: pod("", "8"), err: "JOB_COMPLETION_INDEX is not set"},
		{name: "pod without a count", env: pod("2", ""), err: "ICEFILL_SHARD_COUNT is not set"},
		{name: "auto without a count", flag: "auto", env: pod("2", ""), err: "ICEFILL_SHARD_COUNT is not set"},
		{name: "index beyond the count", flag: "auto", env: pod("8", "8"), err: "not below ICEFILL_SHARD_COUNT=8"},
		{name: "bad index", flag: "auto", env: pod("x", "8"), err: "not a shard index"},
		{name: "negative index", flag: "auto", env: pod("-1", "8"), err: "not a shard index"},
		{name: "zero count", flag: "auto", env: pod("0", "0"), err: "want the Job's completions"},
		{name: "bad count", flag: "auto", env: pod("0", "eight"), err: "want the Job's completions"},
		{name: "explicit out of range", flag: "16/16", env: pod("", ""), err: "want INDEX/COUNT"},
		{name: "explicit malformed", flag: "3", env: pod("", ""), err: "want INDEX/COUNT"},
		{name: "typo of auto", flag: "Auto", env: pod("1", "2"), err: "want INDEX/COUNT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			i, n, err := resolveShard(tc.flag, tc.env)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("resolveShard(%q) = %d/%d, %v; want an error containing %q", tc.flag, i, n, err, tc.err)
				}
				if got := exitCode(err); got != exitUsage {
					t.Errorf("exit code %d, want %d (the caller's mistake)", got, exitUsage)
				}
				return
			}
			if err != nil || i != tc.index || n != tc.count {
				t.Fatalf("resolveShard(%q) = %d/%d, %v; want %d/%d", tc.flag, i, n, err, tc.index, tc.count)
			}
		})
	}
}
