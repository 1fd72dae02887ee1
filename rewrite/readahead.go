package rewrite

import (
	"context"
	"slices"
	"sync"

	"github.com/icefill/icefill/features"
)

// readAhead picks the days a worker decodes while it would otherwise wait
// for a day another worker is decoding: among the days the partitions to
// come will need next, the largest first (see pick), at most limit of them
// decoded before any partition asks for them.
//
// Without it, workers taking partitions newest first often need the same
// new lookback day at about the same time; one decodes it and the other
// idles (most of a second for a day several times the usual size), and
// the last partition then runs alone, decoding its own new day.
type readAhead struct {
	mu    sync.Mutex
	order []features.Date // days by first need
	next  int             // order[:next] were requested or picked
	limit int
	// rows sizes the days (nil: unknown).
	rows map[features.Date]int64
	// requested are the days a partition has asked for; ahead the days
	// picked and not requested yet (they count against limit).
	requested map[features.Date]bool
	ahead     map[features.Date]bool
}

// pick returns the next day to decode ahead, if any may be: the largest of
// the next limit days not asked for yet. A day several times the usual
// size, decoded by the partition that first needs it, would keep the
// workers of its neighbours waiting; decoded ahead, it is ready in time.
func (r *readAhead) pick() (features.Date, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ahead) >= r.limit {
		return 0, false
	}
	for r.next < len(r.order) && (r.requested[r.order[r.next]] || r.ahead[r.order[r.next]]) {
		r.next++
	}
	best, seen := -1, 0
	for i := r.next; i < len(r.order) && seen < r.limit; i++ {
		d := r.order[i]
		if r.requested[d] || r.ahead[d] {
			continue
		}
		seen++
		if best < 0 || r.rows[d] > r.rows[r.order[best]] {
			best = i
		}
	}
	if best < 0 {
		return 0, false
	}
	d := r.order[best]
	r.ahead[d] = true
	return d, true
}

// request records that a partition asks for day d.
func (r *readAhead) request(d features.Date) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requested[d] = true
	delete(r.ahead, d)
}

// ReadAhead tells Inputs the partitions about to be computed, in the order
// workers will take them, so that a worker waiting for a day another one
// decodes can decode one of the next needed days instead. The days decoded
// ahead are held beside the cache's usual days, two per worker at most,
// and only when the largest days the cache could then hold fit the memory
// budget together. Partitions that will run on the external path are left
// out, and so are those whose files cannot be sized: their own compute
// reports why. The legacy logic reads no day twice, so nothing waits and
// nothing is read ahead. Call it before computing.
func (in *Inputs) ReadAhead(ctx context.Context, partitions []features.Date, logic features.Logic) {
	if logic != features.Corrected {
		return
	}
	var order []features.Date
	sizes := map[features.Date]int64{}
	for _, d := range partitions {
		if in.budget != nil {
			if est, err := in.Estimate(ctx, d, logic); err != nil || est.Spill {
				continue
			}
		}
		window := append([]features.Date{d}, features.LookbackOf(d, logic)...)
		slices.Reverse(window[1:]) // the newest lookback day first
		for _, day := range window {
			if _, seen := sizes[day]; seen || in.avail.Files(day) == nil {
				continue
			}
			sizes[day] = 0
			order = append(order, day)
			if in.budget != nil {
				sizes[day], _ = in.dayRows(ctx, day) // sized by Estimate above
			}
		}
	}
	var fits func(int64) bool
	if in.budget != nil {
		fits = in.budget.FitsDecoded
	}
	in.ahead = planReadAhead(order, sizes, fits, in.cacheDays(), 2*in.workers)
}

// planReadAhead returns the read-ahead of days order (sized by rows), or
// nil when there is nothing to read ahead or when the cache's worst case,
// its largest cacheDays+limit days held at once, does not fit (fits nil:
// no budget).
func planReadAhead(order []features.Date, rows map[features.Date]int64, fits func(rows int64) bool, cacheDays, limit int) *readAhead {
	if len(order) == 0 || limit < 1 {
		return nil
	}
	if fits != nil {
		sizes := make([]int64, 0, len(rows))
		for _, n := range rows {
			sizes = append(sizes, n)
		}
		if !fits(largestDays(sizes, cacheDays+limit)) {
			return nil
		}
	}
	return &readAhead{order: order, limit: limit, rows: rows, requested: map[features.Date]bool{}, ahead: map[features.Date]bool{}}
}

// claim records that partition d is under way (or will never be): its
// days are not picked to read ahead any more, and those already decoded
// ahead become ordinary cached days.
func (in *Inputs) claim(d features.Date, logic features.Logic) {
	if in.ahead == nil {
		return
	}
	for _, day := range append([]features.Date{d}, features.LookbackOf(d, logic)...) {
		in.ahead.request(day)
		in.cache.unpin(day)
	}
}

// Skip tells Inputs that partition d will not be computed after all
// (another process committed it), so days read ahead for it are not held
// for it.
func (in *Inputs) Skip(d features.Date, logic features.Logic) { in.claim(d, logic) }

// largestDays is the sum of the n largest of rows.
func largestDays(rows []int64, n int) int64 {
	rows = slices.Clone(rows)
	slices.Sort(rows)
	var sum int64
	for _, r := range rows[max(0, len(rows)-n):] {
		sum += r
	}
	return sum
}

// ReadAheadDays is how many days may be decoded before a partition asks
// for them (0: none; see ReadAhead).
func (in *Inputs) ReadAheadDays() int {
	if in.ahead == nil {
		return 0
	}
	return in.ahead.limit
}

// cacheDays is how many decoded days the in-memory path keeps at most
// before reading ahead.
func (in *Inputs) cacheDays() int { return features.LookbackDays + in.workers + 1 }

// helpLoad decodes one day ahead, if one is due; see readAhead. Not while
// a partition waits to run on the external path: it waits for the
// in-memory partitions under way, then drops the days they cached.
func (in *Inputs) helpLoad() bool {
	if in.spillWaiting.Load() > 0 {
		return false
	}
	d, ok := in.ahead.pick()
	if !ok {
		return false
	}
	files := in.avail.Files(d)
	in.cache.prefetch(in.ctx, d, in.loader(d, files, true))
	return true
}
