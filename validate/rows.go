package validate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/iceberg-go/table"
)

// RefRows returns every row of ref as one canonical text line
// ("col=value col=value …" in schema order), sorted: two refs hold the same
// rows exactly when their RefRows are equal. Meant for tests and for
// comparing what other readers (Spark, PyIceberg) see; it holds all rows
// in memory.
func RefRows(ctx context.Context, tbl *table.Table, ref string) ([]string, error) {
	snap, err := ResolveRef(tbl, ref)
	if err != nil {
		return nil, err
	}
	_, it, err := tbl.Scan(table.WithSnapshotID(snap.SnapshotID)).ToArrowRecords(ctx)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", ref, err)
	}
	var out []string
	for rec, err := range it {
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", ref, err)
		}
		for i := 0; i < int(rec.NumRows()); i++ {
			parts := make([]string, rec.NumCols())
			for c := range parts {
				parts[c] = rec.Schema().Field(c).Name + "=" + rec.Column(c).ValueStr(i)
			}
			out = append(out, strings.Join(parts, " "))
		}
		rec.Release()
	}
	slices.Sort(out)
	return out, nil
}
