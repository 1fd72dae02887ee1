package features

import (
	"bytes"
	"cmp"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sort"
	"sync"
)

// LookbackDays is the corrected logic's window: dt = D−7 … D−1.
const LookbackDays = 7

// window is 7 days in µs: a touch attributes an event when
// e.event_ts − window < t.event_ts ≤ e.event_ts.
const window = 7 * MicrosPerDay

// ComputeCorrected runs the corrected logic (spec §4) for partition d with
// the days of its lookback (any order; days missing from the source are
// simply absent). Only the touches and the event ids of lookback days are
// used. Parts of the work run on all cores (see attribute).
func ComputeCorrected(d *Day, lookback []*Day) (*Output, error) {
	return computeCorrected(d, lookback, runtime.GOMAXPROCS(0))
}

// ComputeCorrectedOneCore is ComputeCorrected on the calling goroutine
// alone, for callers that already compute one bucket per core within a
// memory budget (the external path): joining the rows of ranges of
// customers would hold them twice.
func ComputeCorrectedOneCore(d *Day, lookback []*Day) (*Output, error) {
	return computeCorrected(d, lookback, 1)
}

func computeCorrected(d *Day, lookback []*Day, cores int) (*Output, error) {
	days := []*Day{d}
	for _, l := range lookback {
		if l == nil {
			continue
		}
		if l.Date < d.Date-LookbackDays || l.Date >= d.Date {
			return nil, fmt.Errorf("corrected logic for %s: day %s is not in its lookback %s…%s",
				d.Date, l.Date, d.Date-LookbackDays, d.Date-1)
		}
		days = append(days, l)
	}
	// Rank 0 is dt = D, then the lookback by ascending dt: with the event
	// number, this is the spec's copy order after event_ts.
	slices.SortFunc(days[1:], func(a, b *Day) int { return cmp.Compare(a.Date, b.Date) })
	for i := 2; i < len(days); i++ {
		if days[i].Date == days[i-1].Date {
			return nil, fmt.Errorf("corrected logic for %s: lookback day %s given twice", d.Date, days[i].Date)
		}
	}
	dead := dedup(days, cores)
	out := attribute(days, dead, cores)
	return out, nil
}

// deadSet marks, per day (rank), the events (by position) that do not
// count for this partition: losing copies of a duplicated event_id, and
// orders/refunds of dt = D that were already counted on an earlier day.
type deadSet [][]uint64

func (s deadSet) add(rank int, ev int32) { s[rank][ev>>6] |= 1 << (ev & 63) }

func isDead(bits []uint64, ev int32) bool { return bits[ev>>6]&(1<<(ev&63)) != 0 }

type copyRef struct {
	rank int
	ev   int32
}

// dupCand is a place where a hash seen more than once in the window
// occurs: rank's index at position pos (anywhere in the run of that hash).
type dupCand struct {
	hash uint32
	rank int32
	pos  int32
}

// pairEntry caches the hashes two days share, as the positions of each
// shared hash in both days' indexes (computed once, reused by every
// partition whose window holds both days).
type pairEntry struct {
	once sync.Once
	a, b []int32 // positions in the holder's and in the other day's index
}

// maxPairs bounds the pair cache a Day holds; entries for days that were
// evicted and decoded again are dropped with it.
const maxPairs = 64

// sharedHashes returns, for days x and y, the positions in x's and in y's
// index of every hash both hold (one position per hash, in its run).
func sharedHashes(x, y *Day) (px, py []int32) {
	holder, other := x, y
	if y.serial > x.serial {
		holder, other = y, x
	}
	holder.pairMu.Lock()
	if holder.pairs == nil || len(holder.pairs) >= maxPairs {
		holder.pairs = map[uint64]*pairEntry{}
	}
	e := holder.pairs[other.serial]
	if e == nil {
		e = &pairEntry{}
		holder.pairs[other.serial] = e
	}
	holder.pairMu.Unlock()
	e.once.Do(func() { e.a, e.b = mergeShared(holder.index().keys, other.index().keys) })
	if holder == x {
		return e.a, e.b
	}
	return e.b, e.a
}

