package source

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
)

// byteCase is one way a producer may write the string columns that are
// read directly (event_id, user_id).
type byteCase struct {
	name     string
	v1       bool  // user_id int64 instead of a UUID string
	binary   bool  // event_id without the String annotation
	required bool  // event_id and user_id not nullable (no nulls planted)
	dict     bool  // dictionary-encoded event_id and user_id
	rowGroup int64 // max rows per row group
	pageSize int64 // data page size in bytes
	batch    int   // ReadOptions.BatchSize
	codec    compress.Compression
}

var byteCases = []byteCase{
	{name: "v2 plain nullable", rowGroup: 1 << 20, pageSize: 1 << 20, codec: compress.Codecs.Snappy},
	{name: "v2 dictionary nullable", dict: true, rowGroup: 1 << 20, pageSize: 1 << 20, codec: compress.Codecs.Snappy},
	{name: "v1 plain nullable", v1: true, rowGroup: 1 << 20, pageSize: 1 << 20, codec: compress.Codecs.Snappy},
	{name: "v1 dictionary", v1: true, dict: true, rowGroup: 1 << 20, pageSize: 1 << 20, codec: compress.Codecs.Snappy},
	{name: "v2 uncompressed", rowGroup: 1 << 20, pageSize: 1 << 20, codec: compress.Codecs.Uncompressed},
	{name: "v2 required", required: true, rowGroup: 1 << 20, pageSize: 1 << 20, codec: compress.Codecs.Snappy},
	{name: "binary event_id", binary: true, rowGroup: 1 << 20, pageSize: 1 << 20, codec: compress.Codecs.Zstd},
	// Batches that cross pages and row groups.
	{name: "small pages and row groups", rowGroup: 777, pageSize: 512, batch: 1000, codec: compress.Codecs.Snappy},
	{name: "small dictionary pages and row groups", dict: true, rowGroup: 1500, pageSize: 256, batch: 333, codec: compress.Codecs.Snappy},
	{name: "v1 required small row groups", v1: true, required: true, rowGroup: 400, pageSize: 300, batch: 512, codec: compress.Codecs.Snappy},
}

// TestDirectColumnsMatchArrowRead checks that reading event_id and user_id
// from their column chunks decodes every file exactly as reading all
// columns through pqarrow does: the same events (ids, customers, all
// fields) in the same order, the same rejects, for the in-memory read and
// the streaming read, whatever the encoding, nullability, page and row
// group boundaries.
func TestDirectColumnsMatchArrowRead(t *testing.T) {
	ctx := context.Background()
	day, err := features.ParseDate("2026-03-02")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range byteCases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeByteCase(t, dir, day, tc)
			src, files := dayFiles(t, dir, day)
			wantEvents, wantRejects, wantDay := arrowRead(t, path, files[0].Path, day, tc.batch)
			if len(wantEvents) == 0 || len(wantRejects) == 0 && !tc.required {
				t.Fatalf("the case is too thin: %d events, %d rejects", len(wantEvents), len(wantRejects))
			}

			var gotEvents []features.Event
			var gotRejects []features.Reject
			sd, err := src.StreamFiles(ctx, day, files, ReadOptions{BatchSize: tc.batch}, func(e *features.Event) {
				c := *e
				c.ID = append([]byte(nil), e.ID...)
				gotEvents = append(gotEvents, c)
			}, func(r features.Reject) { gotRejects = append(gotRejects, r) })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotEvents, wantEvents) {
				t.Errorf("streamed events differ: got %d, want %d", len(gotEvents), len(wantEvents))
				for i := range min(len(gotEvents), len(wantEvents)) {
					if !reflect.DeepEqual(gotEvents[i], wantEvents[i]) {
						t.Fatalf("first difference at %d: got %+v, want %+v", i, gotEvents[i], wantEvents[i])
					}
				}
			}
			if !reflect.DeepEqual(gotRejects, wantRejects) {
				t.Errorf("streamed rejects differ: got %d, want %d", len(gotRejects), len(wantRejects))
			}
			if sd.RowsRead != wantDay.RowsRead {
				t.Errorf("streamed rows read %d, want %d", sd.RowsRead, wantDay.RowsRead)
			}

			got, err := src.ReadFiles(ctx, day, files, ReadOptions{BatchSize: tc.batch})
			if err != nil {
				t.Fatal(err)
			}
			if got.Len() != len(wantEvents) || got.RowsRead != wantDay.RowsRead || !reflect.DeepEqual(got.Rejects, wantRejects) {
				t.Errorf("read day: %d events, %d rows, %d rejects; want %d, %d, %d",
					got.Len(), got.RowsRead, len(got.Rejects), len(wantEvents), wantDay.RowsRead, len(wantRejects))
			}
			// The ids drive de-duplication: equal outputs need equal ids.
			want := rebuild(t, day, wantEvents)
			for _, compute := range []func(*features.Day) (*features.Output, error){
				func(d *features.Day) (*features.Output, error) { return features.ComputeLegacy(d), nil },
				func(d *features.Day) (*features.Output, error) { return features.ComputeCorrected(d, nil) },
			} {
				g, err := compute(got)
				if err != nil {
					t.Fatal(err)
				}
				w, err := compute(want)
				if err != nil {
					t.Fatal(err)
				}
				if g.Len() == 0 || !reflect.DeepEqual(g, w) {
					t.Errorf("outputs differ: %d rows, want %d", g.Len(), w.Len())
				}
			}
		})
	}
}

