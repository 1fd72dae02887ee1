package features

import (
	"fmt"

	"github.com/icefill/icefill/internal/errkind"
)

// LookbackOf lists the days partition d reads besides itself under logic:
// none for legacy, D−7…D−1 for corrected.
func LookbackOf(d Date, logic Logic) []Date {
	if logic != Corrected {
		return nil
	}
	return DaysBetween(d-LookbackDays, d-1)
}

// RejectLimitError fails a partition whose rejected share is over the limit.
type RejectLimitError struct {
	Day      Date
	Rejected int64
	Read     int64
	Limit    float64
}

func (e *RejectLimitError) Error() string {
	return fmt.Sprintf("partition %s: %d of %d rows rejected (%.4f%%), over the limit of %.4f%%; inspect the rejected rows, fix the source or raise --max-reject-rate",
		e.Day, e.Rejected, e.Read, 100*float64(e.Rejected)/float64(e.Read), 100*e.Limit)
}

// CheckRejects applies the limit: strictly greater fails.
func CheckRejects(day *Day, limit float64) error {
	if day.RowsRead > 0 && day.RejectedShare() > limit {
		return &RejectLimitError{Day: day.Date, Rejected: day.RejectedCount(), Read: day.RowsRead, Limit: limit}
	}
	return nil
}

// DefaultRejectLimit is the spec's default: 0.1 % of a partition's rows.
const DefaultRejectLimit = 0.001

// ErrorKind marks too many rejects as bad input: fix the data or the limit.
func (e *RejectLimitError) ErrorKind() errkind.Kind { return errkind.Usage }
