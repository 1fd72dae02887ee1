package features

import (
	"fmt"
	"time"
)

// Date is a UTC calendar day counted from 1970-01-01, the same encoding as
// Arrow's date32 and Iceberg's date, so it crosses every boundary unconverted.
type Date int32

// MicrosPerDay is the length of a UTC day in microseconds, the unit of event_ts.
const MicrosPerDay = int64(86_400_000_000)

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, fmt.Errorf("date %q is not YYYY-MM-DD", s)
	}
	return DateOf(t), nil
}

// MustParseDate is ParseDate for constants in tests and examples.
func MustParseDate(s string) Date {
	d, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// DateOf is the UTC day that contains t.
func DateOf(t time.Time) Date {
	return Date(t.UTC().Unix() / 86400)
}

// DateOfMicros is the UTC day that contains the timestamp us (µs since epoch).
func DateOfMicros(us int64) Date {
	d := us / MicrosPerDay
	if us < 0 && us%MicrosPerDay != 0 {
		d--
	}
	return Date(d)
}

// Time is midnight UTC at the start of d.
func (d Date) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// StartMicros is midnight UTC at the start of d in µs since epoch.
func (d Date) StartMicros() int64 { return int64(d) * MicrosPerDay }

// AddDays moves n days forward (or back when n < 0).
func (d Date) AddDays(n int) Date { return d + Date(n) }

func (d Date) String() string { return d.Time().Format(time.DateOnly) }

// DaysBetween lists from..to inclusive, oldest first; nil when to < from.
func DaysBetween(from, to Date) []Date {
	if to < from {
		return nil
	}
	out := make([]Date, 0, int(to-from)+1)
	for d := from; d <= to; d++ {
		out = append(out, d)
	}
	return out
}
