package pqfile

import (
	"context"
	"fmt"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/icefill/icefill/internal/objstore"
)

// Write stores recs (all of schema) at path as Snappy-compressed Parquet.
func Write(ctx context.Context, st objstore.Store, path string, schema *arrow.Schema, recs ...arrow.RecordBatch) error {
	w, err := st.Create(ctx, path)
	if err != nil {
		return err
	}
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy), parquet.WithDictionaryDefault(true))
	fw, err := pqarrow.NewFileWriter(schema, w, props, pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		w.Close()
		st.Delete(ctx, path)
		return fmt.Errorf("write %s: %w", st.URL(path), err)
	}
	for _, r := range recs {
		if err := fw.WriteBuffered(r); err != nil {
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
