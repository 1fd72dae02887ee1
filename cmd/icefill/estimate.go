package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/human"
	"github.com/icefill/icefill/rewrite"
	"github.com/icefill/icefill/snapshots"
)

// estimateFlags are plan's --estimate and the job shape it prices.
func estimateFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "estimate", Usage: "price the whole job: time one representative partition (or read recent checkpoints' durations) and print core-hours, wall time, workers needed by --deadline and the implied read rate"},
		&cli.IntFlag{Name: "workers-per-job", Value: 150, Usage: "with --estimate: worker processes (pods) running at once"},
		&cli.IntFlag{Name: "cores-per-worker", Value: 4, Usage: "with --estimate: cores of each worker (partitions it computes at once)"},
		&cli.StringFlag{Name: "deadline", Usage: "with --estimate: finish within a duration (e.g. 336h) or by a UTC date or time (2027-01-15, 2027-01-15T06:00:00Z)"},
		&cli.StringFlag{Name: "read-budget", Usage: "with --estimate: the source read rate the backfill may take beside the live pipeline, e.g. 2GiB/s"},
		&cli.StringFlag{Name: "estimate-from", Value: "auto", Usage: "with --estimate: timing (compute one partition now), checkpoints (durations recorded on the branch) or auto (checkpoints when at least 3 of this logic exist)"},
	}
}

// costBasis is what one partition costs, measured or recorded.
type costBasis struct {
	Source      string   `json:"source"` // "timing" or "checkpoints"
	Days        []string `json:"days"`
	CoreSeconds float64  `json:"core_seconds"`
	WallSeconds float64  `json:"wall_seconds"`
	Bytes       int64    `json:"source_bytes"`
	Events      int64    `json:"events"`
	Note        string   `json:"note,omitempty"`
}

// jobShape is what the job is priced for.
type jobShape struct {
	Workers, Cores int
	Deadline       time.Duration // 0: none
	ReadBudget     float64       // bytes/s, 0: none
}

// jobEstimate is the price of the partitions still to compute.
type jobEstimate struct {
	Basis              costBasis `json:"basis"`
	Partitions         int       `json:"partitions"`
	SourceBytes        int64     `json:"source_bytes"`
	CoreSecondsPerByte float64   `json:"core_seconds_per_source_byte"`
	CoreHours          float64   `json:"core_hours"`
	Workers            int       `json:"workers"`
	CoresPerWorker     int       `json:"cores_per_worker"`
	WallHours          float64   `json:"wall_hours"`
	ReadBytesPerSecond float64   `json:"read_bytes_per_second"`
	DeadlineHours      float64   `json:"deadline_hours"`
	// WorkersForDeadline is 0 when the deadline cannot be met (one
	// partition takes longer) or none was given.
	WorkersForDeadline int     `json:"workers_for_deadline"`
	DeadlineReadRate   float64 `json:"deadline_read_bytes_per_second"`
	ReadBudget         float64 `json:"read_budget_bytes_per_second"`
	// MaxWorkersInBudget is how many workers the read budget allows.
	MaxWorkersInBudget int `json:"max_workers_in_read_budget"`
}

// estimateJob prices todo partitions of the given source bytes. A partition
// runs on one core; the job's wall time is its core-seconds spread over
// workers×cores, but never less than the partitions' own granularity
// (rounds of workers×cores partitions of average cost).
func estimateJob(b costBasis, todo int, todoBytes int64, shape jobShape) jobEstimate {
	e := jobEstimate{Basis: b, Partitions: todo, SourceBytes: todoBytes, Workers: shape.Workers, CoresPerWorker: shape.Cores}
	if b.Bytes > 0 {
		e.CoreSecondsPerByte = b.CoreSeconds / float64(b.Bytes)
	}
	total := e.CoreSecondsPerByte * float64(todoBytes)
	e.CoreHours = total / 3600
	wall := func(workers int) float64 {
		slots := float64(workers * shape.Cores)
		if todo == 0 || slots <= 0 {
			return 0
		}
		perPartition := total / float64(todo)
		return math.Max(total/slots, math.Ceil(float64(todo)/slots)*perPartition)
	}
	rate := func(workers int) float64 {
		if w := wall(workers); w > 0 {
			return float64(todoBytes) / w
		}
		return 0
	}
	e.WallHours, e.ReadBytesPerSecond = wall(shape.Workers)/3600, rate(shape.Workers)
	if shape.Deadline > 0 {
		e.DeadlineHours = shape.Deadline.Hours()
		d := shape.Deadline.Seconds()
		if todo > 0 && total/float64(todo) <= d {
			w := max(int(math.Ceil(total/(d*float64(shape.Cores)))), 1)
			for wall(w) > d {
				w++
			}
			e.WorkersForDeadline, e.DeadlineReadRate = w, rate(w)
		}
	}
	if shape.ReadBudget > 0 && total > 0 {
		e.ReadBudget = shape.ReadBudget
		perWorker := float64(todoBytes) / total * float64(shape.Cores) // bytes/s of one busy worker
		e.MaxWorkersInBudget = int(shape.ReadBudget / perWorker)
	}
	return e
}

