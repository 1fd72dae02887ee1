package spill

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/synth"
	"github.com/icefill/icefill/source"
)

// TestParallelBucketsSameRows: computing buckets on several goroutines
// gives the rows of one at a time (run with -race: the engine's shared
// writers and ordered output). The differential tests in features compare
// the external path with the in-memory path and the reference.
func TestParallelBucketsSameRows(t *testing.T) {
	from := features.MustParseDate("2024-02-01")
	dir := t.TempDir()
	st, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Generate(context.Background(), st, synth.Config{From: from, To: from + 9, EventsPerDay: 800, Seed: 3, Customers: 150}, nil); err != nil {
		t.Fatal(err)
	}
	src := source.New(st, dir)
	stream := func(ctx context.Context, d features.Date, sink func(*features.Event), reject func(features.Reject)) (*features.Day, error) {
		files, err := src.Files(ctx, d)
		if errors.Is(err, source.ErrMissingDay) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return src.StreamFiles(ctx, d, files, source.ReadOptions{}, sink, reject)
	}
	sd, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	rows := func(workers int, d features.Date) []string {
		e := NewEngine(sd, Budget{Limit: 1 << 30, ForceBuckets: 13, Workers: workers}, stream)
		defer e.Close()
		res, err := e.Compute(context.Background(), d, features.LookbackOf(d, features.Corrected), features.Corrected, 8000)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		return readRows(t, res.Rows)
	}
	for _, d := range []features.Date{from + 9, from + 3} {
		one, three := rows(1, d), rows(3, d)
		if len(one) == 0 {
			t.Fatalf("%s: no rows", d)
		}
		if fmt.Sprint(one) != fmt.Sprint(three) {
			t.Fatalf("%s: 3 workers gave other rows than 1 (%d vs %d rows)", d, len(three), len(one))
		}
	}
}

// readRows prints the corrected logic's spilled rows, one string a row.
func readRows(t *testing.T, r *Rows) []string {
	t.Helper()
	var out []string
	for rec, err := range r.Records(context.Background(), OutputSchema(features.Corrected)) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, printRows(rec)...)
		rec.Release()
	}
	return out
}

// printRows prints a record's rows, one string a row.
func printRows(rec arrow.RecordBatch) []string {
	var out []string
	for i := 0; i < int(rec.NumRows()); i++ {
		var row string
		for c := 0; c < int(rec.NumCols()); c++ {
			row += fmt.Sprint(rec.Column(c).GetOneForMarshal(i)) + "|"
		}
		out = append(out, row)
	}
	return out
}

// eventWindow makes days of events in memory: 300 customers, about 2,000
// events a day of which some re-deliver an id of an earlier day (to the
// same or another customer), and a bot: one customer with botPerDay
// events every day, an order among them.
func eventWindow(from features.Date, days, botPerDay int) map[features.Date][]features.Event {
	rng := rand.New(rand.NewPCG(7, uint64(botPerDay)))
	cust := make([][2]uint64, 300)
	for i := range cust {
		cust[i] = [2]uint64{rng.Uint64(), rng.Uint64()}
	}
	bot := [2]uint64{rng.Uint64(), rng.Uint64()}
	types := []features.EventType{features.Touch, features.Touch, features.Touch, features.Touch, features.Order, features.Refund}
	out := map[features.Date][]features.Event{}
	var seen []features.Event
	for d := from; d < from+features.Date(days); d++ {
		var evs []features.Event
		add := func(c [2]uint64, typ features.EventType, id string) {
			evs = append(evs, features.Event{Hi: c[0], Lo: c[1], TS: d.StartMicros() + rng.Int64N(86_400_000_000),
				Amount: int64(100 + rng.IntN(900)), Type: typ, ID: []byte(id)})
		}
		for i := 0; i < 2000; i++ {
			add(cust[rng.IntN(len(cust))], types[rng.IntN(len(types))], fmt.Sprintf("e-%s-%d", d, i))
		}
		for i := 0; i < botPerDay; i++ {
			typ := features.Touch
			if i%50 == 0 {
				typ = features.Order
			}
			add(bot, typ, fmt.Sprintf("bot-%s-%d", d, i))
		}
		for i := 0; i < 100 && len(seen) > 0; i++ {
			e := seen[rng.IntN(len(seen))]
			if i%2 == 0 {
				c := cust[rng.IntN(len(cust))]
				e.Hi, e.Lo = c[0], c[1]
			}
			e.TS += rng.Int64N(3_600_000_000)
			evs = append(evs, e)
		}
		rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		out[d] = evs
		seen = append(seen, evs...)
	}
	return out
}

