package pqfile

import (
	"context"
	"fmt"
	"iter"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/icefill/icefill/internal/objstore"
)

// Write stores recs (all of schema) at path as Snappy-compressed Parquet.
// The caller keeps ownership of recs.
func Write(ctx context.Context, st objstore.Store, path string, schema *arrow.Schema, recs ...arrow.RecordBatch) error {
	return WriteSeq(ctx, st, path, schema, func(yield func(arrow.RecordBatch, error) bool) {
		for _, r := range recs {
			r.Retain() // WriteSeq releases it
			if !yield(r, nil) {
				return
			}
		}
	})
}

// RowGroupRows is the length of the row groups Write and WriteSeq write.
const RowGroupRows = 128 << 10

// WriteSeq stores the records recs yields (all of schema) at path like
// Write, one record at a time, releasing each once written: the rows never
// need to be in memory together.
func WriteSeq(ctx context.Context, st objstore.Store, path string, schema *arrow.Schema, recs iter.Seq2[arrow.RecordBatch, error]) error {
	w, err := st.Create(ctx, path)
	if err != nil {
		return err
	}
	// A buffered row group is held in memory until it is flushed: bound it
	// (about 100 bytes a row once encoded), so writing follows the size of
	// a batch, not of the file.
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(true),
		parquet.WithMaxRowGroupLength(RowGroupRows))
	fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		w.Close()
		st.Delete(ctx, path)
		return fmt.Errorf("write %s: %w", st.URL(path), err)
	}
	for r, err := range recs {
		if err == nil {
			err = fw.WriteBuffered(r)
			r.Release()
		}
		if err != nil {
			fw.Close()
			st.Delete(ctx, path)
			return fmt.Errorf("write %s: %w", st.URL(path), err)
		}
	}
	// FileWriter.Close closes the underlying writer, which publishes it.
	if err := fw.Close(); err != nil {
		return fmt.Errorf("write %s: %w", st.URL(path), err)
	}
	return nil
}
