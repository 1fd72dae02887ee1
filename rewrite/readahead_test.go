package rewrite

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icefill/icefill/features"
)

// Days are picked in the order partitions first need them, skipping the
// ones a partition asked for already, never more than limit ahead of the
// requests.
func TestReadAheadPicksTheNextNeededDays(t *testing.T) {
	d := features.MustParseDate("2024-01-10")
	r := &readAhead{order: []features.Date{d, d - 1, d - 2, d - 3, d - 4, d - 5}, limit: 2,
		requested: map[features.Date]bool{}, ahead: map[features.Date]bool{}}
	pick := func() string {
		if day, ok := r.pick(); ok {
			return day.String()
		}
		return "none"
	}
	r.request(d)
	r.request(d - 2) // asked for out of order: never picked
	steps := []struct {
		request features.Date
		want    string
	}{
		{want: "2024-01-09"},
		{want: "2024-01-07"},
		{want: "none"}, // two ahead: the limit
		{request: d - 1, want: "2024-01-06"},
		{want: "none"},
		{request: d - 3, want: "2024-01-05"},
		{request: d - 4, want: "none"}, // nothing left to pick
	}
	for i, s := range steps {
		if s.request != 0 {
			r.request(s.request)
		}
		if got := pick(); got != s.want {
			t.Fatalf("step %d: picked %s, want %s", i, got, s.want)
		}
	}
}

// Among the next days not asked for yet, the largest is decoded first: a
// day several times the usual size must not hold up the partitions that
// need it.
func TestReadAheadPicksTheLargestOfTheNextDays(t *testing.T) {
	d := features.MustParseDate("2024-01-10")
	rows := map[features.Date]int64{d - 1: 10, d - 2: 10, d - 3: 40, d - 4: 10, d - 5: 99}
	r := &readAhead{order: []features.Date{d, d - 1, d - 2, d - 3, d - 4, d - 5}, limit: 3, rows: rows,
		requested: map[features.Date]bool{}, ahead: map[features.Date]bool{}}
	r.request(d)
	var got []string
	for {
		day, ok := r.pick()
		if !ok {
			break
		}
		got = append(got, day.String())
	}
	// The largest of d−1…d−3, then the first of three equal ones, then
	// d−5: it was beyond the next three days until two were picked.
	want := []string{"2024-01-07", "2024-01-09", "2024-01-05"}
	if !slices.Equal(got, want) {
		t.Fatalf("picked %v, want %v", got, want)
	}
}

// A day decoded ahead stays until a partition asks for it, even when it is
// the least recently used: decoding it again would undo the read-ahead.
func TestDayCacheKeepsDaysDecodedAhead(t *testing.T) {
	c := newDayCache(2)
	d := features.MustParseDate("2024-01-10")
	load := func(day features.Date) func(context.Context) (*features.Day, error) {
		return func(context.Context) (*features.Day, error) { return features.NewDayBuilder(day, 0).Finish(), nil }
	}
	c.prefetch(context.Background(), d-5, load(d-5))
	for day := d; day > d-4; day-- {
		c.get(context.Background(), day, load(day), nil)
	}
	loads := 0
	countLoads := func(context.Context) (*features.Day, error) {
		loads++
		return features.NewDayBuilder(d-5, 0).Finish(), nil
	}
	c.get(context.Background(), d-5, countLoads, nil)
	if loads != 0 {
		t.Fatal("a day decoded ahead was evicted before it was asked for")
	}
	// Asked for once, it is an ordinary cached day again.
	for day := d - 6; day > d-10; day-- {
		c.get(context.Background(), day, load(day), nil)
	}
	c.get(context.Background(), d-5, countLoads, nil)
	if loads != 1 {
		t.Fatal("a day decoded ahead and used was never evicted")
	}
}

// A goroutine that would wait for a day another one loads does useful
// work instead, for as long as there is some, then waits.
func TestDayCacheHelpsWhileAnotherLoads(t *testing.T) {
	c := newDayCache(4)
	d := features.MustParseDate("2024-01-10")
	release := make(chan struct{})
	started := make(chan struct{})
	want := features.NewDayBuilder(d, 0).Finish()
	go c.get(context.Background(), d, func(context.Context) (*features.Day, error) {
		close(started)
		<-release
		return want, nil
	}, nil)
	<-started
	var helped atomic.Int32
	help := func() bool {
		if helped.Add(1) == 3 {
			close(release) // the load ends while the helper still has work
			return false
		}
		return true
	}
	got, err := c.get(context.Background(), d, func(context.Context) (*features.Day, error) {
		t.Error("loaded a day that was loading already")
		return nil, nil
	}, help)
	if err != nil || got != want {
		t.Fatalf("got %p, %v; want the loaded day", got, err)
	}
	if helped.Load() != 3 {
		t.Errorf("helped %d times, want 3 (until help had nothing to do)", helped.Load())
	}
}

