package features

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"
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
// slice per field, indexed by event position. Finish stores the events
// grouped by customer (customers in byte order) and, within a customer, by
// (event_ts, event_id, event number). The event number (seq) is the read
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
	// rejectsSunk counts the rejects handed to a reject sink instead.
	rejectsSunk int64

	// serial identifies this Day value in caches shared between days.
	serial uint64

	// Event ids in read order: event number s's id is
	// idData[idOff[s]:idOff[s+1]]; see id.
	idData []byte
	idOff  []uint32
	ts     []int64 // event_ts, µs since epoch, UTC
	typ    []EventType
	chn    []uint16 // channel code, 0 = null or "direct"
	ctry   []uint16 // country code, 0 = null
	// amount_cents, null as 0, in 32 bits: a value that does not fit is
	// stored as bigAmount and kept in bigAmounts; see amountOf.
	amount     []int32
	bigAmounts map[int32]int64
	seq        []int32 // event number (read order)
	// h32 is the top 32 bits of each event_id's hash, until index takes
	// them.
	h32 []uint32

	// The day's distinct customers in byte order (big-endian halves of the
	// 16 bytes); the events of customer k are custOff[k]:custOff[k+1].
	custHi, custLo []uint64
	custOff        []int32

	idIndexOnce sync.Once
	idIndex     *idIndex

	pairMu sync.Mutex
	pairs  map[uint64]*pairEntry
}

var daySerial atomic.Uint64

// Len is the number of accepted events.
func (d *Day) Len() int { return len(d.ts) }

// RejectedCount is the number of rejected rows.
func (d *Day) RejectedCount() int64 { return int64(len(d.Rejects)) + d.rejectsSunk }

// RejectedShare is rejected rows / rows read (0 for an empty day).
func (d *Day) RejectedShare() float64 {
	if d.RowsRead == 0 {
		return 0
	}
	return float64(d.RejectedCount()) / float64(d.RowsRead)
}

// id returns the event_id of the event at position i (ids stay in read
// order: copying them into customer order costs more than it saves).
// bigAmount marks an amount kept in bigAmounts.
const bigAmount = math.MinInt32

// amountOf is event e's amount_cents (null as 0).
func (d *Day) amountOf(e int32) int64 {
	if a := d.amount[e]; a != bigAmount {
		return int64(a)
	}
	return d.bigAmounts[e]
}

func (d *Day) id(i int32) []byte {
	s := d.seq[i]
	return d.idData[d.idOff[s]:d.idOff[s+1]]
}

// customer returns customer k's 16 bytes.
func (d *Day) customer(k int) CustomerID {
	var c CustomerID
	binary.BigEndian.PutUint64(c[:8], d.custHi[k])
	binary.BigEndian.PutUint64(c[8:], d.custLo[k])
	return c
}

// customerRange returns the event positions of customer k.
func (d *Day) customerRange(k int) (int32, int32) { return d.custOff[k], d.custOff[k+1] }

// findCustomer returns the index of customer (hi, lo) in d.custHi/custLo,
// starting the search at from (customers are visited in ascending order),
// and whether it is there.
func (d *Day) findCustomer(hi, lo uint64, from int) (int, bool) {
	n := len(d.custHi)
	less := func(m int) bool { return d.custHi[m] < hi || (d.custHi[m] == hi && d.custLo[m] < lo) }
	i := from
	if i < n && less(i) {
		// Gallop, then binary search: lookback days may hold many
		// customers the partition day lacks. Invariant: less(l).
		l, step := i, 1
		r := i + 1
		for r < n && less(r) {
			l = r
			step <<= 1
			r = l + step
		}
		r = min(r, n)
		// The answer lies in (l, r].
		a := l + 1
		for a < r {
			m := int(uint(a+r) >> 1)
			if less(m) {
				a = m + 1
			} else {
				r = m
			}
		}
		i = a
	}
	return i, i < n && d.custHi[i] == hi && d.custLo[i] == lo
}

// idSeed is shared by every day in the process so equal event ids hash
// equally across days; hashes never leave the process.
var idSeed = maphash.MakeSeed()

// idIndex is a day's event-id index: keys hash<<32 | position, sorted,
// where hash is the top 32 bits of the event_id's hash (computed while
// decoding). Equal hashes are only candidates: ids are always compared.
type idIndex struct {
	keys []uint64
	// selfDead lists the events that lose to a copy of the same event_id
	// in the same day: whatever else a partition's window holds, they
	// never count (the winner rule is a total order).
	selfDead []int32
}

func keyHash(k uint64) uint32 { return uint32(k >> 32) }
func keyPos(k uint64) int32   { return int32(uint32(k)) }

