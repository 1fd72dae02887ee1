package spill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"golang.org/x/sync/semaphore"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
)

// Stream reads source day d, handing every accepted event to sink in read
// order and every rejected row to reject, and returns the day's files, row
// and reject counts (a Day without events or rejects); (nil, nil) for a
// day that counts as empty.
type Stream func(ctx context.Context, d features.Date, sink func(*features.Event), reject func(features.Reject)) (*features.Day, error)

// Engine computes partitions on the external path. How it stays exact:
//
//  1. Each source day is streamed once into B files by the hash of
//     event_id (the day's "id buckets"), kept for the next partitions whose
//     window holds the day (newest-first or oldest-first, a day serves up
//     to eight partitions).
//  2. For a partition, id bucket j of every day of its window is loaded
//     together: it holds every copy of each of its event ids in the
//     window. Copies are grouped by id hash; a group is sent to the
//     customer bucket of each of its copies' customers (usually one), all
//     copies to each. Groups that cannot change the partition are left
//     out: in the corrected logic, a group with no copy in dt = D and no
//     lookback touch of a customer who may have an order or refund in
//     dt = D (a Bloom filter of dt = D's buyers, written when D was
//     streamed). Only such customers get rows; a lookback order or refund
//     only matters as a copy of an id, and a touch of a customer without
//     rows only as a copy of an id, which a copy in D or a buyer's touch
//     already brings.
//  3. Customer bucket k (a range of customers in byte order) then holds
//     every event of its customers in the window and every copy of each of
//     their event ids, each day's events in their original read order. The
//     kernel computes it like a whole partition: de-duplication and the
//     re-delivery drop see all copies of an id, attribution and features see
//     all of a customer's events. Rows of customers outside the bucket
//     (who only lent a copy of a shared id) are dropped; buckets in order
//     give the rows in output order.
//
// An Engine computes one partition at a time: the budget is the process's.
type Engine struct {
	dir    *Dir
	budget Budget
	stream Stream

	mu      sync.Mutex
	buckets int
	days    map[features.Date]*daySpill
	lru     []features.Date // least recent first
	maxDays int
}

type daySpill struct {
	meta    *features.Day // nil: the day counts as empty
	rejects *Rejects      // the day's rejected rows
	paths   []string
	sizes   []int64
	events  int64
	// buyers is the path of the day's buyer filter (see filter).
	buyers     string
	buyersSize int64
}

// NewEngine prepares the external path; spill files go to dir.
func NewEngine(dir *Dir, budget Budget, stream Stream) *Engine {
	return &Engine{dir: dir, budget: budget, stream: stream, days: map[features.Date]*daySpill{},
		maxDays: features.LookbackDays + 2}
}

// Close removes the engine's spill files (the Dir stays).
func (e *Engine) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.dropAll()
}

func (e *Engine) dropAll() {
	for d := range e.days {
		e.drop(d)
	}
	e.lru = nil
}

func (e *Engine) drop(d features.Date) {
	s := e.days[d]
	if s == nil {
		return
	}
	for i, p := range s.paths {
		removeFile(p, s.sizes[i])
	}
	if s.buyers != "" {
		removeFile(s.buyers, s.buyersSize)
	}
	s.rejects.Close()
	delete(e.days, d)
	e.lru = slices.DeleteFunc(e.lru, func(x features.Date) bool { return x == d })
}

// Result is a partition computed on the external path.
type Result struct {
	Rows *Rows
	// Day is the partition day's files, row and reject counts (nil: the
	// day counts as empty); Rejects its rejected rows.
	Day     *features.Day
	Rejects *Rejects
}

// Close removes the result's files.
func (r *Result) Close() {
	if r != nil {
		r.Rows.Close()
		r.Rejects.Close()
	}
}

