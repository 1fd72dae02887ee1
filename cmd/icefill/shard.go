package main

import (
	"os"
	"strconv"
	"strings"

	"github.com/icefill/icefill/internal/errkind"
)

// Environment of a Kubernetes Indexed Job pod. The Job controller sets
// JOB_COMPLETION_INDEX in every pod of a Job with completionMode: Indexed;
// the number of completions is not exposed to the pod, so the manifest
// passes it as ICEFILL_SHARD_COUNT (deploy/k8s/job.yaml).
const (
	envJobCompletionIndex = "JOB_COMPLETION_INDEX"
	envShardCount         = "ICEFILL_SHARD_COUNT"
	shardAuto             = "auto"
)

// resolveShard turns --shard into (index, count); count 0 means the process
// takes every partition. The value is INDEX/COUNT, "auto" (index from
// JOB_COMPLETION_INDEX, count from ICEFILL_SHARD_COUNT), or empty: then a
// process inside an Indexed Job pod (JOB_COMPLETION_INDEX set) is sharded as
// with "auto" and any other process takes every partition. Every error is
// the caller's to fix (exit 2): a pod that guessed its share would compute
// the wrong partitions, or all of them on every index.
func resolveShard(flag string, getenv func(string) string) (index, count int, err error) {
	flag = strings.TrimSpace(flag)
	if flag == "" {
		if getenv(envJobCompletionIndex) == "" {
			return 0, 0, nil
		}
		flag = shardAuto
	}
	if flag != shardAuto {
		a, b, ok := strings.Cut(flag, "/")
		i, err1 := strconv.Atoi(a)
		n, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
			return 0, 0, errkind.Usagef("--shard %q: want INDEX/COUNT with 0 <= INDEX < COUNT (e.g. 3/16), or auto", flag)
		}
		return i, n, nil
	}
	is, ns := strings.TrimSpace(getenv(envJobCompletionIndex)), strings.TrimSpace(getenv(envShardCount))
	if is == "" {
		return 0, 0, errkind.Usagef("--shard auto: %s is not set; auto takes the shard from a Kubernetes Indexed Job (completionMode: Indexed), elsewhere pass --shard INDEX/COUNT", envJobCompletionIndex)
	}
	i, err := strconv.Atoi(is)
	if err != nil || i < 0 {
		return 0, 0, errkind.Usagef("--shard auto: %s=%q is not a shard index", envJobCompletionIndex, is)
	}
	if ns == "" {
		return 0, 0, errkind.Usagef("--shard auto: %s=%s but %s is not set; set it to the Job's completions (Kubernetes does not tell the pod), or pass --shard INDEX/COUNT", envJobCompletionIndex, is, envShardCount)
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 1 {
		return 0, 0, errkind.Usagef("--shard auto: %s=%q: want the Job's completions, a number >= 1", envShardCount, ns)
	}
	if i >= n {
		return 0, 0, errkind.Usagef("--shard auto: %s=%d is not below %s=%d; make %s equal to the Job's completions", envJobCompletionIndex, i, envShardCount, n, envShardCount)
	}
	return i, n, nil
}

// shardFromEnv resolves a --shard value against the process environment.
func shardFromEnv(flag string) (int, int, error) { return resolveShard(flag, os.Getenv) }