// rebuild makes a day of the given events, as decoded.
func rebuild(t *testing.T, day features.Date, events []features.Event) *features.Day {
	b := features.NewDayBuilder(day, len(events))
	b.StartFile("x")
	for i := range events {
		if err := b.AddEvent(&events[i]); err != nil {
			t.Fatal(err)
		}
	}
	return b.Finish()
}

// arrowRead decodes the file as before direct columns: every column through
// pqarrow's record reader.
func arrowRead(t *testing.T, path, name string, day features.Date, batch int) ([]features.Event, []features.Reject, *features.Day) {
	t.Helper()
	if batch <= 0 {
		batch = 16 << 10
	}
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	props := pqarrow.ArrowReadProperties{BatchSize: int64(batch)}
	cols := usedColumns(pf.MetaData().Schema, &props)
	fr, err := pqarrow.NewFileReader(pf, props, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := fr.GetRecordReader(context.Background(), cols, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var events []features.Event
	var rejects []features.Reject
	b := features.NewDayBuilder(day, 0)
	b.SetSink(func(e *features.Event) {
		c := *e
		c.ID = append([]byte(nil), e.ID...)
		events = append(events, c)
	})
	b.SetRejectSink(func(r features.Reject) { rejects = append(rejects, r) })
	b.StartFile(name)
	for rr.Next() {
		if err := b.Add(rr.RecordBatch()); err != nil {
			t.Fatal(err)
		}
	}
	if err := rr.Err(); err != nil {
		t.Fatal(err)
	}
	return events, rejects, b.Finish()
}

// writeByteCase writes one source file of day d: 6,000 rows with duplicate
// event ids and unknown event types, and (unless required) null event ids,
// null user ids and user ids that are not UUIDs.
func writeByteCase(t *testing.T, dir string, d features.Date, tc byteCase) string {
	t.Helper()
	const rows = 6000
	rng := rand.New(rand.NewPCG(uint64(len(tc.name)), 9))
	idType := arrow.DataType(arrow.BinaryTypes.String)
	if tc.binary {
		idType = arrow.BinaryTypes.Binary
	}
	userType := arrow.DataType(arrow.BinaryTypes.String)
	if tc.v1 {
		userType = arrow.PrimitiveTypes.Int64
	}
	tsType := &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	sch := arrow.NewSchema([]arrow.Field{
		{Name: features.ColEventID, Type: idType, Nullable: !tc.required},
		{Name: features.ColEventTS, Type: tsType, Nullable: true},
		{Name: features.ColSchemaVersion, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: features.ColUserID, Type: userType, Nullable: !tc.required},
		{Name: features.ColEventType, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: features.ColChannel, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: features.ColAmountCents, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: features.ColCountry, Type: arrow.BinaryTypes.String, Nullable: !tc.required},
	}, nil)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sch)
	defer rb.Release()
	nullable := func() bool { return !tc.required && rng.IntN(40) == 0 }
	types := []string{"touch", "touch", "touch", "order", "refund", "click"}
	channels := []string{"web", "app", "mail", "", "direct", "web2"}
	countries := []string{"DE", "FR", "US", "GB", "", "NL", "PL"}
	start := d.StartMicros()
	for i := range rows {
		id := fmt.Sprintf("ev-%d-%s", rng.IntN(rows*3/4), strings.Repeat("x", rng.IntN(30)))
		switch b := rb.Field(0).(type) {
		case *array.StringBuilder:
			if nullable() {
				b.AppendNull()
			} else {
				b.Append(id)
			}
		case *array.BinaryBuilder:
			if nullable() {
				b.AppendNull()
			} else {
				b.Append([]byte(id))
			}
		}
		rb.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(start + int64(i)*1_000_000))
		rb.Field(2).(*array.Int32Builder).Append(2)
		cust := rng.IntN(300)
		switch b := rb.Field(3).(type) {
		case *array.Int64Builder:
			if nullable() {
				b.AppendNull()
			} else {
				b.Append(int64(cust))
			}
		case *array.StringBuilder:
			switch {
			case nullable():
				b.AppendNull()
			case nullable():
				b.Append("not-a-uuid")
			default:
				b.Append(fmt.Sprintf("%08x-0000-4000-8000-%012x", cust, cust*7))
			}
		}
		rb.Field(4).(*array.StringBuilder).Append(types[rng.IntN(len(types))])
		if rng.IntN(10) == 0 {
			rb.Field(5).(*array.StringBuilder).AppendNull()
		} else {
			rb.Field(5).(*array.StringBuilder).Append(channels[rng.IntN(len(channels))])
		}
		rb.Field(6).(*array.Int64Builder).Append(int64(rng.IntN(10000)))
		if nullable() {
			rb.Field(7).(*array.StringBuilder).AppendNull()
		} else {
			rb.Field(7).(*array.StringBuilder).Append(countries[rng.IntN(len(countries))])
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()

	path := filepath.Join(dir, "dt="+d.String(), "part-0.parquet")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	props := parquet.NewWriterProperties(
		parquet.WithCompression(tc.codec),
		parquet.WithMaxRowGroupLength(tc.rowGroup),
		parquet.WithDataPageSize(tc.pageSize),
		parquet.WithDictionaryDefault(tc.dict),
		parquet.WithDictionaryFor(features.ColEventType, true),
	)
	w, err := pqarrow.NewFileWriter(sch, f, props, pqarrow.NewArrowWriterProperties())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Check the case writes what it says.
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	if tc.rowGroup < rows && pf.NumRowGroups() < 2 {
		t.Fatalf("%d row groups, want several", pf.NumRowGroups())
	}
	md, err := pf.MetaData().RowGroup(0).ColumnChunk(0)
	if err != nil {
		t.Fatal(err)
	}
	if hasDict := md.HasDictionaryPage(); hasDict != tc.dict {
		t.Fatalf("event_id dictionary page %v, want %v (encodings %v, offset %d)", hasDict, tc.dict, md.Encodings(), md.DictionaryPageOffset())
	}
	return path
}

// TestDirectColumnCorrupt checks that a corrupt event_id page fails the
// file as unreadable (replace it), on both reads, as pqarrow's errors do.
func TestDirectColumnCorrupt(t *testing.T) {
	ctx := context.Background()
	day, err := features.ParseDate("2026-03-02")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := writeByteCase(t, dir, day, byteCases[0])
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := pf.MetaData().RowGroup(0).ColumnChunk(0)
	if err != nil {
		t.Fatal(err)
	}
	// Past the first page's header (a few dozen bytes), into its
	// compressed values.
	off, size := cc.DataPageOffset(), cc.TotalCompressedSize()
	pf.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := off + 64; i < off+size-16; i++ {
		raw[i] = 0xff
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	src, files := dayFiles(t, dir, day)
	_, err = src.ReadFiles(ctx, day, files, ReadOptions{})
	if !errors.Is(err, ErrUnreadable) {
		t.Errorf("read: %v, want ErrUnreadable", err)
	}
	_, err = src.StreamFiles(ctx, day, files, ReadOptions{}, func(*features.Event) {}, nil)
	if !errors.Is(err, ErrUnreadable) {
		t.Errorf("stream: %v, want ErrUnreadable", err)
	}
}

// dayFiles opens the source rooted at dir and lists day's files.
func dayFiles(t *testing.T, dir string, day features.Date) (*Source, []objstore.Object) {
	t.Helper()
	st, err := objstore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	src := New(st, dir)
	files, err := src.Files(context.Background(), day)
	if err != nil {
		t.Fatal(err)
	}
	return src, files
}
