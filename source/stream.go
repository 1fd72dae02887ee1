package source

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
)

// streamBatch is the Arrow batch length of a streaming read, and
// streamBuffer the buffered-stream size of each column chunk: together they
// bound what one read holds, whatever the size of a file or row group.
const (
	streamBatch  = 16 << 10
	streamBuffer = 1 << 20
)

// StreamFiles decodes day d's files like ReadFiles, in the same read order
// and with the same rejects, but hands every accepted event to sink
// instead of keeping it: files are read one row group at a time in small
// batches through buffered column streams, so memory does not follow the
// size of a file or a day. Rejected rows go to reject when it is not nil.
// The returned Day holds the files read, the row count and the rejects (or
// their count), and no events.
func (s *Source) StreamFiles(ctx context.Context, d features.Date, files []objstore.Object, opts ReadOptions, sink func(*features.Event), reject func(features.Reject)) (*features.Day, error) {
	files = append([]objstore.Object(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	b := features.NewDayBuilder(d, 0)
	b.SetSink(sink)
	if reject != nil {
		b.SetRejectSink(reject)
	}
	for _, f := range files {
		if err := s.streamFile(ctx, f, b, opts); err != nil {
			return nil, err
		}
	}
	return b.Finish(), nil
}

func (s *Source) streamFile(ctx context.Context, obj objstore.Object, b *features.DayBuilder, opts ReadOptions) error {
	url := s.store.URL(obj.Path)
	f, err := s.store.Open(ctx, obj.Path)
	if err != nil {
		return fmt.Errorf("open source file %s: %w", url, err)
	}
	defer f.Close()
	var ra io.ReaderAt = f
	if opts.Throttle != nil {
		ra = throttledReader{ctx: ctx, r: f, wait: opts.Throttle}
	}
	raw := &recordingReader{r: ra}
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = true
	props.BufferSize = streamBuffer
	pf, err := file.NewParquetReader(io.NewSectionReader(raw, 0, f.Size()), file.WithReadProps(props))
	if err != nil {
		if serr := raw.storageErr(); serr != nil {
			return fmt.Errorf("read source file %s: %w", url, serr)
		}
		return fmt.Errorf("source file %s is not readable Parquet (%v): %w; replace or remove the file, then run again", url, err, ErrUnreadable)
	}
	defer pf.Close()
	of := &openedFile{f: f, pf: pf, raw: raw}
	sch := pf.MetaData().Schema
	var names []string
	for i := 0; i < sch.NumColumns(); i++ {
		names = append(names, sch.Column(i).Name())
	}
	if missing := features.MissingRequired(names); missing != "" {
		return &features.ColumnError{File: url, Column: missing, Problem: "is missing (a required column of the source contract)"}
	}
	aprops := pqarrow.ArrowReadProperties{BatchSize: streamBatch}
	cols := usedColumns(sch, &aprops)
	fr, err := pqarrow.NewFileReader(pf, aprops, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("source file %s: map Parquet schema to Arrow: %w", url, err)
	}
	b.StartFile(obj.Path)
	for rg := 0; rg < pf.NumRowGroups(); rg++ {
		if err := s.readRecords(ctx, url, of, fr, cols, []int{rg}, b); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// Rows sums the row counts in the files' Parquet footers (rejected rows
// included): what sizing a day's memory needs, without reading its data.
func (s *Source) Rows(ctx context.Context, files []objstore.Object) (int64, error) {
	var n int64
	for _, f := range files {
		of, err := s.openFile(ctx, f, ReadOptions{})
		if err != nil {
			return 0, err
		}
		n += of.pf.NumRows()
		of.close()
	}
	return n, nil
}
