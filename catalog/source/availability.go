package source

import (
	"context"
	"fmt"
	"strings"

	"github.com/icefill/icefill/features"
)

// Availability is which days the source holds.
type Availability struct {
	present     map[features.Date]bool
	First, Last features.Date
}

// Availability lists the source's days once.
func (s *Source) Availability(ctx context.Context) (*Availability, error) {
	days, err := s.Days(ctx)
	if err != nil {
		return nil, err
	}
	a := &Availability{present: map[features.Date]bool{}}
	for _, d := range days {
		a.present[d] = true
	}
	if len(days) > 0 {
		a.First, a.Last = days[0], days[len(days)-1]
	}
	return a, nil
}

// Has reports whether day d has a folder.
func (a *Availability) Has(d features.Date) bool { return a.present[d] }

// Empty reports whether the source holds no day at all.
func (a *Availability) Empty() bool { return len(a.present) == 0 }

// LookbackOf lists the days partition d reads besides itself under logic:
// none for legacy, D−7…D−1 for corrected.
func LookbackOf(d features.Date, logic features.Logic) []features.Date {
	if logic != features.Corrected {
		return nil
	}
	return features.DaysBetween(d-features.LookbackDays, d-1)
}

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
		for _, l := range LookbackOf(d, logic) {
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