// mergeShared walks two sorted key arrays once and returns where each
// hash present in both starts in each. The hash range is cut in eight and
// the eight merges advance in lockstep: independent dependency chains keep
// the core busy while loads are in flight.
func mergeShared(a, b []uint64) (pa, pb []int32) {
	const lanes = 8
	var ia, ea, ib, eb [lanes]int
	for q := 0; q < lanes; q++ {
		lim := uint64(q+1) << 61 // keys below this have hash < (q+1)<<29
		if q == lanes-1 {
			ea[q], eb[q] = len(a), len(b)
		} else {
			ea[q] = sort.Search(len(a), func(i int) bool { return a[i] >= lim })
			eb[q] = sort.Search(len(b), func(i int) bool { return b[i] >= lim })
		}
		if q > 0 {
			ia[q], ib[q] = ea[q-1], eb[q-1]
		}
	}
	var hits [lanes][][2]int32
	for {
		live := false
		for q := 0; q < lanes; q++ {
			i, j := ia[q], ib[q]
			if i >= ea[q] || j >= eb[q] {
				continue
			}
			live = true
			// A few steps per lane per round.
			for step := 0; step < 8 && i < ea[q] && j < eb[q]; step++ {
				x, y := a[i]>>32, b[j]>>32
				if x != y {
					_, lt := bits.Sub64(x, y, 0)
					i += int(lt)
					j += int(lt ^ 1)
					continue
				}
				hits[q] = append(hits[q], [2]int32{int32(i), int32(j)})
				for i < ea[q] && a[i]>>32 == x {
					i++
				}
				for j < eb[q] && b[j]>>32 == x {
					j++
				}
			}
			ia[q], ib[q] = i, j
		}
		if !live {
			break
		}
	}
	for q := range hits {
		for _, h := range hits[q] {
			pa = append(pa, h[0])
			pb = append(pb, h[1])
		}
	}
	return pa, pb
}

// dedup finds every event_id seen more than once in the window: each day's
// own losing copies (cached per day) and the hashes shared by each pair of
// days (cached per pair), then resolves only the latter.
func dedup(days []*Day, cores int) deadSet {
	dead := make(deadSet, len(days))
	idx := make([]*idIndex, len(days))
	for r, day := range days {
		dead[r] = make([]uint64, day.Len()/64+1)
		idx[r] = day.index()
	}
	// Copies that lose within their own day never count.
	for r, x := range idx {
		for _, e := range x.selfDead {
			dead.add(r, e)
		}
	}
	// Ids seen on two days or more: resolve them with all their copies.
	// The hashes each pair of days shares are cached per pair; the pairs
	// not cached yet (those of the window's new day) are merged on all
	// cores first.
	var pairs [][2]int
	for r1 := range days {
		for r2 := r1 + 1; r2 < len(days); r2++ {
			pairs = append(pairs, [2]int{r1, r2})
		}
	}
	parallel(len(pairs), cores, func(i int) { sharedHashes(days[pairs[i][0]], days[pairs[i][1]]) })
	var cands []dupCand
	for _, pr := range pairs {
		r1, r2 := pr[0], pr[1]
		p1, p2 := sharedHashes(days[r1], days[r2])
		for i := range p1 {
			h := keyHash(idx[r1].keys[p1[i]])
			cands = append(cands,
				dupCand{hash: h, rank: int32(r1), pos: p1[i]},
				dupCand{hash: h, rank: int32(r2), pos: p2[i]})
		}
	}
	slices.SortFunc(cands, func(a, b dupCand) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return cmp.Compare(a.rank, b.rank)
	})
	var group []copyRef
	for i := 0; i < len(cands); {
		h := cands[i].hash
		group = group[:0]
		for ; i < len(cands) && cands[i].hash == h; i++ {
			c := cands[i]
			if i > 0 && cands[i-1].hash == h && cands[i-1].rank == c.rank {
				continue // run already taken
			}
			keys := idx[c.rank].keys
			p := c.pos
			for p > 0 && keyHash(keys[p-1]) == h {
				p--
			}
			for ; int(p) < len(keys) && keyHash(keys[p]) == h; p++ {
				group = append(group, copyRef{rank: int(c.rank), ev: keyPos(keys[p])})
			}
		}
		if len(group) > 1 {
			resolveHashGroup(days, dead, group)
		}
	}
	return dead
}