// index returns the event-id index, building it on first use: only the
// corrected logic needs it.
func (d *Day) index() *idIndex {
	d.idIndexOnce.Do(func() {
		n := len(d.ts)
		x := &idIndex{keys: make([]uint64, n)}
		for i, h := range d.h32 {
			x.keys[i] = uint64(h)<<32 | uint64(i)
		}
		// The index holds them now.
		d.h32 = nil
		sortKeys(x.keys)
		var group []int32
		keys := x.keys
		for i := 0; i < n; {
			j := i + 1
			h := keyHash(keys[i])
			for j < n && keyHash(keys[j]) == h {
				j++
			}
			if j-i > 1 {
				group = group[:0]
				for _, k := range keys[i:j] {
					group = append(group, keyPos(k))
				}
				x.selfDead = d.selfLosers(group, x.selfDead)
			}
			i = j
		}
		d.idIndex = x
	})
	return d.idIndex
}

// selfLosers appends to out the copies in group (positions of events of
// this day sharing a hash; reordered) that lose to another copy of the
// same event_id: the earliest event_ts wins, then the smaller event number.
func (d *Day) selfLosers(group []int32, out []int32) []int32 {
	for len(group) > 0 {
		firstID := d.id(group[0])
		k := 0
		for i, e := range group {
			if bytes.Equal(d.id(e), firstID) {
				group[k], group[i] = group[i], group[k]
				k++
			}
		}
		same := group[:k]
		win := same[0]
		for _, e := range same[1:] {
			if d.ts[e] < d.ts[win] || (d.ts[e] == d.ts[win] && d.seq[e] < d.seq[win]) {
				win = e
			}
		}
		for _, e := range same {
			if e != win {
				out = append(out, e)
			}
		}
		group = group[k:]
	}
	return out
}

// sortKeys sorts a in place. Keys start with a uniform hash: scatter on
// the top 8 bits, then each of those buckets (cache-sized) on the next
// bits, then insertion-sort the tiny buckets left.
func sortKeys(a []uint64) {
	n := len(a)
	if n == 0 {
		return
	}
	tmp, tmpBuf := scratchSlice[uint64](n)
	defer putScratch(tmpBuf)
	var start [257]int32
	for _, k := range a {
		start[(k>>56)+1]++
	}
	for i := 1; i < len(start); i++ {
		start[i] += start[i-1]
	}
	next := start
	for _, k := range a {
		b := k >> 56
		tmp[next[b]] = k
		next[b]++
	}
	var cnt []int32
	for b := 0; b < 256; b++ {
		s, e := int(start[b]), int(start[b+1])
		m := e - s
		if m < 32 {
			copy(a[s:e], tmp[s:e])
			insertionSortKeys(a[s:e])
			continue
		}
		bb := max(1, min(bits.Len(uint(m))-1, 16))
		shift := 56 - uint(bb)
		mask := uint64(1)<<bb - 1
		if cap(cnt) < 1<<bb+1 {
			cnt = make([]int32, 1<<bb+1)
		}
		c := cnt[:1<<bb+1]
		clear(c)
		src, dst := tmp[s:e], a[s:e]
		for _, k := range src {
			c[((k>>shift)&mask)+1]++
		}
		for i := 1; i < len(c); i++ {
			c[i] += c[i-1]
		}
		for _, k := range src {
			b2 := (k >> shift) & mask
			dst[c[b2]] = k
			c[b2]++
		}
		// c[b2] is now the end of sub-bucket b2.
		lo := 0
		for b2 := 0; b2 < 1<<bb; b2++ {
			hi := int(c[b2])
			if hi-lo > 1 {
				insertionSortKeys(dst[lo:hi])
			}
			lo = hi
		}
	}
}

func insertionSortKeys(a []uint64) {
	if len(a) > 64 {
		slices.Sort(a)
		return
	}
	for i := 1; i < len(a); i++ {
		k := a[i]
		j := i
		for j > 0 && a[j-1] > k {
			a[j] = a[j-1]
			j--
		}
		a[j] = k
	}
}

// bent is an event during decoding: its customer (big-endian halves of
// the 16 bytes), its columns and its event number (read order).
type bent struct {
	hi, lo    uint64
	ts        int64
	amount    int64
	ev        int32
	h32       uint32 // top 32 bits of the event_id's hash
	chn, ctry uint16
	typ       EventType
}