// parseDeadline reads a duration or a UTC date/time, relative to now.
func parseDeadline(s string, now time.Time) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if !t.After(now) {
				return 0, fmt.Errorf("--deadline %s is in the past", s)
			}
			return t.Sub(now), nil
		}
	}
	return 0, fmt.Errorf("--deadline %q: want a duration (336h) or a UTC date or time (2027-01-15, 2027-01-15T06:00:00Z)", s)
}

// checkpointBasis averages the newest recorded durations (up to 20) of
// partitions computed with this logic version, sized by the plan.
func checkpointBasis(state *snapshots.State, plan *rewrite.Plan, version string) (costBasis, bool) {
	bytes := map[string]int64{}
	for _, pp := range plan.Partitions {
		bytes[pp.Day.String()] = pp.Bytes
	}
	type rec struct {
		day string
		cp  snapshots.Checkpoint
	}
	var recs []rec
	for day, cp := range state.Checkpoints {
		if cp.Logic == version && cp.Seconds > 0 && bytes[day] > 0 {
			recs = append(recs, rec{day, cp})
		}
	}
	if len(recs) < 3 {
		return costBasis{}, false
	}
	slices.SortFunc(recs, func(a, b rec) int { return int(b.cp.CommittedAt - a.cp.CommittedAt) })
	recs = recs[:min(len(recs), 20)]
	b := costBasis{Source: "checkpoints", Note: "each partition's recorded seconds (compute and commit, one worker) taken as core-seconds"}
	for _, r := range recs {
		b.Days = append(b.Days, r.day)
		b.CoreSeconds += r.cp.Seconds
		b.WallSeconds += r.cp.Seconds
		b.Bytes += bytes[r.day]
		b.Events += r.cp.InputRows
	}
	slices.Sort(b.Days)
	return b, true
}

// timingBasis computes one representative partition (the median-sized one
// to compute) and measures the process's CPU time. For the corrected logic
// it first computes the next day, as a run in newest-first order would, so
// the measured partition's lookback is mostly decoded already: the cost
// measured is a partition's share of a run, not a cold start.
func timingBasis(c *cli.Context, in *rewrite.Inputs, plan *rewrite.Plan, logic features.Logic) (costBasis, error) {
	todo := plan.Todo()
	if len(todo) == 0 {
		return costBasis{}, fmt.Errorf("nothing to compute: no partition to time")
	}
	sorted := slices.Clone(todo)
	slices.SortFunc(sorted, func(a, b rewrite.PlannedPartition) int { return int(a.Bytes - b.Bytes) })
	pick := sorted[len(sorted)/2]
	b := costBasis{Source: "timing", Days: []string{pick.Day.String()}, Bytes: pick.Bytes}
	inRange := map[features.Date]bool{}
	for _, pp := range plan.Partitions {
		inRange[pp.Day] = true
	}
	if warm := pick.Day + 1; len(features.LookbackOf(pick.Day, logic)) > 0 && inRange[warm] {
		if _, err := in.Compute(c.Context, warm, logic, 1); err != nil {
			return b, fmt.Errorf("warm-up partition %s: %w", warm, err)
		}
		b.Note = "measured after computing " + warm.String() + " (lookback decoded, as in a run)"
	} else {
		b.Note = "measured cold (its lookback decoded too): an upper bound"
	}
	start, cpu0 := time.Now(), cpuTime()
	p, err := in.Compute(c.Context, pick.Day, logic, 1)
	if err != nil {
		return b, fmt.Errorf("time partition %s: %w", pick.Day, err)
	}
	b.WallSeconds, b.CoreSeconds, b.Events = time.Since(start).Seconds(), (cpuTime() - cpu0).Seconds(), p.InputRows
	return b, nil
}

