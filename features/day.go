package features

import (
	"bytes"
	"cmp"
	"hash/maphash"
	"slices"
	"sync"
)

// EventType is the decoded event_type column.
type EventType uint8

// The three event types of the source contract.
const (
	Touch  EventType = 1
	Order  EventType = 2
	Refund EventType = 3
)

// Day holds one source day (dt folder) decoded into compact columns: one
// slice per field, indexed by event number. Events are numbered in read
// order (files by name, rows in file order), so a smaller event number is
// exactly the spec's "file name, then row position" tie-break.
//
// A Day is immutable once built and safe to share between goroutines: the
// same decoded day serves as partition and as lookback for seven others.
type Day struct {
	Date Date
	// Files lists the files read, in read order.
	Files []string
	// RowsRead counts every row read, rejected ones included.
	RowsRead int64
	// Rejects holds the rows that do not fit the contract, with the reason.
	Rejects []Reject

	idData []byte
	idOff  []int64 // event i's id is idData[idOff[i]:idOff[i+1]]
	idHash []uint64
	ts     []int64 // event_ts, µs since epoch, UTC
	cust   []int32 // index into custs
	typ    []EventType
	chn    []uint32 // channel code, 0 = null or "direct"
	amount []int64  // null counts as 0
	ctry   []uint32 // country code, 0 = null

	// custs lists the day's distinct customers in byte order; the events of
	// customer k are byCust[custOff[k]:custOff[k+1]], sorted by (event_ts,
	// event_id, event number).
	custs   []CustomerID
	custOff []int32
	byCust  []int32

	idIndexOnce sync.Once
	idIndex     []idRef // sorted by hash, then event number
}

type idRef struct {
	hash uint64
	ev   int32
}

// Len is the number of accepted events.
func (d *Day) Len() int { return len(d.ts) }

// RejectedCount is the number of rejected rows.
func (d *Day) RejectedCount() int64 { return int64(len(d.Rejects)) }

// RejectedShare is rejected rows / rows read (0 for an empty day).
func (d *Day) RejectedShare() float64 {
	if d.RowsRead == 0 {
		return 0
	}
	return float64(len(d.Rejects)) / float64(d.RowsRead)
}

// SizeBytes estimates the memory the decoded day holds, for cache budgets.
func (d *Day) SizeBytes() int64 {
	n := int64(len(d.ts))
	return int64(len(d.idData)) + n*(8+8+8+4+1+4+8+4+4+12) + int64(len(d.custs))*20
}

func (d *Day) id(i int32) []byte { return d.idData[d.idOff[i]:d.idOff[i+1]] }

// idSeed is shared by every day in the process so equal event ids hash
// equally across days; hashes never leave the process.
var idSeed = maphash.MakeSeed()

// index returns the event-id index, building it on first use: only the
// corrected logic needs it.
func (d *Day) index() []idRef {
	d.idIndexOnce.Do(func() {
		refs := make([]idRef, len(d.idHash))
		for i, h := range d.idHash {
			refs[i] = idRef{hash: h, ev: int32(i)}
		}
		radixSortIDRefs(refs)
		d.idIndex = refs
	})
	return d.idIndex
}

// radixSortIDRefs sorts by hash (then event number, which LSD radix sort
// keeps because the input is in event order and every pass is stable).
func radixSortIDRefs(a []idRef) {
	if len(a) < 256 {
		slices.SortFunc(a, func(x, y idRef) int {
			if c := cmp.Compare(x.hash, y.hash); c != 0 {
				return c
			}
			return cmp.Compare(x.ev, y.ev)
		})
		return
	}
	tmp := make([]idRef, len(a))
	src, dst := a, tmp
	for shift := uint(0); shift < 64; shift += 16 {
		var count [1 << 16]int
		for _, r := range src {
			count[(r.hash>>shift)&0xffff]++
		}
		sum := 0
		for i, c := range count {
			count[i] = sum
			sum += c
		}
		for _, r := range src {
			k := (r.hash >> shift) & 0xffff
			dst[count[k]] = r
			count[k]++
		}
		src, dst = dst, src
	}
	// Four passes: the result is back in a.
}

// finish groups events by customer: customers in byte order, each
// customer's events by (event_ts, event_id, event number).
func (d *Day) finish() {
	n := len(d.custs)
	rank := make([]int32, n)
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return bytes.Compare(d.custs[a][:], d.custs[b][:]) })
	sorted := make([]CustomerID, n)
	for r, k := range order {
		rank[k] = int32(r)
		sorted[r] = d.custs[k]
	}
	d.custs = sorted
	off := make([]int32, n+1)
	for i, k := range d.cust {
		d.cust[i] = rank[k]
		off[rank[k]+1]++
	}
	for k := 0; k < n; k++ {
		off[k+1] += off[k]
	}
	by := make([]int32, len(d.cust))
	next := slices.Clone(off[:n])
	for i, k := range d.cust {
		by[next[k]] = int32(i)
		next[k]++
	}
	for k := 0; k < n; k++ {
		g := by[off[k]:off[k+1]]
		if len(g) > 1 {
			slices.SortFunc(g, d.compareEvents)
		}
	}
	d.custOff, d.byCust = off, by
}

// compareEvents orders two events of this day by (event_ts, event_id, event number).
func (d *Day) compareEvents(a, b int32) int {
	if c := cmp.Compare(d.ts[a], d.ts[b]); c != 0 {
		return c
	}
	if c := bytes.Compare(d.id(a), d.id(b)); c != 0 {
		return c
	}
	return cmp.Compare(a, b)
}

// customerEvents returns the events of customer k in (ts, id) order.
func (d *Day) customerEvents(k int) []int32 { return d.byCust[d.custOff[k]:d.custOff[k+1]] }

// findCustomer returns the index of c in d.custs starting the search at
// from (customers are visited in ascending order), and whether it is there.
func (d *Day) findCustomer(c CustomerID, from int) (int, bool) {
	i := from
	for i < len(d.custs) && bytes.Compare(d.custs[i][:], c[:]) < 0 {
		i++
	}
	return i, i < len(d.custs) && d.custs[i] == c
}