// buildBuckets spreads a day's events over buckets by the top bits of
// their customer while decoding, in event-number order: customers are
// uniform (SHA-1 or random UUIDs), so finish sorts one bucket at a time
// in cache. A skewed population only makes some buckets larger. Few
// buckets keep the decoder's writes sequential enough to stream.
type buildBuckets [1 << bucketBits][]bent

// bucketBits: 64 buckets of ~16K events per million stream well while
// decoding and sort in cache at finish (measured best among 16 to 1024).
const bucketBits = 6

func bucketOf(hi uint64) uint64 { return hi >> (64 - bucketBits) }

// finish stores the day's events grouped by customer: customers in byte
// order, each customer's events by (event_ts, event_id, event number).
func (d *Day) finish(bk *buildBuckets, n int) {
	d.serial = daySerial.Add(1)
	cols := make([]byte, n*(8+4+4+2+2+1))
	c := carver{buf: cols}
	d.ts = carve[int64](&c, n)
	d.amount = carve[int32](&c, n)
	d.seq = carve[int32](&c, n)
	// The hashes only feed the event-id index: an allocation of their
	// own, dropped once the index is built.
	d.h32 = make([]uint32, n)
	d.chn = carve[uint16](&c, n)
	d.ctry = carve[uint16](&c, n)
	d.typ = carve[EventType](&c, n)
	d.custHi = make([]uint64, 0, n/3+1)
	d.custLo = make([]uint64, 0, n/3+1)
	d.custOff = make([]int32, 0, n/3+2)
	maxM := 0
	for k := range bk {
		maxM = max(maxM, len(bk[k]))
	}
	tmp := make([]bent, maxM)
	var cnt []int32
	pos := 0
	var prevHi, prevLo uint64
	for k := range bk {
		src := bk[k]
		bk[k] = nil
		m := len(src)
		if m == 0 {
			continue
		}
		sorted := src
		if m <= 32 {
			d.sortBents(src)
		} else {
			// Scatter on the next bits of the customer, then sort the
			// tiny sub-buckets.
			b := max(1, min(bits.Len(uint(m))-1, 16))
			shift := 64 - uint(bucketBits) - uint(b)
			mask := uint64(1)<<b - 1
			if cap(cnt) < 1<<b+1 {
				cnt = make([]int32, 1<<b+1)
			}
			c := cnt[:1<<b+1]
			clear(c)
			for i := range src {
				c[((src[i].hi>>shift)&mask)+1]++
			}
			for i := 1; i < len(c); i++ {
				c[i] += c[i-1]
			}
			dst := tmp[:m]
			for i := range src {
				k2 := (src[i].hi >> shift) & mask
				dst[c[k2]] = src[i]
				c[k2]++
			}
			// c[k2] is now the end of sub-bucket k2.
			lo := 0
			for k2 := 0; k2 < 1<<b; k2++ {
				hi := int(c[k2])
				if hi-lo > 1 {
					d.sortBents(dst[lo:hi])
				}
				lo = hi
			}
			sorted = dst
		}
		for i := range sorted {
			x := &sorted[i]
			if pos == 0 || x.hi != prevHi || x.lo != prevLo {
				d.custHi = append(d.custHi, x.hi)
				d.custLo = append(d.custLo, x.lo)
				d.custOff = append(d.custOff, int32(pos))
				prevHi, prevLo = x.hi, x.lo
			}
			d.seq[pos] = x.ev
			d.ts[pos] = x.ts
			d.typ[pos] = x.typ
			d.chn[pos] = x.chn
			d.ctry[pos] = x.ctry
			if a := int32(x.amount); int64(a) == x.amount && a != bigAmount {
				d.amount[pos] = a
			} else {
				d.amount[pos] = bigAmount
				if d.bigAmounts == nil {
					d.bigAmounts = map[int32]int64{}
				}
				d.bigAmounts[int32(pos)] = x.amount
			}
			d.h32[pos] = x.h32
			pos++
		}
	}
	d.custOff = append(d.custOff, int32(n))
	// Customers move into one allocation too, now that their number is known.
	if nc := len(d.custHi); nc > 0 {
		mem := make([]byte, nc*16+(nc+1)*4)
		c := carver{buf: mem}
		d.custHi = append(carve[uint64](&c, nc)[:0], d.custHi...)
		d.custLo = append(carve[uint64](&c, nc)[:0], d.custLo...)
		d.custOff = append(carve[int32](&c, nc+1)[:0], d.custOff...)
	}
}

