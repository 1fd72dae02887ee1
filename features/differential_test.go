package features_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/synth"
	"github.com/icefill/icefill/source"
)

// computeFast runs the production path: the source reader and the logic.
func computeFast(t testing.TB, src *source.Source, d features.Date, logic features.Logic, opts source.ReadOptions, shuffle *rand.Rand) *features.Output {
	t.Helper()
	ctx := context.Background()
	read := func(day features.Date) *features.Day {
		files, err := src.Files(ctx, day)
		if err != nil {
			return nil // counts as empty (before the source's first day)
		}
		if shuffle != nil {
			shuffle.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		}
		dd, err := src.ReadFiles(ctx, day, files, opts)
		if err != nil {
			t.Fatal(err)
		}
		return dd
	}
	main := read(d)
	if logic == features.Legacy {
		return features.ComputeLegacy(main)
	}
	var lb []*features.Day
	for _, l := range features.LookbackOf(d, logic) {
		if dd := read(l); dd != nil {
			lb = append(lb, dd)
		}
	}
	out, err := features.ComputeCorrected(main, lb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func toRefRows(o *features.Output) []refRow {
	var rows []refRow
	for i := 0; i < o.Len(); i++ {
		r := refRow{EventDate: o.Date.String(), CustomerID: o.CustomerID[i].String(), Channel: o.Channel[i],
			Orders: o.Orders[i], Gross: o.Gross[i], Refund: o.Refund[i], Net: o.Net[i]}
		if o.CountryOK[i] {
			c := o.Country[i]
			r.Country = &c
		}
		if len(o.Touches7d) > 0 {
			tc, dc := o.Touches7d[i], o.DistinctChannels7d[i]
			r.Touches7d, r.DistinctChannels7d = &tc, &dc
			if o.AvgHoursOK[i] {
				a := o.AvgHours[i]
				r.AvgHoursToConvert = &a
			}
		}
		rows = append(rows, r)
	}
	return rows
}

func sameRow(a, b refRow) bool {
	fa, fb := a.AvgHoursToConvert, b.AvgHoursToConvert
	a.AvgHoursToConvert, b.AvgHoursToConvert = nil, nil
	if !reflect.DeepEqual(a, b) || (fa == nil) != (fb == nil) {
		return false
	}
	return fa == nil || math.Abs(*fa-*fb) <= 1e-9*math.Max(1, math.Abs(*fa))
}

func fmtRow(r refRow) string {
	s := fmt.Sprintf("%s %s %s o=%d g=%d r=%d n=%d", r.EventDate, r.CustomerID, r.Channel, r.Orders, r.Gross, r.Refund, r.Net)
	if r.Country != nil {
		s += " c=" + *r.Country
	}
	if r.Touches7d != nil {
		s += fmt.Sprintf(" t=%d dc=%d", *r.Touches7d, *r.DistinctChannels7d)
	}
	if r.AvgHoursToConvert != nil {
		s += fmt.Sprintf(" avg=%g", *r.AvgHoursToConvert)
	}
	return s
}

func generate(t testing.TB, cfg synth.Config) (*source.Source, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synth.Generate(context.Background(), st, cfg, nil); err != nil {
		t.Fatal(err)
	}
	return source.New(st, dir), dir
}

// TestDifferentialAgainstReference compares the fast implementation with the
// independent, straightforward reference, value for value, on generated days
// (duplicates, late events, lookback touches, refunds, the v1→v2 switch).
func TestDifferentialAgainstReference(t *testing.T) {
	from := features.MustParseDate("2024-01-01")
	for _, seed := range []int64{1, 2} {
		src, dir := generate(t, synth.Config{From: from, To: from + 13, EventsPerDay: 3000, Seed: seed, V2From: from + 6, FilesPerDay: 3, Customers: 400})
		for _, logic := range []features.Logic{features.Legacy, features.Corrected} {
			for d := from; d <= from+13; d++ {
				got := toRefRows(computeFast(t, src, d, logic, source.ReadOptions{}, nil))
				for _, parts := range []int{3, 1000} {
					if logic != features.Corrected {
						break
					}
					// Large partitions attribute ranges of customers
					// apart and join them; 1000 ranges leave most empty.
					restore := features.SplitAttribution(parts)
					split := toRefRows(computeFast(t, src, d, logic, source.ReadOptions{}, nil))
					restore()
					if !reflect.DeepEqual(split, got) {
						t.Errorf("seed %d %s: attribution in %d ranges of customers gave other rows than in one", seed, d, parts)
					}
				}
				want, _ := referenceCompute(t, dir, d.String(), string(logic))
				if len(want) == 0 {
					t.Fatalf("seed %d %s %s: the reference produced no rows; the generator is too thin", seed, logic, d)
				}
				if len(got) != len(want) {
					t.Errorf("seed %d %s %s: %d rows, reference %d", seed, logic, d, len(got), len(want))
				}
				for i := 0; i < min(len(got), len(want)); i++ {
					if !sameRow(got[i], want[i]) {
						t.Errorf("seed %d %s %s row %d:\n fast %s\n ref  %s", seed, logic, d, i, fmtRow(got[i]), fmtRow(want[i]))
						break
					}
				}
			}
		}
	}
}

// TestInvariantsAndDeterminism checks properties that hold for any input:
// unique keys in output order, net = gross − refund, legacy ignores refunds
// and has no features, and results independent of batch size and of the
// order files are listed in.
func TestInvariantsAndDeterminism(t *testing.T) {
	from := features.MustParseDate("2023-06-01")
	src, _ := generate(t, synth.Config{From: from, To: from + 9, EventsPerDay: 5000, Seed: 7, V2From: from + 4})
	rng := rand.New(rand.NewPCG(1, 2))
	for _, logic := range []features.Logic{features.Legacy, features.Corrected} {
		for d := from; d <= from+9; d++ {
			base := computeFast(t, src, d, logic, source.ReadOptions{}, nil)
			if base.Len() == 0 {
				t.Fatalf("%s %s: no rows", logic, d)
			}
			for i := 0; i < base.Len(); i++ {
				if base.Net[i] != base.Gross[i]-base.Refund[i] || base.Orders[i] < 0 || base.Refund[i] < 0 {
					t.Fatalf("%s %s row %d: net %d, gross %d, refund %d, orders %d", logic, d, i, base.Net[i], base.Gross[i], base.Refund[i], base.Orders[i])
				}
				if i > 0 {
					pc, c := base.CustomerID[i-1].String(), base.CustomerID[i].String()
					if pc > c || (pc == c && base.Channel[i-1] >= base.Channel[i]) {
						t.Fatalf("%s %s rows %d,%d: keys not unique and ordered", logic, d, i-1, i)
					}
				}
				if logic == features.Legacy && (base.Refund[i] != 0 || base.Orders[i] == 0) {
					t.Fatalf("legacy %s row %d: refund %d, orders %d", d, i, base.Refund[i], base.Orders[i])
				}
				if logic == features.Corrected && int64(base.DistinctChannels7d[i]) > base.Touches7d[i] {
					t.Fatalf("corrected %s row %d: more distinct channels than touches", d, i)
				}
			}
			if logic == features.Legacy && len(base.Touches7d) != 0 {
				t.Fatalf("legacy output carries features")
			}
			for _, batch := range []int{7, 997} {
				other := computeFast(t, src, d, logic, source.ReadOptions{BatchSize: batch}, rng)
				if !reflect.DeepEqual(toRefRows(base), toRefRows(other)) {
					t.Fatalf("%s %s: batch size %d with shuffled file order changed the result", logic, d, batch)
				}
			}
		}
	}
}