// streamOf streams the days of eventWindow; other days count as empty.
func streamOf(days map[features.Date][]features.Event) Stream {
	return func(ctx context.Context, d features.Date, sink func(*features.Event), reject func(features.Reject)) (*features.Day, error) {
		evs, ok := days[d]
		if !ok {
			return nil, nil
		}
		for i := range evs {
			e := evs[i]
			e.Seq = int32(i)
			sink(&e)
		}
		b := features.NewDayBuilder(d, 0)
		b.SetSink(func(*features.Event) {})
		return b.Finish(), nil
	}
}

// inMemory computes partition d of eventWindow's days with the in-memory
// kernel.
func inMemory(t *testing.T, days map[features.Date][]features.Event, d features.Date) []string {
	t.Helper()
	build := func(d features.Date) *features.Day {
		evs, ok := days[d]
		if !ok {
			return nil
		}
		b := features.NewDayBuilder(d, len(evs))
		for i := range evs {
			if err := b.AddEvent(&evs[i]); err != nil {
				t.Fatal(err)
			}
		}
		return b.Finish()
	}
	var lb []*features.Day
	for _, l := range features.LookbackOf(d, features.Corrected) {
		if day := build(l); day != nil {
			lb = append(lb, day)
		}
	}
	out, err := features.ComputeCorrected(build(d), lb)
	if err != nil {
		t.Fatal(err)
	}
	rec := out.Record(memory.DefaultAllocator, OutputSchema(features.Corrected))
	defer rec.Release()
	return printRows(rec)
}

// TestHeavyCustomerBorrowsTheBudget: a customer (a bot) whose window
// events exceed a worker's share is computed exactly, its bucket taking
// the shares of the other workers; one whose events exceed the whole
// budget fails before any bucket is computed, with a usage error naming
// the budget it needs.
func TestHeavyCustomerBorrowsTheBudget(t *testing.T) {
	from := features.MustParseDate("2024-03-01")
	days := eventWindow(from, 10, 180)
	sd, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	d := from + 9
	want := inMemory(t, days, d)
	if len(want) == 0 {
		t.Fatal("no rows")
	}
	// Each worker's share holds 1,000 events: a bucket of normal
	// customers holds about 300, the bot's about 1,700, under the 2,000
	// or so one bucket computed alone may hold.
	b := Budget{Limit: 256 << 20, Workers: 2, ForceBuckets: 64}
	b.EventBytes = b.share() / 1000
	if b.bucketHeap()/b.EventBytes < 2000 {
		t.Fatalf("a bucket computed alone holds %d events, too few for this test", b.bucketHeap()/b.EventBytes)
	}
	borrowed := Borrowed.Load()
	e := NewEngine(sd, b, streamOf(days))
	res, err := e.Compute(context.Background(), d, features.LookbackOf(d, features.Corrected), features.Corrected, 21000)
	if err != nil {
		t.Fatal(err)
	}
	got := readRows(t, res.Rows)
	res.Close()
	e.Close()
	if n := Borrowed.Load() - borrowed; n < 1 || n > 3 {
		t.Fatalf("%d buckets borrowed shares; want the bot's (and at most a neighbour or two)", n)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the heavy customer's partition differs from the in-memory one (%d vs %d rows)", len(got), len(want))
	}

	// A budget whose whole heap holds 500 events of a bucket: the bot's
	// cannot be computed.
	b.EventBytes = b.bucketHeap() / 500
	e = NewEngine(sd, b, streamOf(days))
	defer e.Close()
	_, err = e.Compute(context.Background(), d, features.LookbackOf(d, features.Corrected), features.Corrected, 21000)
	var heavy *HeavyBucketError
	if !errors.As(err, &heavy) {
		t.Fatalf("got %v, want a HeavyBucketError", err)
	}
	if k, _ := errkind.Of(err); k != errkind.Usage {
		t.Fatalf("kind %v, want usage: %v", k, err)
	}
	if heavy.Need <= b.Limit || !strings.Contains(err.Error(), "raise --memory-limit to at least "+FormatSize(heavy.Need)) {
		t.Fatalf("the error does not say which budget would do: %v", err)
	}
}

