package rewrite

import (
	"container/list"
	"context"
	"sync"

	"github.com/icefill/icefill/features"
)

// dayCache keeps recently decoded days so that one decode of a day serves
// its own partition and the seven partitions whose lookback includes it.
// Concurrent requests for the same day share one decode. It holds at most
// maxDays days, least recently used out first: sized to one partition's
// window per worker, memory follows the size of a day, never the number of
// days a run processes.
type dayCache struct {
	mu      sync.Mutex
	maxDays int
	lru     *list.List // of *cacheEntry, front = most recent
	entries map[features.Date]*cacheEntry
	loading map[features.Date]*loadCall
	// ahead are the days prefetched and not asked for yet: they are not
	// evicted before then, and they are held beside the maxDays others.
	ahead map[features.Date]bool
}

type cacheEntry struct {
	date features.Date
	day  *features.Day
	elem *list.Element
}

type loadCall struct {
	done chan struct{}
	day  *features.Day
	err  error
}

func newDayCache(maxDays int) *dayCache {
	return &dayCache{maxDays: maxDays, lru: list.New(), entries: map[features.Date]*cacheEntry{}, loading: map[features.Date]*loadCall{}, ahead: map[features.Date]bool{}}
}

// get returns day d, loading it with load on a miss. While another
// goroutine loads d, get calls help (when not nil) for as long as it does
// useful work instead of waiting idle; help returns false when it had
// nothing to do.
func (c *dayCache) get(ctx context.Context, d features.Date, load func(context.Context) (*features.Day, error), help func() bool) (*features.Day, error) {
	c.mu.Lock()
	delete(c.ahead, d) // asked for: an ordinary cached day from now on
	if e, ok := c.entries[d]; ok {
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		return e.day, nil
	}
	if call, ok := c.loading[d]; ok {
		c.mu.Unlock()
		for help != nil {
			select {
			case <-call.done:
				return call.day, call.err
			case <-ctx.Done():
				return nil, ctx.Err()
			default:
			}
			if !help() {
				break
			}
		}
		select {
		case <-call.done:
			return call.day, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := c.startLoad(d)
	c.mu.Unlock()
	c.finishLoad(ctx, d, call, load)
	return call.day, call.err
}

// prefetch loads day d into the cache unless it is there or loading
// already; it never waits for another goroutine's load. A failed load is
// not kept: the partition that needs the day loads it again and reports
// the error itself.
func (c *dayCache) prefetch(ctx context.Context, d features.Date, load func(context.Context) (*features.Day, error)) {
	c.mu.Lock()
	if _, ok := c.entries[d]; ok {
		c.mu.Unlock()
		return
	}
	if _, ok := c.loading[d]; ok {
		c.mu.Unlock()
		return
	}
	call := c.startLoad(d)
	c.ahead[d] = true
	c.mu.Unlock()
	c.finishLoad(ctx, d, call, load)
}

// startLoad registers a load of d; c.mu is held.
func (c *dayCache) startLoad(d features.Date) *loadCall {
	call := &loadCall{done: make(chan struct{})}
	c.loading[d] = call
	return call
}

func (c *dayCache) finishLoad(ctx context.Context, d features.Date, call *loadCall, load func(context.Context) (*features.Day, error)) {
	call.day, call.err = load(ctx)
	c.mu.Lock()
	delete(c.loading, d)
	if call.err == nil && call.day != nil {
		c.put(d, call.day)
	} else {
		delete(c.ahead, d)
	}
	c.mu.Unlock()
	close(call.done)
}

func (c *dayCache) put(d features.Date, day *features.Day) {
	e := &cacheEntry{date: d, day: day}
	e.elem = c.lru.PushFront(e)
	c.entries[d] = e
	pinned := 0
	for d := range c.ahead {
		if _, ok := c.entries[d]; ok {
			pinned++
		}
	}
	for old := c.lru.Back(); c.lru.Len()-pinned > c.maxDays && old != nil; {
		e := old.Value.(*cacheEntry)
		old = old.Prev()
		if c.ahead[e.date] {
			continue
		}
		c.lru.Remove(e.elem)
		delete(c.entries, e.date)
	}
}

// unpin makes day d, if it was prefetched, an ordinary cached day, the
// most recently used: a partition is about to ask for it, or none ever
// will.
func (c *dayCache) unpin(d features.Date) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ahead[d] {
		return
	}
	delete(c.ahead, d)
	if e, ok := c.entries[d]; ok {
		c.lru.MoveToFront(e.elem)
	}
}

// purge drops every cached day (loads under way finish normally).
func (c *dayCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Init()
	clear(c.entries)
	clear(c.ahead)
}
