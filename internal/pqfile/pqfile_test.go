package pqfile

import (
	"context"
	"iter"
	"path/filepath"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"

	"github.com/icefill/icefill/internal/objstore"
)

// TestWriteSeqFlushesRowGroups: rows are written in row groups of at most
// RowGroupRows as they come, whether they arrive as one large record or
// as many small ones, so a writer never buffers a whole file.
func TestWriteSeqFlushesRowGroups(t *testing.T) {
	schema := arrow.NewSchema([]arrow.Field{{Name: "v", Type: arrow.PrimitiveTypes.Int64}}, nil)
	record := func(from, n int) arrow.RecordBatch {
		b := array.NewInt64Builder(memory.DefaultAllocator)
		defer b.Release()
		for i := from; i < from+n; i++ {
			b.Append(int64(i))
		}
		col := b.NewArray()
		defer col.Release()
		return array.NewRecordBatch(schema, []arrow.Array{col}, int64(n))
	}
	const rows = 2*RowGroupRows + 1000
	for _, tc := range []struct {
		name  string
		batch int
	}{{"one record", rows}, {"small records", 10_000}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := objstore.NewLocal(dir)
			if err != nil {
				t.Fatal(err)
			}
			var recs iter.Seq2[arrow.RecordBatch, error] = func(yield func(arrow.RecordBatch, error) bool) {
				for from := 0; from < rows; from += tc.batch {
					if !yield(record(from, min(tc.batch, rows-from)), nil) {
						return
					}
				}
			}
			if err := WriteSeq(context.Background(), st, "x.parquet", schema, recs); err != nil {
				t.Fatal(err)
			}
			pf, err := file.OpenParquetFile(filepath.Join(dir, "x.parquet"), false)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			if pf.NumRows() != rows {
				t.Fatalf("%d rows written, want %d", pf.NumRows(), rows)
			}
			if pf.NumRowGroups() != 3 {
				t.Fatalf("%d row groups, want 3 of at most %d rows", pf.NumRowGroups(), RowGroupRows)
			}
			for i := 0; i < pf.NumRowGroups(); i++ {
				if n := pf.MetaData().RowGroup(i).NumRows(); n > RowGroupRows {
					t.Fatalf("row group %d holds %d rows", i, n)
				}
			}
		})
	}
}