// resolveHashGroup splits copies sharing a hash by their real event_id,
// then applies the spec's winner rule to each id seen more than once.
func resolveHashGroup(days []*Day, dead deadSet, group []copyRef) {
	for len(group) > 0 {
		first := group[0]
		firstID := days[first.rank].id(first.ev)
		split := false
		for _, c := range group[1:] {
			if !bytes.Equal(days[c.rank].id(c.ev), firstID) {
				split = true
				break
			}
		}
		var same []copyRef
		if !split {
			// The usual case: one id behind the hash.
			same, group = group, nil
		} else {
			same = []copyRef{first}
			rest := group[:0:0]
			for _, c := range group[1:] {
				if bytes.Equal(days[c.rank].id(c.ev), firstID) {
					same = append(same, c)
				} else {
					rest = append(rest, c)
				}
			}
			group = rest
		}
		if len(same) < 2 {
			continue
		}
		// Earliest event_ts wins, then the copy in dt = D (rank 0), then
		// the earliest dt (smaller rank), then file name and row (event number).
		win := same[0]
		inLookback := false
		for _, c := range same {
			if c.rank > 0 {
				inLookback = true
			}
			wt, ct := days[win.rank].ts[win.ev], days[c.rank].ts[c.ev]
			if ct < wt || (ct == wt && (c.rank < win.rank ||
				(c.rank == win.rank && days[c.rank].seq[c.ev] < days[win.rank].seq[win.ev]))) {
				win = c
			}
		}
		for _, c := range same {
			if c != win {
				dead.add(c.rank, c.ev)
			}
		}
		if t := days[win.rank].typ[win.ev]; win.rank == 0 && inLookback && (t == Order || t == Refund) {
			// Counted on the earlier day where it was first delivered.
			dead.add(0, win.ev)
		}
	}
}

// paidRef is a surviving touch with a channel.
type paidRef struct {
	ts   int64
	ev   int32
	rank uint8
	chn  uint16
}

type rowAgg struct {
	chn                   uint16
	name                  string
	orders, gross, refund int64
	hoursSum, hoursN      int64
}

// attribute aggregates dt = D's surviving orders and refunds per customer
// and attributed channel, and computes the three features. Customers are
// independent, so ranges of them are computed on up to cores goroutines
// and their rows joined in customer order: a partition computed while the
// other workers idle (the last one of a run) does not leave their cores
// unused.
func attribute(days []*Day, dead deadSet, cores int) *Output {
	d := days[0]
	parts := cores
	if forcedParts > 0 {
		parts = forcedParts
	}
	ranges := splitCustomers(len(d.custHi), parts, forcedParts > 0)
	outs := make([]*Output, len(ranges))
	parallel(len(ranges), cores, func(i int) { outs[i] = attributeRange(days, dead, ranges[i][0], ranges[i][1]) })
	if len(outs) == 1 {
		return outs[0]
	}
	n := 0
	for _, o := range outs {
		n += o.Len()
	}
	out := &Output{Date: d.Date, Logic: Corrected}
	out.reserve(n, true)
	for i, o := range outs {
		out.appendOutput(o)
		outs[i] = nil
	}
	return out
}

// minCustomersPerRange keeps small partitions on one goroutine.
const minCustomersPerRange = 16 << 10

// forcedParts, when positive, cuts every partition's customers into that
// many ranges, however few they are (tests).
var forcedParts int

// splitCustomers cuts n customers into at most parts ranges [from, to),
// each of minCustomersPerRange or more unless small ranges are allowed.
func splitCustomers(n, parts int, small bool) [][2]int {
	if !small {
		parts = min(parts, n/minCustomersPerRange)
	}
	parts = max(1, parts)
	out := make([][2]int, parts)
	for i := range out {
		out[i] = [2]int{n * i / parts, n * (i + 1) / parts}
	}
	return out
}

