// Package tinypart writes one-row partitions: what the commit benchmarks
// and the commit-protocol tests commit when only the commit is measured or
// checked, not the rows.
package tinypart

import (
	"context"
	"iter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
)

// Write writes the one-row partition of day 2020-01-01 + i to tbl's
// location and returns its day and data files (not committed).
func Write(ctx context.Context, tbl *table.Table, i int) (features.Date, []iceberg.DataFile, error) {
	day := features.MustParseDate("2020-01-01") + features.Date(i)
	out := &features.Output{Date: day, Logic: features.Legacy, CustomerID: []features.CustomerID{features.CustomerFromV1(int64(i))},
		Channel: []string{"email"}, Orders: []int64{1}, Gross: []int64{100}, Refund: []int64{0}, Net: []int64{100},
		Country: []string{""}, CountryOK: []bool{false}}
	rec := out.Record(memory.DefaultAllocator, features.LegacySchema)
	defer rec.Release()
	var files []iceberg.DataFile
	for df, err := range table.WriteRecords(ctx, tbl, features.LegacySchema, iter.Seq2[arrow.RecordBatch, error](func(y func(arrow.RecordBatch, error) bool) { y(rec, nil) })) {
		if err != nil {
			return day, nil, err
		}
		files = append(files, df)
	}
	return day, files, nil
}
