// Package rewrite is the partition engine: it plans which partitions a
// backfill must (re)compute, computes each from its source days, and runs
// them through a throttled worker pool onto a branch.
package rewrite
