package features_test

import (
	"context"

	"errors"
	"fmt"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/synth"
	"github.com/icefill/icefill/source"
	"github.com/icefill/icefill/spill"
)

// addMutants writes one more file into every day folder of dir: copies of
// event ids seen in that day or up to nine days before it that differ from
// the original (another customer, an earlier or later event_ts, another
// type or channel), so that copies of one id fall in different customer
// buckets; plus a heavy customer with many events every day.
func addMutants(t *testing.T, dir string, from, to features.Date, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	var seen []refEvent
	heavy := "0f0f0f0f-1111-4222-8333-444444444444"
	channels := []string{"email", "social", "paid_search", "direct"}
	types := []string{"touch", "order", "refund"}
	for d := from; d <= to; d++ {
		day, _ := refReadDay(t, dir, d.String())
		seen = append(seen, day...)
		// Keep about ten days of events to copy from.
		if len(seen) > 10*len(day) {
			seen = seen[len(seen)-10*len(day):]
		}
		var rows []refInput
		for i := 0; i < len(day)/20; i++ {
			o := seen[rng.IntN(len(seen))]
			other := seen[rng.IntN(len(seen))]
			r := refInput{EventID: o.eventID, TS: o.ts, User: o.customer, EventType: o.typ, Channel: o.channel, Country: o.country}
			amt := o.amount
			r.Amount = &amt
			switch rng.IntN(5) {
			case 0:
				r.User = other.customer // same id, another customer
			case 1:
				r.User = other.customer
				r.TS -= rng.Int64N(3 * 86_400_000_000)
			case 2:
				r.TS += rng.Int64N(86_400_000_000) - 43_200_000_000
			case 3:
				r.EventType = types[rng.IntN(3)]
				r.User = heavy
			case 4:
				c := channels[rng.IntN(len(channels))]
				r.Channel = &c
			}
			rows = append(rows, r)
		}
		base := d.StartMicros()
		for i := 0; i < 300; i++ {
			c := channels[rng.IntN(len(channels))]
			amt := int64(100 + rng.IntN(5000))
			rows = append(rows, refInput{EventID: fmt.Sprintf("heavy-%s-%d", d, i), TS: base + rng.Int64N(86_400_000_000),
				User: heavy, EventType: types[rng.IntN(3)], Channel: &c, Amount: &amt})
		}
		// Rows the contract rejects, kept on disk by the external path.
		for i := 0; i < 7; i++ {
			rows = append(rows, refInput{EventID: fmt.Sprintf("bad-%s-%d", d, i), TS: base + int64(i), User: heavy, EventType: "bogus"})
		}
		writeRefParquet(t, filepath.Join(dir, "dt="+d.String(), "zz-mutants.parquet"), rows)
	}
}

func spillStream(src *source.Source) spill.Stream {
	return func(ctx context.Context, d features.Date, sink func(*features.Event), reject func(features.Reject)) (*features.Day, error) {
		files, err := src.Files(ctx, d)
		if errors.Is(err, source.ErrMissingDay) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return src.StreamFiles(ctx, d, files, source.ReadOptions{}, sink, reject)
	}
}

// TestSpillMatchesInMemoryAndReference runs the external path with budgets
// so small that windows are cut into many buckets (most of them empty for
// the tiniest), and compares it row for row with the in-memory path and
// with the reference implementation.
func TestSpillMatchesInMemoryAndReference(t *testing.T) {
	from := features.MustParseDate("2024-03-01")
	to := from + 11
	src, dir := generate(t, synth.Config{From: from, To: to, EventsPerDay: 3000, Seed: 5, V2From: from + 5, FilesPerDay: 3, Customers: 500})
	addMutants(t, dir, from, to, 5)
	spillDir, err := spill.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer spillDir.Close()
	ctx := context.Background()
	// Many buckets (a few customers each, some empty) and a few; a budget
	// cut that fine would be far below the smallest one accepted, so the
	// bucket counts are forced.
	for _, nb := range []int{97, 6} {
		for _, logic := range []features.Logic{features.Corrected, features.Legacy} {
			// Two buckets at once with many buckets, one with few.
			workers := 1
			if nb == 97 {
				workers = 2
			}
			eng := spill.NewEngine(spillDir, spill.Budget{Limit: 1 << 30, ForceBuckets: nb, Workers: workers}, spillStream(src))
			// Newest first, as run walks: lookback days' buckets are reused.
			for d := to; d >= from; d-- {
				res, err := eng.Compute(ctx, d, features.LookbackOf(d, logic), logic, 12*3000*8)
				if err != nil {
					t.Fatal(err)
				}
				if res.Day == nil || res.Day.RowsRead == 0 {
					t.Fatalf("%s: no rows read", d)
				}
				got := spilledRows(t, res.Rows, d, logic)
				sameRejects(t, src, d, res)
				res.Close()
				mem := toRefRows(computeFast(t, src, d, logic, source.ReadOptions{}, nil))
				if len(mem) == 0 {
					t.Fatalf("%s %s: no rows", logic, d)
				}
				if len(got) != len(mem) {
					t.Fatalf("%d buckets %s %s: spill %d rows, in memory %d", nb, logic, d, len(got), len(mem))
				}
				for i := range got {
					if !sameRow(got[i], mem[i]) {
						t.Fatalf("%d buckets %s %s row %d:\n spill  %s\n memory %s", nb, logic, d, i, fmtRow(got[i]), fmtRow(mem[i]))
					}
				}
				if nb == 97 {
					want, _ := referenceCompute(t, dir, d.String(), string(logic))
					if len(want) != len(got) {
						t.Fatalf("%s %s: spill %d rows, reference %d", logic, d, len(got), len(want))
					}
					for i := range got {
						if !sameRow(got[i], want[i]) {
							t.Fatalf("%s %s row %d:\n spill %s\n ref   %s", logic, d, i, fmtRow(got[i]), fmtRow(want[i]))
						}
					}
				}
			}
			eng.Close()
		}
	}
	if n := spill.BytesOnDisk.Load(); n != 0 {
		t.Errorf("%d spill bytes still on disk after Close", n)
	}
	ents, _ := os.ReadDir(spillDir.Path)
	if len(ents) != 1 { // the lock file
		t.Errorf("spill folder holds %d entries after Close, want only the lock", len(ents))
	}
}