// parallel runs f(0) … f(n-1) on up to cores goroutines and waits.
func parallel(n, cores int, f func(i int)) {
	if n == 1 || cores <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	work := make(chan int, n)
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	for g := 0; g < min(n, cores); g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// attributeRange is attribute for the customers from ≤ k < to of dt = D.
func attributeRange(days []*Day, dead deadSet, from, to int) *Output {
	d := days[0]
	out := &Output{Date: d.Date, Logic: Corrected}
	// A customer's rows are one per channel: usually one.
	n := customersWith(d, from, to, Order, Refund)
	out.reserve(n+n/8+16, true)
	chNames := channelNames()
	ctNames := countrySymbols.snapshot()
	featFrom := (d.Date - 6).StartMicros()
	featTo := (d.Date + 1).StartMicros()
	lbPos := make([]int, len(days))
	// Lookback days by ascending dt, then D: touches come out nearly in
	// event_ts order.
	order := make([]int, 0, len(days))
	for r := 1; r < len(days); r++ {
		order = append(order, r)
	}
	order = append(order, 0)
	var paid []paidRef
	var runs, ptr []int
	var rows []rowAgg
	var chOther []uint16
	dead0 := dead[0]
	typ0, ts0 := d.typ, d.ts
	idCmp := func(a, b paidRef) int {
		return bytes.Compare(days[a.rank].id(a.ev), days[b.rank].id(b.ev))
	}
	for k := from; k < to; k++ {
		lo, hi := d.customerRange(k)
		counted := false
		for e := lo; e < hi; e++ {
			if t := typ0[e]; (t == Order || t == Refund) && !isDead(dead0, e) {
				counted = true
				break
			}
		}
		if !counted {
			continue
		}
		ch, cl := d.custHi[k], d.custLo[k]
		var touches7d int64
		var chMask uint64
		chOther = chOther[:0]
		paid = paid[:0]
		runs = runs[:0]
		sorted := true
		for _, r := range order {
			day := days[r]
			a, b := lo, hi
			if r > 0 {
				kk, ok := day.findCustomer(ch, cl, lbPos[r])
				lbPos[r] = kk
				if !ok {
					continue
				}
				a, b = day.customerRange(kk)
			}
			dr := dead[r]
			dtyp, dts, dchn := day.typ, day.ts, day.chn
			runs = append(runs, len(paid))
			for e := a; e < b; e++ {
				if dtyp[e] != Touch || isDead(dr, e) {
					continue
				}
				ts, c := dts[e], dchn[e]
				if ts >= featFrom && ts < featTo {
					touches7d++
					if c != 0 {
						if c < 64 {
							chMask |= 1 << c
						} else if !slices.Contains(chOther, c) {
							chOther = append(chOther, c)
						}
					}
				}
				if c != 0 {
					if n := len(paid); n > 0 && paid[n-1].ts >= ts {
						sorted = false
					}
					paid = append(paid, paidRef{ts: ts, ev: e, rank: uint8(r), chn: c})
				}
			}
		}
		runs = append(runs, len(paid))
		distinct := int32(bits.OnesCount64(chMask) + len(chOther))

		rows = rows[:0]
		j := 0
		ptr = ptr[:0]
		for range runs {
			ptr = append(ptr, 0)
		}
		for e := lo; e < hi; e++ {
			t := typ0[e]
			if (t != Order && t != Refund) || isDead(dead0, e) {
				continue
			}
			// Events come in event_ts order: the last touch at or before
			// ets only moves forward.
			ets := ts0[e]
			best := -1
			if sorted {
				for j < len(paid) && paid[j].ts <= ets {
					j++
				}
				if p := j - 1; p >= 0 {
					for p > 0 && paid[p-1].ts == paid[p].ts {
						p--
					}
					best = p
				}
			} else {
				// Each day's touches are in (event_ts, event_id) order:
				// take each day's candidate, then the best of them.
				for r := 0; r+1 < len(runs); r++ {
					from, to := runs[r], runs[r+1]
					q := max(ptr[r], from)
					for q < to && paid[q].ts <= ets {
						q++
					}
					ptr[r] = q
					p := q - 1
					if p < from {
						continue
					}
					for p > from && paid[p-1].ts == paid[p].ts {
						p--
					}
					// The greatest event_ts wins, ties the smallest event_id.
					if best < 0 || paid[p].ts > paid[best].ts ||
						(paid[p].ts == paid[best].ts && idCmp(paid[p], paid[best]) < 0) {
						best = p
					}
				}
			}
			var chn uint16
			var delta int64
			ok := false
			if best >= 0 && paid[best].ts > ets-window {
				chn, delta, ok = paid[best].chn, ets-paid[best].ts, true
			}
			i := 0
			for i < len(rows) && rows[i].chn != chn {
				i++
			}
			if i == len(rows) {
				rows = append(rows, rowAgg{chn: chn, name: chNames[chn]})
			}
			r := &rows[i]
			if t == Order {
				r.orders++
				r.gross += d.amountOf(e)
				if ok {
					r.hoursSum += delta
					r.hoursN++
				}
			} else {
				r.refund += d.amountOf(e)
			}
		}
		for i := 1; i < len(rows); i++ {
			for j := i; j > 0 && rows[j].name < rows[j-1].name; j-- {
				rows[j], rows[j-1] = rows[j-1], rows[j]
			}
		}
		country := latestCountry(d, lo, hi, dead0)
		c := d.customer(k)
		for _, r := range rows {
			out.appendRow(c, r.name, r.orders, r.gross, r.refund, country, ctNames)
			out.Touches7d = append(out.Touches7d, touches7d)
			out.DistinctChannels7d = append(out.DistinctChannels7d, distinct)
			if r.hoursN > 0 {
				out.AvgHours = append(out.AvgHours, float64(r.hoursSum)/float64(r.hoursN*3_600_000_000))
				out.AvgHoursOK = append(out.AvgHoursOK, true)
			} else {
				out.AvgHours = append(out.AvgHours, 0)
				out.AvgHoursOK = append(out.AvgHoursOK, false)
			}
		}
	}
	return out
}
