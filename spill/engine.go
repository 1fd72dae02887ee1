package spill

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/icefill/icefill/features"
)

// Stream reads source day d, handing every accepted event to sink in read
// order, and returns the day's files, row count and rejects (a Day without
// events); (nil, nil) for a day that counts as empty.
type Stream func(ctx context.Context, d features.Date, sink func(*features.Event)) (*features.Day, error)

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
//     touch (lookback orders and refunds only matter as copies of an id).
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
	meta   *features.Day // nil: the day counts as empty
	paths  []string
	sizes  []int64
	events int64
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
	delete(e.days, d)
	e.lru = slices.DeleteFunc(e.lru, func(x features.Date) bool { return x == d })
}

// Compute computes partition d under logic from d and its lookback days
// (features.LookbackOf), whose window holds about windowRows rows. It
// returns the rows and d's files, row count and rejects (nil: empty day).
func (e *Engine) Compute(ctx context.Context, d features.Date, lookback []features.Date, logic features.Logic, windowRows int64) (*features.Output, *features.Day, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	Partitions.Add(1)
	if k := e.budget.Buckets(windowRows); k > e.buckets {
		// Day files are cut for one bucket count: a larger window than
		// any before needs them cut finer.
		e.dropAll()
		e.buckets = k
	}
	nb := e.buckets
	need := windowRows * 2 * 48
	window := append([]features.Date{d}, lookback...)
	spills := make([]*daySpill, len(window))
	for i, day := range window {
		s, err := e.spillDay(ctx, day, need)
		if err != nil {
			if i > 0 {
				err = fmt.Errorf("lookback day %s of partition %s: %w", day, d, err)
			}
			return nil, nil, err
		}
		spills[i] = s
	}
	pdir, err := os.MkdirTemp(e.dir.Path, "p-"+d.String()+"-")
	if err != nil {
		return nil, nil, fullError(e.dir.Path, need, err)
	}
	defer os.RemoveAll(pdir)
	cust := make([]*writer, nb)
	defer func() {
		for _, w := range cust {
			if w != nil {
				w.f.Close()
				removeFile(w.path, w.n)
			}
		}
	}()
	var bk bucket
	for j := 0; j < nb; j++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		bk.reset()
		for r, s := range spills {
			if s.meta == nil {
				continue
			}
			if err := bk.load(s.paths[j], uint8(r)); err != nil {
				return nil, nil, err
			}
		}
		if err := bk.forward(logic, nb, func(k int, rec *record) error {
			w := cust[k]
			if w == nil {
				var err error
				if w, err = createWriter(filepath.Join(pdir, fmt.Sprintf("c%05d", k))); err != nil {
					return err
				}
				cust[k] = w
			}
			return w.add(rec.rank, bk.event(rec))
		}); err != nil {
			return nil, nil, fullError(e.dir.Path, need, err)
		}
	}
	for _, w := range cust {
		if w != nil {
			if err := w.close(); err != nil {
				return nil, nil, fullError(e.dir.Path, need, err)
			}
		}
	}
	out := &features.Output{Date: d, Logic: logic}
	for k, w := range cust {
		if w == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		bk.reset()
		if err := bk.load(w.path, 0xff); err != nil {
			return nil, nil, err
		}
		removeFile(w.path, w.n)
		cust[k] = nil
		res, err := bk.compute(window, logic)
		if err != nil {
			return nil, nil, err
		}
		out.AppendBucket(res, k, nb)
	}
	return out, spills[0].meta, nil
}

// spillDay returns day d cut into id buckets, streaming it from the
// source on first use.
func (e *Engine) spillDay(ctx context.Context, d features.Date, need int64) (*daySpill, error) {
	if s, ok := e.days[d]; ok {
		e.lru = append(slices.DeleteFunc(e.lru, func(x features.Date) bool { return x == d }), d)
		return s, nil
	}
	nb := e.buckets
	ws := make([]*writer, nb)
	s := &daySpill{}
	fail := func(err error) (*daySpill, error) {
		for _, w := range ws {
			if w != nil {
				w.f.Close()
				removeFile(w.path, w.n)
			}
		}
		return nil, err
	}
	var werr error
	meta, err := e.stream(ctx, d, func(ev *features.Event) {
		if werr != nil {
			return
		}
		j := features.CustomerBucket(features.IDHash(ev.ID), nb)
		w := ws[j]
		if w == nil {
			if w, werr = createWriter(filepath.Join(e.dir.Path, fmt.Sprintf("d%s-%05d", d, j))); werr != nil {
				return
			}
			ws[j] = w
		}
		werr = w.add(0, ev)
		s.events++
	})
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
		ws = nil
	}
	for j, w := range ws {
		if w == nil {
			// An empty bucket: an empty file keeps the loaders simple.
			var err error
			if w, err = createWriter(filepath.Join(e.dir.Path, fmt.Sprintf("d%s-%05d", d, j))); err != nil {
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
// customer bucket of each of the group's customers.
func (b *bucket) forward(logic features.Logic, nb int, send func(k int, r *record) error) error {
	recs := b.recs
	slices.SortFunc(recs, func(x, y record) int { return cmp.Compare(x.hash, y.hash) })
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].hash == recs[i].hash {
			j++
		}
		g := recs[i:j]
		i = j
		if logic == features.Corrected {
			matters := false
			for k := range g {
				if g[k].rank == 0 || g[k].typ == features.Touch {
					matters = true
					break
				}
			}
			if !matters {
				continue
			}
		}
		ks := b.tmp[:0]
		for k := range g {
			c := features.CustomerBucket(g[k].hi, nb)
			if !slices.Contains(ks, c) {
				ks = append(ks, c)
			}
		}
		b.tmp = ks
		for _, c := range ks {
			for k := range g {
				if err := send(c, &g[k]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// compute builds the bucket's days, each in its original read order, and
// runs the kernel on them.
func (b *bucket) compute(window []features.Date, logic features.Logic) (*features.Output, error) {
	recs := b.recs
	slices.SortFunc(recs, func(x, y record) int {
		if c := cmp.Compare(x.rank, y.rank); c != 0 {
			return c
		}
		return cmp.Compare(x.seq, y.seq)
	})
	days := make([]*features.Day, len(window))
	for i := 0; i < len(recs); {
		j := i
		var idBytes int
		for j < len(recs) && recs[j].rank == recs[i].rank {
			idBytes += int(recs[j].idLen)
			j++
		}
		r := int(recs[i].rank)
		if r >= len(window) {
			return nil, fmt.Errorf("spill: record of day rank %d in a window of %d days", r, len(window))
		}
		db := features.NewDayBuilder(window[r], 0)
		db.Reserve(j-i, idBytes)
		for k := i; k < j; k++ {
			if err := db.AddEvent(b.event(&recs[k])); err != nil {
				return nil, err
			}
		}
		days[r] = db.Finish()
		i = j
	}
	if days[0] == nil {
		days[0] = features.NewDayBuilder(window[0], 0).Finish()
	}
	if logic == features.Legacy {
		return features.ComputeLegacy(days[0]), nil
	}
	return features.ComputeCorrected(days[0], days[1:])
}