// sameRejects compares the rejects the external path kept on disk with
// the in-memory path's, row for row.
func sameRejects(t *testing.T, src *source.Source, d features.Date, res *spill.Result) {
	t.Helper()
	ctx := context.Background()
	files, err := src.Files(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	day, err := src.ReadFiles(ctx, d, files, source.ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, r := range day.Rejects {
		want = append(want, fmt.Sprintf("%s|%d|%s", r.File, r.Row, r.Reason))
	}
	if len(want) == 0 {
		t.Fatalf("%s: no rejects to compare", d)
	}
	for rec, err := range res.Rejects.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		file, row, reason := rec.Column(1).(*array.String), rec.Column(2).(*array.Int64), rec.Column(3).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			got = append(got, fmt.Sprintf("%s|%d|%s", file.Value(i), row.Value(i), reason.Value(i)))
		}
		rec.Release()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || res.Day.RejectedCount() != int64(len(want)) || res.Rejects.N != int64(len(want)) {
		t.Fatalf("%s: spilled rejects %v (counted %d), in memory %v", d, got, res.Day.RejectedCount(), want)
	}
	if len(res.Day.Rejects) != 0 {
		t.Fatalf("%s: the external path kept %d rejects in memory", d, len(res.Day.Rejects))
	}
}

// spilledRows reads the external path's rows back, row group by row group.
func spilledRows(t *testing.T, rows *spill.Rows, d features.Date, logic features.Logic) []refRow {
	t.Helper()
	var out []refRow
	for rec, err := range rows.Records(context.Background(), spill.OutputSchema(logic)) {
		if err != nil {
			t.Fatal(err)
		}
		col := func(name string) arrow.Array { return rec.Column(rec.Schema().FieldIndices(name)[0]) }
		cust, ch := col(features.OutCustomerID).(*array.String), col(features.OutChannel).(*array.String)
		orders, gross := col(features.OutOrders).(*array.Int64), col(features.OutGrossRevenueCents).(*array.Int64)
		refund, net := col(features.OutRefundCents).(*array.Int64), col(features.OutNetRevenueCents).(*array.Int64)
		ctry := col(features.OutCountry).(*array.String)
		for i := 0; i < int(rec.NumRows()); i++ {
			r := refRow{EventDate: d.String(), CustomerID: cust.Value(i), Channel: ch.Value(i), Orders: orders.Value(i),
				Gross: gross.Value(i), Refund: refund.Value(i), Net: net.Value(i)}
			if ctry.IsValid(i) {
				c := ctry.Value(i)
				r.Country = &c
			}
			if logic == features.Corrected {
				tc := col(features.OutTouches7d).(*array.Int64).Value(i)
				dc := col(features.OutDistinctChannels7d).(*array.Int32).Value(i)
				r.Touches7d, r.DistinctChannels7d = &tc, &dc
				if a := col(features.OutAvgHoursToConvert).(*array.Float64); a.IsValid(i) {
					v := a.Value(i)
					r.AvgHoursToConvert = &v
				}
			}
			out = append(out, r)
		}
		rec.Release()
	}
	if int64(len(out)) != rows.N {
		t.Fatalf("%s: read %d rows back, %d written", d, len(out), rows.N)
	}
	return out
}