// TestHeavyErrorNamesTheHeaviestBucket: with two customers too heavy for
// the budget, in different buckets (the lighter one first), the budget the
// error names computes the partition; naming the first one over the limit
// would send the user round again.
func TestHeavyErrorNamesTheHeaviestBucket(t *testing.T) {
	from := features.MustParseDate("2024-03-01")
	days := eventWindow(from, 10, 0)
	bot := func(hi uint64, perDay int, tag string) {
		for d := from; d < from+10; d++ {
			for i := 0; i < perDay; i++ {
				typ := features.Touch
				if i%50 == 0 {
					typ = features.Order
				}
				days[d] = append(days[d], features.Event{Hi: hi, Lo: 1, TS: d.StartMicros() + int64(i)*1000, Amount: 100, Type: typ, ID: []byte(fmt.Sprintf("%s-%s-%d", tag, d, i))})
			}
		}
	}
	bot(0x0100000000000000, 150, "light")
	bot(0xF000000000000000, 400, "heavy") // in a later bucket
	sd, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	d := from + 9
	b := Budget{Limit: 256 << 20, Workers: 2, ForceBuckets: 64}
	b.EventBytes = b.bucketHeap() / 1000 // both bots are over it
	compute := func(b Budget) error {
		e := NewEngine(sd, b, streamOf(days))
		defer e.Close()
		res, err := e.Compute(context.Background(), d, features.LookbackOf(d, features.Corrected), features.Corrected, 30000)
		res.Close()
		return err
	}
	var heavy *HeavyBucketError
	if err := compute(b); !errors.As(err, &heavy) {
		t.Fatalf("got %v, want a HeavyBucketError", err)
	}
	b.Limit = heavy.Need
	if err := compute(b); err != nil {
		t.Fatalf("under the budget the error named (%s): %v", FormatSize(heavy.Need), err)
	}
}

// TestFullDiskFailsNamingTheFolder: a spill write that finds the disk full
// (the kernel's own ENOSPC, from /dev/full) fails the partition with a
// usage error naming the spill folder and the space needed, whichever
// file it was writing, and leaves no spill file behind.
func TestFullDiskFailsNamingTheFolder(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	from := features.MustParseDate("2024-03-01")
	days := eventWindow(from, 10, 0)
	orig := openFile
	defer func() { openFile = orig }()
	for _, tc := range []struct{ name, prefix string }{
		{"id buckets", "d2"}, {"buyer filter", "b2"}, {"rejects", "r2"}, {"customer buckets", "c0"}, {"rows", "rows-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sd, err := OpenDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer sd.Close()
			var failed atomic.Bool
			openFile = func(path string) (*os.File, error) {
				if strings.HasPrefix(filepath.Base(path), tc.prefix) {
					failed.Store(true)
					return os.OpenFile("/dev/full", os.O_WRONLY, 0)
				}
				return orig(path)
			}
			e := NewEngine(sd, Budget{Limit: 1 << 30, ForceBuckets: 4, Workers: 2}, streamOf(days))
			d := from + 9
			_, err = e.Compute(context.Background(), d, features.LookbackOf(d, features.Corrected), features.Corrected, 20000)
			e.Close()
			if !failed.Load() {
				t.Fatalf("no %s file was written", tc.name)
			}
			if k, _ := errkind.Of(err); k != errkind.Usage || !strings.Contains(err.Error(), sd.Path) || !strings.Contains(err.Error(), "needs about") {
				t.Fatalf("got %v (kind %v), want a usage error naming %s and the space needed", err, k, sd.Path)
			}
			var left []string
			filepath.WalkDir(sd.Path, func(p string, de os.DirEntry, err error) error {
				if err == nil && !de.IsDir() && de.Name() != "lock" {
					left = append(left, p)
				}
				return nil
			})
			if len(left) > 0 {
				t.Fatalf("spill files left after the failure: %v", left)
			}
		})
	}
}

