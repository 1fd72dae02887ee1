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
	return &dayCache{maxDays: maxDays, lru: list.New(), entries: map[features.Date]*cacheEntry{}, loading: map[features.Date]*loadCall{}}
}

// get returns day d, loading it with load on a miss.
func (c *dayCache) get(ctx context.Context, d features.Date, load func(context.Context) (*features.Day, error)) (*features.Day, error) {
	c.mu.Lock()
	if e, ok := c.entries[d]; ok {
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		return e.day, nil
	}
	if call, ok := c.loading[d]; ok {
		c.mu.Unlock()
		select {
		case <-call.done:
			return call.day, call.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	call := &loadCall{done: make(chan struct{})}
	c.loading[d] = call
	c.mu.Unlock()

	call.day, call.err = load(ctx)
	c.mu.Lock()
	delete(c.loading, d)
	if call.err == nil && call.day != nil {
		c.put(d, call.day)
	}
	c.mu.Unlock()
	close(call.done)
	return call.day, call.err
}

func (c *dayCache) put(d features.Date, day *features.Day) {
	e := &cacheEntry{date: d, day: day}
	e.elem = c.lru.PushFront(e)
	c.entries[d] = e
	for c.lru.Len() > c.maxDays {
		old := c.lru.Back().Value.(*cacheEntry)
		c.lru.Remove(old.elem)
		delete(c.entries, old.date)
	}
}

// purge drops every cached day (loads under way finish normally).
func (c *dayCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Init()
	clear(c.entries)
}