// printEstimate prices the plan's partitions to compute.
func printEstimate(c *cli.Context, in *rewrite.Inputs, plan *rewrite.Plan, state *snapshots.State, logic features.Logic) error {
	workers, cores := c.Int("workers-per-job"), c.Int("cores-per-worker")
	if workers < 1 || cores < 1 {
		return errkind.Usagef("--workers-per-job and --cores-per-worker must be at least 1")
	}
	deadline, err := parseDeadline(c.String("deadline"), time.Now())
	if err != nil {
		return errkind.Usagef("%v", err)
	}
	var budget float64
	if s := c.String("read-budget"); s != "" {
		if budget, err = rewrite.ParseByteRate(s); err != nil {
			return errkind.Usagef("--read-budget: %v", err)
		}
	}
	var basis costBasis
	from := c.String("estimate-from")
	switch from {
	case "auto", "checkpoints":
		var ok bool
		if basis, ok = checkpointBasis(state, plan, logic.Version()); ok {
			break
		}
		if from == "checkpoints" {
			return errkind.Usagef("--estimate-from checkpoints: the branch has fewer than 3 checkpoints of %s with a recorded duration in this range", logic.Version())
		}
		fallthrough
	case "timing":
		if basis, err = timingBasis(c, in, plan, logic); err != nil {
			return err
		}
	default:
		return errkind.Usagef("--estimate-from %q: want auto, timing or checkpoints", from)
	}
	e := estimateJob(basis, len(plan.Todo()), plan.TodoBytes(), jobShape{Workers: workers, Cores: cores, Deadline: deadline, ReadBudget: budget})
	e.ReadBudget = budget
	e.Basis.Days = orEmpty(e.Basis.Days)
	return printReport(c, &e)
}

// writeText prints the estimate for people; --json prints e itself.
func (e *jobEstimate) writeText(w io.Writer) error {
	b := e.Basis
	fmt.Fprintf(w, "cost basis (%s): %s; %d events, %s of source; %.3f core-s (%.3f s wall)\n",
		b.Source, dayList(b.Days), b.Events, human.Bytes(b.Bytes), b.CoreSeconds, b.WallSeconds)
	if b.Note != "" {
		fmt.Fprintf(w, "  %s\n", b.Note)
	}
	fmt.Fprintf(w, "job: %d partitions to compute, %s of source\n", e.Partitions, human.Bytes(e.SourceBytes))
	fmt.Fprintf(w, "  core-hours:  %.3g\n", e.CoreHours)
	fmt.Fprintf(w, "  wall time:   %s with %d workers x %d cores, reading %s/s (%s/s per worker)\n",
		hours(e.WallHours), e.Workers, e.CoresPerWorker, human.Bytes(int64(e.ReadBytesPerSecond)), human.Bytes(int64(e.ReadBytesPerSecond/float64(e.Workers))))
	if e.DeadlineHours > 0 {
		if e.WorkersForDeadline > 0 {
			fmt.Fprintf(w, "  deadline:    %s needs %d workers x %d cores, reading %s/s\n", hours(e.DeadlineHours), e.WorkersForDeadline, e.CoresPerWorker, human.Bytes(int64(e.DeadlineReadRate)))
		} else {
			fmt.Fprintf(w, "  deadline:    %s cannot be met: one partition alone takes longer\n", hours(e.DeadlineHours))
		}
	}
	if budget := e.ReadBudget; budget > 0 {
		fmt.Fprintf(w, "  read budget: %s/s; %d workers read %.0f%% of it; the budget allows %d workers x %d cores\n",
			human.Bytes(int64(budget)), e.Workers, 100*e.ReadBytesPerSecond/budget, e.MaxWorkersInBudget, e.CoresPerWorker)
	}
	return nil
}

func hours(h float64) string {
	switch {
	case h < 1.0/60:
		return fmt.Sprintf("%.0f s", h*3600)
	case h < 1:
		return fmt.Sprintf("%.1f min", h*60)
	case h < 48:
		return fmt.Sprintf("%.1f h", h)
	}
	return fmt.Sprintf("%.1f days (%.0f h)", h/24, h)
}

func dayList(days []string) string {
	if len(days) <= 3 {
		return "partition " + strings.Join(days, ", ")
	}
	return fmt.Sprintf("%d partitions %s … %s", len(days), days[0], days[len(days)-1])
}
