package features

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"sort"
)

// LookbackDays is the corrected logic's window: dt = D−7 … D−1.
const LookbackDays = 7

// window is 7 days in µs: a touch attributes an event when
// e.event_ts − window < t.event_ts ≤ e.event_ts.
const window = 7 * MicrosPerDay

// ComputeCorrected runs the corrected logic (spec §4) for partition d with
// the days of its lookback (any order; days missing from the source are
// simply absent). Only the touches and the event ids of lookback days are
// used.
func ComputeCorrected(d *Day, lookback []*Day) (*Output, error) {
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
	dead := dedup(days)
	return attribute(days, dead), nil
}

// deadSet marks, per day, the events that do not count for this partition:
// losing copies of a duplicated event_id, and orders/refunds of dt = D that
// were already counted on an earlier day.
type deadSet [][]uint64

func (s deadSet) has(rank int, ev int32) bool { return s[rank][ev>>6]&(1<<(ev&63)) != 0 }
func (s deadSet) add(rank int, ev int32)      { s[rank][ev>>6] |= 1 << (ev & 63) }

type copyRef struct {
	rank int
	ev   int32
}

// dedup walks the days' id indexes (each sorted by hash) in one merged
// pass; only hashes seen more than once need a closer look.
func dedup(days []*Day) deadSet {
	dead := make(deadSet, len(days))
	idx := make([][]idRef, len(days))
	pos := make([]int, len(days))
	for r, day := range days {
		dead[r] = make([]uint64, day.Len()/64+1)
		idx[r] = day.index()
	}
	var group []copyRef
	for {
		minHash, live := uint64(0), false
		for r := range days {
			if pos[r] < len(idx[r]) {
				if h := idx[r][pos[r]].hash; !live || h < minHash {
					minHash, live = h, true
				}
			}
		}
		if !live {
			break
		}
		group = group[:0]
		for r := range days {
			for pos[r] < len(idx[r]) && idx[r][pos[r]].hash == minHash {
				group = append(group, copyRef{rank: r, ev: idx[r][pos[r]].ev})
				pos[r]++
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
		same := []copyRef{first}
		rest := group[:0:0]
		for _, c := range group[1:] {
			if bytes.Equal(days[c.rank].id(c.ev), firstID) {
				same = append(same, c)
			} else {
				rest = append(rest, c)
			}
		}
		group = rest
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
			if ct < wt || (ct == wt && (c.rank < win.rank || (c.rank == win.rank && c.ev < win.ev))) {
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

type touchRef struct {
	ts  int64
	id  []byte
	chn uint32
}

type rowAgg struct {
	chn                   uint32
	name                  string
	orders, gross, refund int64
	hoursSum, hoursN      int64
}

// attribute aggregates dt = D's surviving orders and refunds per customer
// and attributed channel, and computes the three features.
func attribute(days []*Day, dead deadSet) *Output {
	d := days[0]
	out := &Output{Date: d.Date, Logic: Corrected}
	featFrom := (d.Date - 6).StartMicros()
	featTo := (d.Date + 1).StartMicros()
	lbPos := make([]int, len(days))
	var touches, paid []touchRef
	var rows []rowAgg
	var chans []uint32
	alive := func(e int32) bool { return !dead.has(0, e) }
	for k, c := range d.custs {
		evs := d.customerEvents(k)
		counted := false
		for _, e := range evs {
			if t := d.typ[e]; (t == Order || t == Refund) && alive(e) {
				counted = true
				break
			}
		}
		if !counted {
			continue
		}
		touches = touches[:0]
		for r, day := range days {
			devs := evs
			if r > 0 {
				kk, ok := day.findCustomer(c, lbPos[r])
				lbPos[r] = kk
				if !ok {
					continue
				}
				devs = day.customerEvents(kk)
			}
			for _, e := range devs {
				if day.typ[e] == Touch && !dead.has(r, e) {
					touches = append(touches, touchRef{ts: day.ts[e], id: day.id(e), chn: day.chn[e]})
				}
			}
		}
		slices.SortFunc(touches, func(a, b touchRef) int {
			if x := cmp.Compare(a.ts, b.ts); x != 0 {
				return x
			}
			return bytes.Compare(a.id, b.id)
		})

		var touches7d int64
		chans = chans[:0]
		paid = paid[:0]
		for _, t := range touches {
			if t.ts >= featFrom && t.ts < featTo {
				touches7d++
				if t.chn != 0 && !slices.Contains(chans, t.chn) {
					chans = append(chans, t.chn)
				}
			}
			if t.chn != 0 {
				paid = append(paid, t)
			}
		}

		rows = rows[:0]
		for _, e := range evs {
			typ := d.typ[e]
			if (typ != Order && typ != Refund) || !alive(e) {
				continue
			}
			ets := d.ts[e]
			chn, delta, ok := lastTouch(paid, ets)
			i := slices.IndexFunc(rows, func(r rowAgg) bool { return r.chn == chn })
			if i < 0 {
				rows = append(rows, rowAgg{chn: chn, name: channelName(chn)})
				i = len(rows) - 1
			}
			if typ == Order {
				rows[i].orders++
				rows[i].gross += d.amount[e]
				if ok {
					rows[i].hoursSum += delta
					rows[i].hoursN++
				}
			} else {
				rows[i].refund += d.amount[e]
			}
		}
		slices.SortFunc(rows, func(a, b rowAgg) int { return cmp.Compare(a.name, b.name) })
		country := latestCountry(d, evs, func(e int32) bool { return !alive(e) })
		for _, r := range rows {
			out.appendRow(c, r.name, r.orders, r.gross, r.refund, country)
			out.Touches7d = append(out.Touches7d, touches7d)
			out.DistinctChannels7d = append(out.DistinctChannels7d, int32(len(chans)))
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

// lastTouch finds, among touches with a channel sorted by (ts, id), the one
// with the greatest ts ≤ ets and > ets − 7 days, ties broken by the smallest
// id; it returns its channel and ets − t.ts, or channel 0 (direct).
func lastTouch(paid []touchRef, ets int64) (uint32, int64, bool) {
	j := sort.Search(len(paid), func(i int) bool { return paid[i].ts > ets }) - 1
	if j < 0 || paid[j].ts <= ets-window {
		return 0, 0, false
	}
	for j > 0 && paid[j-1].ts == paid[j].ts {
		j--
	}
	return paid[j].chn, ets - paid[j].ts, true
}
