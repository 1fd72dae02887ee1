package source

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/icefill/icefill/internal/errkind"

	"github.com/icefill/icefill/internal/objstore"

	"github.com/icefill/icefill/features"
)

// Availability is the source's content as listed once at the start of a
// job: which days hold files, and which files. A job reads exactly the
// files it listed (and fingerprinted), whatever lands later.
type Availability struct {
	present     map[features.Date]bool
	files       map[features.Date][]objstore.Object
	First, Last features.Date
}

// Availability lists the whole source in one pass. A day is present when
// its folder holds at least one .parquet file directly (files in
// sub-folders are not part of the contract); an empty day folder is missing.
func (s *Source) Availability(ctx context.Context) (*Availability, error) {
	objs, err := s.store.List(ctx, "")
	if err != nil {
		return nil, fmt.Errorf("list source %s: %w", s.Location, err)
	}
	a := &Availability{present: map[features.Date]bool{}, files: map[features.Date][]objstore.Object{}}
	for _, o := range objs {
		dir, name, ok := strings.Cut(o.Path, "/")
		if !ok || strings.Contains(name, "/") || !strings.HasSuffix(name, ".parquet") || !strings.HasPrefix(dir, "dt=") {
			continue
		}
		d, err := features.ParseDate(strings.TrimPrefix(dir, "dt="))
		if err != nil {
			continue
		}
		a.present[d] = true
		a.files[d] = append(a.files[d], o)
	}
	first := true
	for d := range a.present {
		if first || d < a.First {
			a.First = d
		}
		if first || d > a.Last {
			a.Last = d
		}
		first = false
	}
	for d := range a.files {
		sort.Slice(a.files[d], func(i, j int) bool { return a.files[d][i].Path < a.files[d][j].Path })
	}
	return a, nil
}

// Has reports whether day d holds at least one file.
func (a *Availability) Has(d features.Date) bool { return a.present[d] }

// Files are day d's files as listed, sorted by name (nil when missing).
func (a *Availability) Files(d features.Date) []objstore.Object { return a.files[d] }

// Empty reports whether the source holds no day at all.
func (a *Availability) Empty() bool { return len(a.present) == 0 }

// Missing checks that every partition day and every lookback day inside the
// source's extent exists. Lookback days before the source's first day are
// not missing: they count as empty.
func (a *Availability) Missing(partitions []features.Date, logic features.Logic) (missingPartitions, missingLookback []features.Date) {
	seen := map[features.Date]bool{}
	for _, d := range partitions {
		if !a.present[d] {
			missingPartitions = append(missingPartitions, d)
			seen[d] = true
		}
	}
	for _, d := range partitions {
		for _, l := range features.LookbackOf(d, logic) {
			if seen[l] || a.present[l] || a.Empty() || l < a.First {
				continue
			}
			seen[l] = true
			missingLookback = append(missingLookback, l)
		}
	}
	return missingPartitions, missingLookback
}

// MissingDaysError lists missing input days before anything starts.
type MissingDaysError struct {
	Source               string
	Partitions, Lookback []features.Date
}

func (e *MissingDaysError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source %s is missing input days", e.Source)
	if len(e.Partitions) > 0 {
		fmt.Fprintf(&b, "; partition days: %s", joinDates(e.Partitions))
	}
	if len(e.Lookback) > 0 {
		fmt.Fprintf(&b, "; lookback days: %s", joinDates(e.Lookback))
	}
	b.WriteString(". Deliver them, narrow --from/--to, or pass --allow-missing to treat them as empty days")
	return b.String()
}

func joinDates(ds []features.Date) string {
	const show = 20
	var parts []string
	for i, d := range ds {
		if i == show {
			parts = append(parts, fmt.Sprintf("… and %d more", len(ds)-show))
			break
		}
		parts = append(parts, d.String())
	}
	return strings.Join(parts, ", ")
}

// ErrorKind marks missing days as bad input: the source or the range is wrong.
func (e *MissingDaysError) ErrorKind() errkind.Kind { return errkind.Usage }
