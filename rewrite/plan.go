package rewrite

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/snapshots"
)

// Order is the order partitions are started in.
type Order string

// Orders: newest first by default, so the most-read recent days are fixed
// first and a stopped backfill has already repaired what matters most.
const (
	NewestFirst Order = "newest-first"
	OldestFirst Order = "oldest-first"
)

// ParseOrder reads an --order value.
func ParseOrder(s string) (Order, error) {
	switch Order(s) {
	case NewestFirst, OldestFirst:
		return Order(s), nil
	}
	return "", fmt.Errorf("order %q: want newest-first or oldest-first", s)
}

// PartitionStatus says what a plan will do with a partition.
type PartitionStatus string

// Statuses of a planned partition.
const (
	StatusDone          PartitionStatus = "done"           // checkpoint current: skipped
	StatusTodo          PartitionStatus = "todo"           // never committed on this branch
	StatusSourceChanged PartitionStatus = "source-changed" // committed from other input files: recomputed
	StatusLogicChanged  PartitionStatus = "logic-changed"  // committed by another logic version: recomputed
	StatusForced        PartitionStatus = "forced"         // --force
	StatusFailed        PartitionStatus = "failed"         // failed last time: retried
	StatusFilesBad      PartitionStatus = "files-bad"      // checkpoint's files missing or short (run --verify): recomputed
)

// PlannedPartition is one partition of a plan.
type PlannedPartition struct {
	Day         features.Date
	Status      PartitionStatus
	Fingerprint string
	// Bytes is the size of the partition day's own source files.
	Bytes int64
	Files int
	// MissingInput is true when a missing day counts as empty (--allow-missing).
	MissingInput bool
}

// Plan is what a run will do.
type Plan struct {
	Partitions []PlannedPartition
	// MissingPartitions and MissingLookback list absent source days.
	MissingPartitions, MissingLookback []features.Date

	// What Remaining counts against: the input fingerprint of every day of
	// the job (every shard's), the days this process is to compute, the
	// logic version, the state the plan was made from and when.
	job   map[features.Date]string
	todo  map[features.Date]bool
	logic string
	state *snapshots.State
	made  int64 // Unix ms
}

// Remaining counts the partitions of the whole job, every shard's, that
// state (a branch state read after the plan) does not hold as done: with no
// checkpoint of the plan's logic and the day's current input or, for a day
// this process is to compute, none made since the plan (a forced or
// files-bad day is recomputed even though its checkpoint is current). A nil
// state is the one the plan was made from. Other processes' failures and
// intentions are not in the state, so their forced days count as done.
func (p *Plan) Remaining(state *snapshots.State) int {
	if state == nil {
		state = p.state
	}
	n := 0
	for d, fp := range p.job {
		cp, ok := state.Checkpoints[d.String()]
		if !ok || cp.Logic != p.logic || cp.Fingerprint != fp || (p.todo[d] && cp.CommittedAt < p.made) {
			n++
		}
	}
	return n
}

// Todo lists the partitions to compute, in run order.
func (p *Plan) Todo() []PlannedPartition {
	var out []PlannedPartition
	for _, pp := range p.Partitions {
		if pp.Status != StatusDone {
			out = append(out, pp)
		}
	}
	return out
}

// Count returns how many partitions have status s.
func (p *Plan) Count(s PartitionStatus) int {
	n := 0
	for _, pp := range p.Partitions {
		if pp.Status == s {
			n++
		}
	}
	return n
}

// TodoBytes is the source volume of the partitions to compute.
func (p *Plan) TodoBytes() int64 {
	var n int64
	for _, pp := range p.Todo() {
		n += pp.Bytes
	}
	return n
}

// PlanOptions choose the partitions.
type PlanOptions struct {
	Days  []features.Date
	Logic features.Logic
	Order Order
	Force bool
	// Bad lists checkpointed partitions whose files failed verification
	// (snapshots.VerifyCheckpoints): they are recomputed.
	Bad map[string]string
	// Shard and Shards select this process's share (partition index modulo
	// Shards equals Shard) when many processes split one backfill.
	Shard, Shards int
}

// MakePlan checks the inputs and classifies each partition against the
// branch state. It reads the source listing only, never data.
func MakePlan(ctx context.Context, in *Inputs, state *snapshots.State, opts PlanOptions) (*Plan, error) {
	days := slices.Clone(opts.Days)
	slices.Sort(days)
	if opts.Order == NewestFirst || opts.Order == "" {
		slices.Reverse(days)
	}
	mp, ml, err := in.CheckMissing(days, opts.Logic)
	plan := &Plan{MissingPartitions: mp, MissingLookback: ml}
	if err != nil {
		return plan, err
	}
	missing := map[features.Date]bool{}
	for _, d := range append(slices.Clone(mp), ml...) {
		missing[d] = true
	}
	version := opts.Logic.Version()
	plan.job, plan.todo, plan.logic, plan.state, plan.made = map[features.Date]string{}, map[features.Date]bool{}, version, state, time.Now().UnixMilli()
	for i, d := range days {
		fp, files, err := in.InputFingerprint(ctx, d, opts.Logic)
		if err != nil {
			return plan, fmt.Errorf("plan partition %s: %w", d, err)
		}
		plan.job[d] = fp
		if opts.Shards > 1 && i%opts.Shards != opts.Shard {
			continue
		}
		pp := PlannedPartition{Day: d, Fingerprint: fp, Files: len(files), MissingInput: missing[d]}
		for _, f := range files {
			pp.Bytes += f.Size
		}
		for _, l := range features.LookbackOf(d, opts.Logic) {
			if missing[l] {
				pp.MissingInput = true
			}
		}
		cp, committed := state.Checkpoints[d.String()]
		_, failed := state.Failures[d.String()]
		switch {
		case opts.Force:
			pp.Status = StatusForced
		case opts.Bad[d.String()] != "":
			pp.Status = StatusFilesBad
		case committed && cp.Logic == version && cp.Fingerprint == fp:
			pp.Status = StatusDone
		case committed && cp.Logic != version:
			pp.Status = StatusLogicChanged
		case committed:
			pp.Status = StatusSourceChanged
		case failed:
			pp.Status = StatusFailed
		default:
			pp.Status = StatusTodo
		}
		plan.Partitions = append(plan.Partitions, pp)
		plan.todo[d] = pp.Status != StatusDone
	}
	return plan, nil
}
