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
// decodes can decode the next needed day instead. For this the day cache
// keeps two more days per worker, only when the largest days the cache can
// then hold still fit the memory budget together. Partitions that will
// run on the external path are left out, and so are those whose files
// cannot be sized: their own compute reports why. Call it before
// computing.
func (in *Inputs) ReadAhead(ctx context.Context, partitions []features.Date, logic features.Logic) {
	var order []features.Date
	var rows []int64
	seen := map[features.Date]bool{}
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
			if seen[day] || in.avail.Files(day) == nil {
				continue
			}
			seen[day] = true
			order = append(order, day)
			if in.budget != nil {
				n, _ := in.dayRows(ctx, day) // sized by Estimate above
				rows = append(rows, n)
				sizes[day] = n
			}
		}
	}
	limit := 2 * in.workers
	// The cache's worst case: its largest days all held at once.
	if in.budget != nil && !in.budget.FitsDecoded(largestDays(rows, in.cacheDays()+limit)) {
		return
	}
	in.ahead = &readAhead{order: order, limit: limit, rows: sizes, requested: map[features.Date]bool{}, ahead: map[features.Date]bool{}}
	in.cache.grow(limit)
}

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

// helpLoad decodes one day ahead, if one is due; see readAhead.
func (in *Inputs) helpLoad() bool {
	d, ok := in.ahead.pick()
	if !ok {
		return false
	}
	files := in.avail.Files(d)
	in.cache.prefetch(in.ctx, d, in.loader(d, files, true))
	return true
}
