package spill

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/icefill/icefill/features"
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
		r := res.Rows
		var out []string
		for rec, err := range r.Records(context.Background(), OutputSchema(features.Corrected)) {
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < int(rec.NumRows()); i++ {
				var row string
				for c := 0; c < int(rec.NumCols()); c++ {
					row += fmt.Sprint(rec.Column(c).GetOneForMarshal(i)) + "|"
				}
				out = append(out, row)
			}
			rec.Release()
		}
		return out
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