// A day loaded ahead that fails is not kept: the partition that needs it
// loads it again and sees the error itself. Prefetching a day that is
// loading never waits.
func TestDayCachePrefetch(t *testing.T) {
	c := newDayCache(4)
	d := features.MustParseDate("2024-01-10")
	bad := errors.New("bad file")
	c.prefetch(context.Background(), d, func(context.Context) (*features.Day, error) { return nil, bad })
	loads := 0
	_, err := c.get(context.Background(), d, func(context.Context) (*features.Day, error) {
		loads++
		return nil, bad
	}, nil)
	if !errors.Is(err, bad) || loads != 1 {
		t.Fatalf("after a failed prefetch: err %v after %d loads; want the error from a load of its own", err, loads)
	}

	release := make(chan struct{})
	started := make(chan struct{})
	go c.get(context.Background(), d, func(context.Context) (*features.Day, error) {
		close(started)
		<-release
		return features.NewDayBuilder(d, 0).Finish(), nil
	}, nil)
	<-started
	done := make(chan struct{})
	go func() {
		c.prefetch(context.Background(), d, func(context.Context) (*features.Day, error) {
			t.Error("prefetched a day that was loading already")
			return nil, nil
		})
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("prefetch waited for another goroutine's load")
	}
	close(release)
}

// The read-ahead days fit the budget when the largest days the cache can
// hold fit it together.
func TestLargestDays(t *testing.T) {
	for _, tc := range []struct {
		rows []int64
		n    int
		want int64
	}{
		{[]int64{10, 50, 20, 40, 30}, 3, 120},
		{[]int64{10, 50}, 3, 60},
		{nil, 3, 0},
	} {
		if got := largestDays(tc.rows, tc.n); got != tc.want {
			t.Errorf("largestDays(%v, %d) = %d, want %d", tc.rows, tc.n, got, tc.want)
		}
	}
}

// Read-ahead is planned only with days to read and only when the largest
// days the cache can then hold fit the budget together.
func TestPlanReadAhead(t *testing.T) {
	d := features.MustParseDate("2024-01-10")
	order := []features.Date{d, d - 1, d - 2, d - 3}
	rows := map[features.Date]int64{d: 5, d - 1: 50, d - 2: 7, d - 3: 40}
	var asked int64
	fitsBelow := func(limit int64) func(int64) bool {
		return func(n int64) bool { asked = n; return n <= limit }
	}
	for _, tc := range []struct {
		name  string
		order []features.Date
		fits  func(int64) bool
		want  bool
		asked int64
	}{
		{"no budget", order, nil, true, 0},
		{"fits", order, fitsBelow(97), true, 97},
		{"largest days do not fit", order, fitsBelow(96), false, 97},
		{"nothing to read", nil, fitsBelow(1000), false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked = 0
			// cacheDays 1 + limit 2: the three largest days, 50+40+7.
			r := planReadAhead(tc.order, rows, tc.fits, 1, 2)
			if (r != nil) != tc.want || asked != tc.asked {
				t.Errorf("planned %v after asking the budget for %d rows; want %v after %d", r != nil, asked, tc.want, tc.asked)
			}
		})
	}
}

// A partition under way claims its window: none of its days is picked to
// read ahead any more, and those decoded ahead are ordinary cached days.
func TestClaimReleasesTheWindow(t *testing.T) {
	d := features.MustParseDate("2024-01-10")
	var order []features.Date
	for day := d; day > d-12; day-- {
		order = append(order, day)
	}
	in := &Inputs{cache: newDayCache(20), ahead: planReadAhead(order, nil, nil, 1, 3)}
	load := func(context.Context) (*features.Day, error) { return features.NewDayBuilder(d, 0).Finish(), nil }
	for i := 0; i < 3; i++ {
		day, ok := in.ahead.pick()
		if !ok {
			t.Fatal("nothing picked")
		}
		in.cache.prefetch(context.Background(), day, load)
	}
	in.claim(d, features.Corrected) // d−7 … d, the three picked days among them
	if len(in.cache.ahead) != 0 || len(in.ahead.ahead) != 0 {
		t.Fatalf("after the claim: %d days pinned in the cache, %d counted ahead; want none", len(in.cache.ahead), len(in.ahead.ahead))
	}
	if day, ok := in.ahead.pick(); !ok || day != d-8 {
		t.Errorf("picked %s after the claim, want %s (the first day outside the window)", day, d-8)
	}
}
