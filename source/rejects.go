package source

import (
	"context"
	"fmt"
	"iter"
	"sort"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
	"github.com/icefill/icefill/internal/pqfile"
)

// RejectSchema is the layout of a rejects file: where the row was, why it
// was rejected, and its raw values as far as they could be read.
var RejectSchema = arrow.NewSchema([]arrow.Field{
	{Name: "dt", Type: arrow.FixedWidthTypes.Date32},
	{Name: "file", Type: arrow.BinaryTypes.String},
	{Name: "row", Type: arrow.PrimitiveTypes.Int64},
	{Name: "reason", Type: arrow.BinaryTypes.String},
	{Name: "event_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "event_ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
	{Name: "user_id", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "event_type", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// WriteRejects stores the rejected rows recs yields (records of
// RejectSchema, see RejectRecords) as Parquet at path, one record at a
// time.
func WriteRejects(ctx context.Context, st objstore.Store, path string, recs iter.Seq2[arrow.RecordBatch, error]) error {
	if err := pqfile.WriteSeq(ctx, st, path, RejectSchema, recs); err != nil {
		return fmt.Errorf("keep rejected rows: %w", err)
	}
	return nil
}

// rejectBatch is the rows of one record of rejects.
const rejectBatch = 64 << 10

// RejectRecords yields rejects as records of RejectSchema, rejectBatch
// rows at a time.
func RejectRecords(rejects []features.Reject) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		b := array.NewRecordBuilder(memory.DefaultAllocator, RejectSchema)
		defer b.Release()
		for len(rejects) > 0 {
			n := min(len(rejects), rejectBatch)
			for _, r := range rejects[:n] {
				AppendReject(b, r)
			}
			rejects = rejects[n:]
			if !yield(b.NewRecordBatch(), nil) {
				return
			}
		}
	}
}

// AppendReject appends one rejected row to a record builder of
// RejectSchema.
func AppendReject(b *array.RecordBuilder, r features.Reject) {
	str := func(i int, v *string) {
		if v == nil {
			b.Field(i).AppendNull()
		} else {
			b.Field(i).(*array.StringBuilder).Append(*v)
		}
	}
	b.Field(0).(*array.Date32Builder).Append(arrow.Date32(r.Date))
	b.Field(1).(*array.StringBuilder).Append(r.File)
	b.Field(2).(*array.Int64Builder).Append(r.Row)
	b.Field(3).(*array.StringBuilder).Append(string(r.Reason))
	str(4, r.EventID)
	if r.EventTS == nil {
		b.Field(5).AppendNull()
	} else {
		b.Field(5).(*array.TimestampBuilder).Append(arrow.Timestamp(*r.EventTS))
	}
	str(6, r.UserID)
	str(7, r.EventType)
}

// RejectCounts counts rejects per reason, in a stable order for printing.
func RejectCounts(rejects []features.Reject) []ReasonCount {
	m := map[features.RejectReason]int64{}
	for _, r := range rejects {
		m[r.Reason]++
	}
	return SortedCounts(m)
}

// SortedCounts lists counts per reason in a stable order for printing.
func SortedCounts(m map[features.RejectReason]int64) []ReasonCount {
	out := make([]ReasonCount, 0, len(m))
	for k, v := range m {
		out = append(out, ReasonCount{Reason: k, Count: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Reason < out[j].Reason })
	return out
}

// ReasonCount is one line of a reject summary.
type ReasonCount struct {
	Reason features.RejectReason `json:"reason"`
	Count  int64                 `json:"count"`
}
