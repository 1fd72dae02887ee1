package rewrite

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RateLimiter caps the bytes per second read from the source, shared by all
// workers of a process, so a backfill leaves bandwidth to the nightly job.
type RateLimiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	tokens float64
	last   time.Time
}

// NewRateLimiter allows bytesPerSecond on average with one second of burst.
func NewRateLimiter(bytesPerSecond float64) *RateLimiter {
	return &RateLimiter{rate: bytesPerSecond, tokens: bytesPerSecond, last: time.Now()}
}

// Wait blocks until n bytes may be read. A read larger than the burst is
// allowed and paid back by waiting (the balance goes negative).
func (r *RateLimiter) Wait(ctx context.Context, n int) error {
	r.mu.Lock()
	now := time.Now()
	r.tokens = min(r.rate, r.tokens+now.Sub(r.last).Seconds()*r.rate)
	r.last = now
	r.tokens -= float64(n)
	var wait time.Duration
	if r.tokens < 0 {
		wait = time.Duration(-r.tokens / r.rate * float64(time.Second))
	}
	r.mu.Unlock()
	if wait == 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ParseByteRate reads "200MiB/s", "50MB/s", "1GiB/s" or a plain number of
// bytes per second. "" or "0" means unlimited (0).
func ParseByteRate(s string) (float64, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if s == "" || s == "0" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			mult, s = u.mult, strings.TrimSpace(strings.TrimSuffix(s, u.suffix))
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("read rate %q: want e.g. 200MiB/s, 50MB/s or bytes per second", s)
	}
	return v * mult, nil
}

// PauseWindow is a daily UTC time range in which no new partition starts
// (running ones finish), e.g. while the nightly pipeline runs.
type PauseWindow struct {
	start, end time.Duration // since midnight UTC; end < start wraps midnight
	text       string
}

// ParsePauseWindow reads "HH:MM-HH:MM" (UTC). "" means no window.
func ParsePauseWindow(s string) (*PauseWindow, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return nil, fmt.Errorf("pause window %q: want HH:MM-HH:MM in UTC, e.g. 01:00-05:00", s)
	}
	start, err1 := parseClock(a)
	end, err2 := parseClock(b)
	if err1 != nil || err2 != nil || start == end {
		return nil, fmt.Errorf("pause window %q: want HH:MM-HH:MM in UTC with distinct ends, e.g. 01:00-05:00", s)
	}
	return &PauseWindow{start: start, end: end, text: s}, nil
}

func parseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

func (w *PauseWindow) String() string { return w.text + " UTC" }

// Remaining is how long until the window ends if now is inside it, else 0.
func (w *PauseWindow) Remaining(now time.Time) time.Duration {
	if w == nil {
		return 0
	}
	now = now.UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	tod := now.Sub(midnight)
	switch {
	case w.start < w.end && tod >= w.start && tod < w.end:
		return w.end - tod
	case w.start > w.end && tod >= w.start:
		return 24*time.Hour - tod + w.end
	case w.start > w.end && tod < w.end:
		return w.end - tod
	}
	return 0
}