// TestRejectsWithoutHardLinks: on a spill folder whose file system has no
// hard links (EPERM, as some FUSE and network mounts answer), the
// partition's rejects are a copy: the partition is computed, its rejected
// rows read back, and nothing is left once it is released.
func TestRejectsWithoutHardLinks(t *testing.T) {
	orig := linkFile
	defer func() { linkFile = orig }()
	linkFile = func(from, to string) error { return &os.LinkError{Op: "link", Old: from, New: to, Err: syscall.EPERM} }
	from := features.MustParseDate("2024-03-01")
	days := eventWindow(from, 10, 0)
	d := from + 9
	stream := func(ctx context.Context, day features.Date, sink func(*features.Event), reject func(features.Reject)) (*features.Day, error) {
		if day == d {
			for i := range 7 {
				reject(features.Reject{Date: day, File: "f.parquet", Row: int64(i), Reason: features.RejectNullUserID})
			}
		}
		return streamOf(days)(ctx, day, sink, reject)
	}
	sd, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	e := NewEngine(sd, Budget{Limit: 1 << 30, ForceBuckets: 4, Workers: 2}, stream)
	res, err := e.Compute(context.Background(), d, features.LookbackOf(d, features.Corrected), features.Corrected, 20000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rec, err := range res.Rejects.Records(context.Background()) {
		if err != nil {
			t.Fatal(err)
		}
		n += int(rec.NumRows())
	}
	if n != 7 {
		t.Fatalf("%d rejected rows read back, want 7", n)
	}
	res.Close()
	e.Close()
	if ents, _ := os.ReadDir(sd.Path); len(ents) != 1 {
		t.Fatalf("spill folder holds %d entries, want only the lock", len(ents))
	}
}

// TestRefusedWindowIsNotCounted: a window the budget refuses is not
// counted among the partitions computed on the external path.
func TestRefusedWindowIsNotCounted(t *testing.T) {
	sd, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	from := features.MustParseDate("2024-03-01")
	e := NewEngine(sd, Budget{Limit: 256 << 20, ForceBuckets: MaxBuckets + 1}, streamOf(eventWindow(from, 10, 0)))
	defer e.Close()
	before := Partitions.Load()
	d := from + 9
	_, err = e.Compute(context.Background(), d, features.LookbackOf(d, features.Corrected), features.Corrected, 20000)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want the window refused", err)
	}
	if n := Partitions.Load() - before; n != 0 {
		t.Fatalf("a refused window counted as %d spilled partitions", n)
	}
}

// TestEmptyPartitionDay: a partition whose own day counts as empty (an
// allowed missing day) gives no rows, no rejects and no error, and leaves
// nothing behind.
func TestEmptyPartitionDay(t *testing.T) {
	from := features.MustParseDate("2024-03-01")
	days := eventWindow(from, 9, 0)
	sd, err := OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	e := NewEngine(sd, Budget{Limit: 1 << 30, ForceBuckets: 5, Workers: 2}, streamOf(days))
	d := from + 9 // not in days: counts as empty
	res, err := e.Compute(context.Background(), d, features.LookbackOf(d, features.Corrected), features.Corrected, 18000)
	if err != nil {
		t.Fatal(err)
	}
	if res.Day != nil || res.Rejects != nil || res.Rows.N != 0 || len(readRows(t, res.Rows)) != 0 {
		t.Fatalf("an empty day gave day %v, rejects %v, %d rows", res.Day, res.Rejects, res.Rows.N)
	}
	res.Close()
	e.Close()
	ents, _ := os.ReadDir(sd.Path)
	if len(ents) != 1 {
		t.Fatalf("spill folder holds %d entries, want only the lock", len(ents))
	}
}
