package spill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/icefill/icefill/features"
)

// Rows is a partition's output computed on the external path: written to
// a local Parquet file one row group per bucket as the buckets are
// computed, and read back the same way, so a partition's rows never need
// to fit in memory either.
type Rows struct {
	path   string
	size   int64
	schema *arrow.Schema
	// N is the number of rows; Totals sums their additive columns.
	N      int64
	Totals features.Totals
	// RowGroupRows is the row-group length the budget allows whoever
	// writes the rows out (see Budget.RowGroupRows).
	RowGroupRows int
}

// recordRows is the length of the records the rows are read back in.
const recordRows = 16 << 10

// OutputSchema is the schema of logic's rows.
func OutputSchema(logic features.Logic) *arrow.Schema {
	if logic == features.Legacy {
		return features.LegacySchema
	}
	return features.FullSchema
}

type rowsWriter struct {
	rows *Rows
	f    *os.File
	fw   *pqarrow.FileWriter
}

func newRowsWriter(path string, logic features.Logic) (*rowsWriter, error) {
	schema := OutputSchema(logic)
	f, fw, err := createParquet(path, schema)
	if err != nil {
		return nil, err
	}
	return &rowsWriter{rows: &Rows{path: path, schema: schema}, f: f, fw: fw}, nil
}

// createParquet creates a local Parquet file of schema at path.
func createParquet(path string, schema *arrow.Schema) (*os.File, *pqarrow.FileWriter, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, nil, err
	}
	// No dictionaries: their hash tables (about 15 MiB) would take a
	// small budget's room, and the file is local and short-lived.
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(false))
	fw, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, nil, err
	}
	return f, fw, nil
}

// add writes one bucket's rows as a row group.
func (w *rowsWriter) add(o *features.Output) error {
	if o.Len() == 0 {
		return nil
	}
	rec := o.Record(memory.DefaultAllocator, w.rows.schema)
	defer rec.Release()
	if err := w.fw.Write(rec); err != nil {
		return err
	}
	t := o.Totals()
	r := w.rows
	r.N += t.Rows
	r.Totals.Rows += t.Rows
	r.Totals.Orders += t.Orders
	r.Totals.Gross += t.Gross
	r.Totals.Refund += t.Refund
	r.Totals.Net += t.Net
	return nil
}

func (w *rowsWriter) close() (*Rows, error) {
	err := w.fw.Close() // closes f too
	w.rows.size = countFile(w.rows.path)
	return w.rows, err
}

func (w *rowsWriter) abort() {
	w.fw.Close()
	os.Remove(w.rows.path)
}

// Records yields the rows in output order, recordRows rows at a time, as
// records of schema (which must be the logic's schema). The caller owns
// (releases) each record.
func (r *Rows) Records(ctx context.Context, schema *arrow.Schema) iter.Seq2[arrow.RecordBatch, error] {
	if !schema.Equal(r.schema) {
		return func(yield func(arrow.RecordBatch, error) bool) {
			yield(nil, fmt.Errorf("spilled rows have schema %s, not %s", r.schema, schema))
		}
	}
	return readParquet(ctx, r.path, schema)
}

// readParquet yields a local Parquet file's rows in order, recordRows at a
// time across its row groups, as records of schema (the file's columns
// without the metadata reading adds): what it holds is one batch, whatever
// the size of the file or its row groups.
func readParquet(ctx context.Context, path string, schema *arrow.Schema) iter.Seq2[arrow.RecordBatch, error] {
	return func(yield func(arrow.RecordBatch, error) bool) {
		props := parquet.NewReaderProperties(memory.DefaultAllocator)
		props.BufferedStreamEnabled = true
		props.BufferSize = 256 << 10
		pf, err := file.OpenParquetFile(path, false, file.WithReadProps(props))
		if err != nil {
			yield(nil, err)
			return
		}
		defer pf.Close()
		if pf.NumRows() == 0 {
			return
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: recordRows}, memory.DefaultAllocator)
		if err != nil {
			yield(nil, err)
			return
		}
		rr, err := fr.GetRecordReader(ctx, nil, nil)
		if err != nil {
			yield(nil, err)
			return
		}
		defer rr.Release()
		for rr.Next() {
			rec := rr.RecordBatch()
			if rec.Schema().Equal(schema) {
				rec.Retain()
			} else {
				rec = array.NewRecordBatch(schema, rec.Columns(), rec.NumRows())
			}
			if !yield(rec, nil) {
				return
			}
		}
		if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
			yield(nil, err)
		}
	}
}

// Close removes the rows' file.
func (r *Rows) Close() {
	if r != nil && r.path != "" {
		removeFile(r.path, r.size)
		r.path = ""
	}
}