// sortBents sorts a few events by (customer, event_ts, event_id, event
// number); they come in event-number order.
func (d *Day) sortBents(a []bent) {
	if len(a) > 24 {
		slices.SortFunc(a, func(x, y bent) int {
			switch {
			case x.hi != y.hi:
				return cmpU64(x.hi, y.hi)
			case x.lo != y.lo:
				return cmpU64(x.lo, y.lo)
			case x.ts != y.ts:
				if x.ts < y.ts {
					return -1
				}
				return 1
			case x.ev == y.ev:
				return 0
			case d.idLess(x.ev, y.ev):
				return -1
			}
			return 1
		})
		return
	}
	for i := 1; i < len(a); i++ {
		x := a[i]
		j := i
		for j > 0 {
			y := &a[j-1]
			if y.hi < x.hi || (y.hi == x.hi && (y.lo < x.lo || (y.lo == x.lo &&
				(y.ts < x.ts || (y.ts == x.ts && !d.idLess(x.ev, y.ev)))))) {
				break
			}
			a[j] = *y
			j--
		}
		a[j] = x
	}
}

func cmpU64(a, b uint64) int {
	if a < b {
		return -1
	}
	return 1
}

// idLess breaks a (customer, event_ts) tie at build time, when ids are
// indexed by event number: event_id, then event number.
func (d *Day) idLess(a, b int32) bool {
	if c := bytes.Compare(d.idData[d.idOff[a]:d.idOff[a+1]], d.idData[d.idOff[b]:d.idOff[b+1]]); c != 0 {
		return c < 0
	}
	return a < b
}

// Column memory. A decoded day's columns are carved out of a few large
// allocations on the garbage-collected heap. An off-heap variant (mmap,
// unmapped once the Day was unreachable) measured about 45 % lower peak
// RSS, but a reader that let a Day become unreachable too early would have
// read another day's bytes without any error; silent wrong rows are the
// one failure this tool must not have, so it was removed. Column memory
// never holds Go pointers (it is reinterpreted as integers).

// view returns b as n values of T (T holds no pointers; b is aligned).
func view[T any](b []byte, n int) []T {
	if n == 0 {
		return []T{}
	}
	var z T
	_ = b[n*int(unsafe.Sizeof(z))-1]
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// carver hands out consecutive typed slices of one region.
type carver struct {
	buf []byte
	off int
}

func carve[T any](c *carver, n int) []T {
	var z T
	sz, al := int(unsafe.Sizeof(z)), int(unsafe.Alignof(z))
	c.off = (c.off + al - 1) &^ (al - 1)
	v := view[T](c.buf[c.off:], n)
	c.off += n * sz
	return v[:n:n]
}

// Scratch buffers: large temporaries (decode buckets, sort keys) come from
// a small free list of mapped buffers, used between getScratch and
// putScratch only, so a day's decode neither faults in fresh pages for
// them nor grows the garbage-collected heap.
var scratch struct {
	mu    sync.Mutex
	free  [][]byte
	bytes int
}

// maxScratchIdle bounds the idle scratch memory kept for the next decode.
var maxScratchIdle = 128 << 20

// SetMaxIdleScratch bounds the idle decode buffers kept for reuse (default
// 128 MiB): a small memory budget cannot leave that much idle.
func SetMaxIdleScratch(n int) {
	scratch.mu.Lock()
	maxScratchIdle = n
	scratch.mu.Unlock()
}

func getScratch(n int) []byte {
	if n == 0 {
		return nil
	}
	scratch.mu.Lock()
	best := -1
	for i, b := range scratch.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(scratch.free[best])) {
			best = i
		}
	}
	if best >= 0 {
		b := scratch.free[best]
		scratch.free = append(scratch.free[:best], scratch.free[best+1:]...)
		scratch.bytes -= cap(b)
		scratch.mu.Unlock()
		return b[:n]
	}
	scratch.mu.Unlock()
	return make([]byte, n)
}

func putScratch(b []byte) {
	if cap(b) == 0 {
		return
	}
	b = b[:cap(b)]
	scratch.mu.Lock()
	scratch.free = append(scratch.free, b)
	scratch.bytes += cap(b)
	for scratch.bytes > maxScratchIdle {
		// Drop the smallest first: large days need the large ones.
		s := 0
		for i, x := range scratch.free {
			if cap(x) < cap(scratch.free[s]) {
				s = i
			}
		}
		x := scratch.free[s]
		scratch.bytes -= cap(x)
		scratch.free = append(scratch.free[:s], scratch.free[s+1:]...)
	}
	scratch.mu.Unlock()
}

// scratchSlice views a scratch buffer as n values of T (T holds no pointers).
func scratchSlice[T any](n int) ([]T, []byte) {
	var z T
	b := getScratch(n * int(unsafe.Sizeof(z)))
	if n == 0 {
		return nil, nil
	}
	return view[T](b, n), b
}