// Compute computes partition d under logic from d and its lookback days
// (features.LookbackOf), whose window holds about windowRows rows. A
// window the budget cannot cut finely enough, or a customer whose events
// alone do not fit it, fails with a usage error naming the budget needed.
func (e *Engine) Compute(ctx context.Context, d features.Date, lookback []features.Date, logic features.Logic, windowRows int64) (*Result, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.budget.CheckWindow(windowRows); err != nil {
		return nil, fmt.Errorf("partition %s: %w", d, err)
	}
	// Counted once it runs on the external path: a refused window does not.
	Partitions.Add(1)
	if k := e.budget.Buckets(windowRows); k > e.buckets {
		// Day files are cut for one bucket count: a larger window than
		// any before needs them cut finer.
		e.dropAll()
		e.buckets = k
	}
	nb := e.buckets
	frame := e.budget.frame(nb)
	// Spill space: about 40 bytes per event for each of the window's days
	// kept (up to maxDays) and again for its customer buckets (measured
	// 77 bytes per window event for one cold partition).
	need := windowRows*40 + windowRows/int64(max(1, len(lookback)+1))*int64(e.maxDays)*40
	window := append([]features.Date{d}, lookback...)
	spills := make([]*daySpill, len(window))
	for i, day := range window {
		s, err := e.spillDay(ctx, day, windowRows/int64(len(window))+1, need)
		if err != nil {
			if i > 0 {
				err = fmt.Errorf("lookback day %s of partition %s: %w", day, d, err)
			}
			return nil, err
		}
		spills[i] = s
	}
	pdir, err := os.MkdirTemp(e.dir.Path, "p-"+d.String()+"-")
	if err != nil {
		return nil, fullError(e.dir.Path, need, err)
	}
	defer os.RemoveAll(pdir)
	cust := make([]*writer, nb)
	defer func() {
		for _, w := range cust {
			if w != nil {
				w.f.Close()
				removeFile(w.path, w.n) // a no-op for files already read
			}
		}
	}()
	var buyers *filter
	if logic == features.Corrected && spills[0].buyers != "" {
		if buyers, err = loadFilter(spills[0].buyers); err != nil {
			return nil, err
		}
	}
	workers := max(1, e.budget.Workers)
	bks := make([]bucket, workers)
	for i := range bks {
		bks[i].buyers = buyers
	}
	// Id buckets, on up to workers goroutines: each customer bucket's
	// file takes records from all of them (order does not matter: each
	// day's events are put back in read order by event number).
	locks := make([]sync.Mutex, nb)
	err = each(ctx, nb, workers, nil, nil, func(wk, j int) error {
		bk := &bks[wk]
		bk.reset()
		for r, s := range spills {
			if s.meta == nil {
				continue
			}
			if err := bk.load(s.paths[j], uint8(r)); err != nil {
				return err
			}
		}
		return bk.forward(logic, nb, func(k int, rec *record) error {
			locks[k].Lock()
			defer locks[k].Unlock()
			w := cust[k]
			if w == nil {
				var err error
				if w, err = createWriter(filepath.Join(pdir, fmt.Sprintf("c%05d", k)), frame); err != nil {
					return fullError(e.dir.Path, need, err)
				}
				cust[k] = w
			}
			if err := w.add(rec.rank, bk.event(rec)); err != nil {
				return fullError(e.dir.Path, need, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	buyers = nil
	for i := range bks {
		bks[i] = bucket{}
	}
	for _, w := range cust {
		if w != nil {
			if err := w.close(); err != nil {
				return nil, fullError(e.dir.Path, need, err)
			}
		}
	}
	// A customer bucket larger than a worker's share borrows the shares of
	// others (it waits until they are free); one larger than the whole
	// budget cannot be computed exactly, and fails here, before any
	// bucket is computed.
	// The error names the heaviest bucket: a budget for the first one over
	// the limit could fail again on a heavier one, after the whole id
	// phase is run again.
	weights := make([]int, nb)
	share, whole := e.budget.share(), e.budget.bucketHeap()
	heaviest := -1
	for k, w := range cust {
		weights[k] = 1
		if w == nil {
			continue
		}
		if heaviest < 0 || w.records > cust[heaviest].records {
			heaviest = k
		}
		if m := w.records * e.budget.perEvent(); share > 0 && m > share {
			weights[k] = int(min(int64(workers), (m+share-1)/share))
		}
	}
	if heaviest >= 0 && cust[heaviest].records*e.budget.perEvent() > whole {
		n := cust[heaviest].records
		return nil, &HeavyBucketError{Day: d, Bucket: heaviest, Events: n, Limit: e.budget.Limit, Need: e.budget.limitForBucket(n)}
	}
	for _, w := range weights {
		if w > 1 {
			Borrowed.Add(1)
		}
	}
	rw, err := newRowsWriter(filepath.Join(e.dir.Path, "rows-"+d.String()+"-"+filepath.Base(pdir)), logic)
	if err != nil {
		return nil, fullError(e.dir.Path, need, err)
	}
	rw.rows.RowGroupRows = e.budget.RowGroupRows()
	done := false
	defer func() {
		if !done {
			rw.abort()
		}
	}()
	// Customer buckets, on up to workers goroutines; their rows are
	// written in bucket order (output order), each bucket waiting for the
	// one before it.
	outs := make([]*features.Output, workers)
	for i := range outs {
		outs[i] = &features.Output{Date: d, Logic: logic}
	}
	var turnMu sync.Mutex
	turnCond := sync.NewCond(&turnMu)
	turn, failed := 0, false
	// A bucket that borrows shares has the idle workers' buffers (sized for
	// the largest bucket each computed) dropped first, and its own dropped
	// once written: the shares it borrows are then free.
	release := func(wk int) { bks[wk], outs[wk] = bucket{}, &features.Output{Date: d, Logic: logic} }
	err = each(ctx, nb, workers, func(k int) int { return weights[k] }, release, func(wk, k int) (err error) {
		defer func() {
			turnMu.Lock()
			if err != nil {
				failed = true
			} else {
				turn = k + 1
			}
			turnCond.Broadcast()
			turnMu.Unlock()
		}()
		out := outs[wk]
		out.Reset()
		if w := cust[k]; w != nil {
			bk := &bks[wk]
			bk.reset()
			if err := bk.load(w.path, 0xff); err != nil {
				return err
			}
			removeFile(w.path, w.n)
			res, err := bk.compute(window, logic)
			if err != nil {
				return err
			}
			out.AppendBucket(res, k, nb)
			if weights[k] > 1 {
				defer release(wk)
			}
		}
		turnMu.Lock()
		for turn != k && !failed {
			turnCond.Wait()
		}
		stop := failed
		turnMu.Unlock()
		if stop {
			return errStopped
		}
		if err := rw.add(out); err != nil {
			return fullError(e.dir.Path, need, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	done = true
	rows, err := rw.close()
	if err != nil {
		rows.Close()
		return nil, fullError(e.dir.Path, need, err)
	}
	rejects, err := spills[0].rejects.link()
	if err != nil {
		rows.Close()
		return nil, fullError(e.dir.Path, need, err)
	}
	return &Result{Rows: rows, Day: spills[0].meta, Rejects: rejects}, nil
}

// HeavyBucketError is a customer bucket whose events alone do not fit the
// budget: one customer (or a few) with more events in the window than the
// budget can compute at once.
type HeavyBucketError struct {
	Day         features.Date
	Bucket      int
	Events      int64
	Limit, Need int64
}

func (e *HeavyBucketError) Error() string {
	return fmt.Sprintf("partition %s: %d events of one customer bucket (a customer with that many events in the window, or a few) do not fit --memory-limit %s; the partition was not committed; raise --memory-limit to at least %s",
		e.Day, e.Events, FormatSize(e.Limit), FormatSize(e.Need))
}

// ErrorKind makes it a usage error (exit 2): only a larger budget helps.
func (e *HeavyBucketError) ErrorKind() errkind.Kind { return errkind.Usage }

// Is makes it an ErrTooLarge.
func (e *HeavyBucketError) Is(target error) bool { return target == ErrTooLarge }

// spillDay returns day d cut into id buckets, streaming it from the
// source on first use.
func (e *Engine) spillDay(ctx context.Context, d features.Date, dayRows, need int64) (*daySpill, error) {
	if s, ok := e.days[d]; ok {
		e.lru = append(slices.DeleteFunc(e.lru, func(x features.Date) bool { return x == d }), d)
		return s, nil
	}
	nb := e.buckets
	frame := e.budget.frame(nb)
	ws := make([]*writer, nb)
	s := &daySpill{}
	buyers := newFilter(dayRows, e.budget.filterBytes())
	rj, err := newRejectsWriter(filepath.Join(e.dir.Path, fmt.Sprintf("r%s", d)))
	if err != nil {
		return nil, fullError(e.dir.Path, need, err)
	}
	fail := func(err error) (*daySpill, error) {
		for _, w := range ws {
			if w != nil {
				w.f.Close()
				removeFile(w.path, w.n)
			}
		}
		if rj != nil {
			rj.abort()
		}
		s.rejects.Close()
		return nil, err
	}
	var werr error
	// The v1 user-id caches the decoder keeps between days are not worth
	// their 24 MiB each to the bucket phases that follow.
	defer features.DropIdleV1Caches()
	meta, err := e.stream(ctx, d, func(ev *features.Event) {
		if werr != nil {
			return
		}
		j := features.CustomerBucket(features.IDHash(ev.ID), nb)
		w := ws[j]
		if w == nil {
			if w, werr = createWriter(filepath.Join(e.dir.Path, fmt.Sprintf("d%s-%05d", d, j)), frame); werr != nil {
				return
			}
			ws[j] = w
		}
		werr = w.add(0, ev)
		s.events++
		if ev.Type == features.Order || ev.Type == features.Refund {
			buyers.add(ev.Hi, ev.Lo)
		}
	}, rj.add)
	if err == nil {
		r, cerr := rj.close()
		rj = nil
		if cerr != nil && werr == nil {
			werr = cerr
		}
		s.rejects = r
	}
	if werr != nil {
		return fail(fullError(e.dir.Path, need, werr))
	}
	if err != nil {
		return fail(err)
	}
	if meta == nil {
		// A day that counts as empty.
		if _, err := fail(nil); err != nil {
			return nil, err
		}
		ws, s.rejects = nil, nil
	}
	for j, w := range ws {
		if w == nil {
			// An empty bucket: an empty file keeps the loaders simple.
			var err error
			if w, err = createWriter(filepath.Join(e.dir.Path, fmt.Sprintf("d%s-%05d", d, j)), frame); err != nil {
				return fail(fullError(e.dir.Path, need, err))
			}
			ws[j] = w
		}
		if err := w.close(); err != nil {
			return fail(fullError(e.dir.Path, need, err))
		}
		s.paths = append(s.paths, w.path)
		s.sizes = append(s.sizes, w.n)
	}
	s.meta = meta
	if meta == nil {
		s.paths, s.sizes = nil, nil
	} else {
		s.buyers = filepath.Join(e.dir.Path, fmt.Sprintf("b%s", d))
		if err := buyers.save(s.buyers); err != nil {
			s.buyers = ""
			return fail(fullError(e.dir.Path, need, err))
		}
		s.buyersSize = int64(len(buyers.bits) * 8)
	}
	for len(e.lru) >= e.maxDays {
		e.drop(e.lru[0])
	}
	e.days[d] = s
	e.lru = append(e.lru, d)
	return s, nil
}

// record is one loaded event; its id is ids[idOff:idOff+idLen].
type record struct {
	hash, hi, lo uint64
	ts, amount   int64
	seq          int32
	idOff, idLen uint32
	chn, ctry    uint16
	typ          features.EventType
	rank         uint8
}

// bucket holds the records of one bucket in memory, reused between buckets.
type bucket struct {
	recs []record
	ids  []byte
	ev   features.Event
	tmp  []int
	keys []uint64
	// buyers holds (a superset of) the customers with an order or refund
	// in dt = D: only they get rows.
	buyers *filter
}

func (b *bucket) reset() {
	b.recs = b.recs[:0]
	b.ids = b.ids[:0]
}

// load appends a spill file's records; rank 0xff keeps the stored ranks.
func (b *bucket) load(path string, rank uint8) error {
	return readFile(path, func(r uint8, e *features.Event) error {
		if rank != 0xff {
			r = rank
		}
		b.recs = append(b.recs, record{hash: features.IDHash(e.ID), hi: e.Hi, lo: e.Lo, ts: e.TS, amount: e.Amount,
			seq: e.Seq, idOff: uint32(len(b.ids)), idLen: uint32(len(e.ID)), chn: e.Channel, ctry: e.Country, typ: e.Type, rank: r})
		b.ids = append(b.ids, e.ID...)
		return nil
	})
}

func (b *bucket) event(r *record) *features.Event {
	b.ev = features.Event{Hi: r.hi, Lo: r.lo, TS: r.ts, Amount: r.amount, Seq: r.seq, Type: r.typ,
		Channel: r.chn, Country: r.ctry, ID: b.ids[r.idOff : r.idOff+r.idLen]}
	return &b.ev
}

// forward groups the records by id hash (all copies of an id in the window
// are here) and sends every copy of each group that can matter to the
// customer bucket of each of the group's customers. Groups are by 32 bits
// of the hash: a group holding two ids is sent whole to the buckets of
// both, which is still every copy of each id to each bucket that needs it.
func (b *bucket) forward(logic features.Logic, nb int, send func(k int, r *record) error) error {
	recs := b.recs
	keys := b.sortKeys(len(recs), func(i int) uint32 { return uint32(recs[i].hash) })
	for i := 0; i < len(keys); {
		h := keys[i] >> 32
		j := i + 1
		for j < len(keys) && keys[j]>>32 == h {
			j++
		}
		g := keys[i:j]
		i = j
		if logic == features.Corrected {
			matters := false
			for _, k := range g {
				if r := &recs[uint32(k)]; r.rank == 0 || r.typ == features.Touch && (b.buyers == nil || b.buyers.has(r.hi, r.lo)) {
					matters = true
					break
				}
			}
			if !matters {
				continue
			}
		}
		ks := b.tmp[:0]
		for _, k := range g {
			c := features.CustomerBucket(recs[uint32(k)].hi, nb)
			if !slices.Contains(ks, c) {
				ks = append(ks, c)
			}
		}
		b.tmp = ks
		for _, c := range ks {
			for _, k := range g {
				if err := send(c, &recs[uint32(k)]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sortKeys returns key(i)<<32 | i for the n records, sorted: records are
// large, so they are ordered through these keys and never moved.
func (b *bucket) sortKeys(n int, key func(i int) uint32) []uint64 {
	if cap(b.keys) < n {
		b.keys = make([]uint64, n)
	}
	keys := b.keys[:n]
	for i := range keys {
		keys[i] = uint64(key(i))<<32 | uint64(i)
	}
	slices.Sort(keys)
	return keys
}

// compute builds the bucket's days, each in its original read order, and
// runs the kernel on them.
func (b *bucket) compute(window []features.Date, logic features.Logic) (*features.Output, error) {
	recs := b.recs
	// Records by day (counting sort), then each day's by event number
	// (read order): seq<<32 | index keys, the records never move.
	start := make([]int, len(window)+1)
	idBytes := make([]int, len(window))
	for i := range recs {
		r := int(recs[i].rank)
		if r >= len(window) {
			return nil, fmt.Errorf("spill: record of day rank %d in a window of %d days", r, len(window))
		}
		start[r+1]++
		idBytes[r] += int(recs[i].idLen)
	}
	for r := range window {
		start[r+1] += start[r]
	}
	if cap(b.keys) < len(recs) {
		b.keys = make([]uint64, len(recs))
	}
	keys := b.keys[:len(recs)]
	next := slices.Clone(start)
	for i := range recs {
		r := recs[i].rank
		keys[next[r]] = uint64(recs[i].seq)<<32 | uint64(i)
		next[r]++
	}
	days := make([]*features.Day, len(window))
	for r := range window {
		dk := keys[start[r]:start[r+1]]
		if len(dk) == 0 {
			continue
		}
		slices.Sort(dk)
		db := features.NewDayBuilder(window[r], 0)
		db.Reserve(len(dk), idBytes[r])
		for _, k := range dk {
			if err := db.AddEvent(b.event(&recs[uint32(k)])); err != nil {
				return nil, err
			}
		}
		days[r] = db.Finish()
	}
	if days[0] == nil {
		days[0] = features.NewDayBuilder(window[0], 0).Finish()
	}
	if logic == features.Legacy {
		return features.ComputeLegacy(days[0]), nil
	}
	return features.ComputeCorrectedOneCore(days[0], days[1:])
}

// errStopped ends a worker whose bucket comes after a failed one.
var errStopped = errors.New("stopped after another bucket failed")

// each runs fn(worker, i) for i = 0…n-1 on up to workers goroutines, the
// i taken in increasing order, and returns the first error (the others
// then stop taking work). weight, when not nil, is how many of the
// workers' shares of memory i needs (1 to workers): i waits until that
// many are free, and no later i starts before it does, so the i being
// computed are always the earliest ones (an ordered consumer of their
// results never waits on one that waits for memory). Before an i of
// weight above 1 starts, free(worker) is called for every idle worker: the
// shares it borrows are then free, not held by buffers kept for reuse.
func each(ctx context.Context, n, workers int, weight func(i int) int, free func(worker int), fn func(worker, i int) error) error {
	sem := semaphore.NewWeighted(int64(workers))
	var take sync.Mutex // held while an i is taken and admitted
	next := 0
	var mu sync.Mutex
	var first error
	busy := make([]bool, workers) // under mu: worker is inside fn
	fail := func(err error) {
		mu.Lock()
		if first == nil || errors.Is(first, errStopped) {
			first = err
		}
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for w := 0; w < min(workers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				take.Lock()
				mu.Lock()
				stop := first != nil
				mu.Unlock()
				i := next
				next++
				if stop || i >= n {
					take.Unlock()
					return
				}
				units := 1
				if weight != nil {
					units = max(1, min(workers, weight(i)))
				}
				err := ctx.Err()
				if err == nil {
					err = sem.Acquire(ctx, int64(units))
				}
				if err == nil {
					// An idle worker waits for take (held here) or has
					// ended: its buffers are not in use.
					mu.Lock()
					busy[w] = true
					if units > 1 && free != nil {
						for o, b := range busy {
							if !b {
								free(o)
							}
						}
					}
					mu.Unlock()
				}
				take.Unlock()
				if err == nil {
					err = fn(w, i)
					mu.Lock()
					busy[w] = false
					mu.Unlock()
					sem.Release(int64(units))
				}
				if err != nil {
					fail(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
