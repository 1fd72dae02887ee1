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
		writeRefParquet(t, filepath.Join(dir, "dt="+d.String(), "zz-mutants.parquet"), rows)
	}
}

func spillStream(src *source.Source) spill.Stream {
	return func(ctx context.Context, d features.Date, sink func(*features.Event)) (*features.Day, error) {
		files, err := src.Files(ctx, d)
		if errors.Is(err, source.ErrMissingDay) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return src.StreamFiles(ctx, d, files, source.ReadOptions{}, sink)
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
	for _, limit := range []int64{1 << 20, 8 << 20} {
		for _, logic := range []features.Logic{features.Corrected, features.Legacy} {
			// Two buckets at once under the tiniest budget, one under the other.
			workers := 1
			if limit == 1<<20 {
				workers = 2
			}
			eng := spill.NewEngine(spillDir, spill.Budget{Limit: limit, Workers: workers}, spillStream(src))
			// Newest first, as run walks: lookback days' buckets are reused.
			for d := to; d >= from; d-- {
				out, meta, err := eng.Compute(ctx, d, features.LookbackOf(d, logic), logic, 12*3000*8)
				if err != nil {
					t.Fatal(err)
				}
				if meta == nil || meta.RowsRead == 0 {
					t.Fatalf("%s: no rows read", d)
				}
				got := spilledRows(t, out, d, logic)
				out.Close()
				mem := toRefRows(computeFast(t, src, d, logic, source.ReadOptions{}, nil))
				if len(mem) == 0 {
					t.Fatalf("%s %s: no rows", logic, d)
				}
				if len(got) != len(mem) {
					t.Fatalf("limit %d %s %s: spill %d rows, in memory %d", limit, logic, d, len(got), len(mem))
				}
				for i := range got {
					if !sameRow(got[i], mem[i]) {
						t.Fatalf("limit %d %s %s row %d:\n spill  %s\n memory %s", limit, logic, d, i, fmtRow(got[i]), fmtRow(mem[i]))
					}
				}
				if limit == 1<<20 {
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
