package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/icefill/icefill/internal/errkind"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
)

// BytesRead counts every byte this process read from source files: the
// partition days', their lookback days' and the Parquet footers read to
// size a day, each read as often as it happens (a metric of I/O, not of
// the source's size).
var BytesRead atomic.Int64

// Source is an opened source root.
type Source struct {
	store objstore.Store
	// Location is the root as the user gave it.
	Location string
}

// Open opens the source at location (path, file:// or s3:// URL).
func Open(ctx context.Context, location string, opts objstore.S3Options) (*Source, error) {
	st, err := objstore.Open(ctx, location, opts)
	if err != nil {
		return nil, fmt.Errorf("open source %s: %w", location, err)
	}
	if local, ok := st.(*objstore.Local); ok {
		// A local root that does not exist is a wrong --source, not a
		// source whose every day is missing.
		root := local.URL("")
		if info, err := os.Stat(root); err != nil || !info.IsDir() {
			if err == nil {
				err = errors.New("not a folder")
			}
			return nil, errkind.Usagef("source %s: %w", location, err)
		}
	}
	return New(st, location), nil
}

// New wraps an already opened store.
func New(st objstore.Store, location string) *Source { return &Source{store: st, Location: location} }

// DayDir is the folder name of day d.
func DayDir(d features.Date) string { return "dt=" + d.String() }

// ErrUnreadable is returned (wrapped) for a source file that is not
// readable Parquet: it fails every partition that reads it.
var ErrUnreadable = errkind.UsageError(errors.New("unreadable source file"))

// ErrMissingDay is returned (wrapped) for a day with no folder or no files.
var ErrMissingDay = errkind.UsageError(errors.New("source day is missing"))

// Files lists day d's Parquet files sorted by name (the spec's tie-break
// order). A day without any file is missing.
func (s *Source) Files(ctx context.Context, d features.Date) ([]objstore.Object, error) {
	objs, err := s.store.List(ctx, DayDir(d))
	if err != nil {
		if errors.Is(err, objstore.ErrNotExist) {
			return nil, fmt.Errorf("%s in %s: %w", DayDir(d), s.Location, ErrMissingDay)
		}
		return nil, fmt.Errorf("list %s in %s: %w", DayDir(d), s.Location, err)
	}
	var files []objstore.Object
	for _, o := range objs {
		// Only files directly in the day folder are part of the contract.
		rel := strings.TrimPrefix(o.Path, DayDir(d)+"/")
		if strings.HasSuffix(rel, ".parquet") && !strings.Contains(rel, "/") {
			files = append(files, o)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s in %s has no .parquet file: %w", DayDir(d), s.Location, ErrMissingDay)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files, nil
}

// Fingerprint identifies the exact input of a day: file names, sizes and
// ETags (or modification times on disks). Files are immutable by contract,
// so an equal fingerprint means equal content.
func Fingerprint(files []objstore.Object) string {
	h := sha256.New()
	for _, f := range files {
		v := f.ETag
		if v == "" {
			v = f.ModTime.UTC().Format("2006-01-02T15:04:05.000000000Z")
		}
		fmt.Fprintf(h, "%s\x00%d\x00%s\n", f.Path, f.Size, v)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// ReadOptions tune a day read.
type ReadOptions struct {
	// BatchSize is the Arrow batch length; 0 means 16Ki rows (decoded
	// batches stay in the CPU caches until DayBuilder.Add has read them).
	BatchSize int
	// Throttle, when set, is called with the byte count of every read before
	// it is made (the read-rate limit).
	Throttle func(ctx context.Context, n int) error
	// SizeHint pre-sizes the decoded columns (events expected).
	SizeHint int
}

// ReadFiles decodes the given files as day d, in name order whatever order
// they are given in (file name is part of the spec's tie-break).
func (s *Source) ReadFiles(ctx context.Context, d features.Date, files []objstore.Object, opts ReadOptions) (*features.Day, error) {
	files = append([]objstore.Object(nil), files...)
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	// Open every file first: the Parquet footers' row counts size the
	// day's columns once. A file that fails to open is left for the read
	// loop, which reports it in name order as before.
	opened := make([]*openedFile, len(files))
	defer func() {
		for _, of := range opened {
			if of != nil {
				of.close()
			}
		}
	}()
	rows, idBytes := 0, 0
	for i, f := range files {
		of, err := s.openFile(ctx, f, opts)
		if err != nil {
			break
		}
		opened[i] = of
		r, ib := of.sizes()
		rows += r
		idBytes += ib
	}
	b := features.NewDayBuilder(d, 0)
	b.Reserve(max(rows, opts.SizeHint), idBytes)
	for i, f := range files {
		of := opened[i]
		if of == nil {
			var err error
			if of, err = s.openFile(ctx, f, opts); err != nil {
				return nil, err
			}
			opened[i] = of
		}
		if err := s.readFile(ctx, f, of, b, opts); err != nil {
			return nil, err
		}
		of.close()
		opened[i] = nil
	}
	return b.Finish(), nil
}

// readDict lists the low-cardinality string columns read as Arrow
// dictionaries: decoding then maps a few dictionary entries per batch
// instead of a string per row.
var readDict = []string{features.ColEventType, features.ColChannel, features.ColCountry}

// openedFile is a source file opened as Parquet, footer read.
type openedFile struct {
	f   objstore.File
	pf  *file.Reader
	raw *recordingReader
}

// recordingReader remembers the first error of the storage underneath the
// Parquet reader, so that a storage outage is reported as one (retry later)
// and not as a corrupt file (replace it). Every source read passes through
// one, so it also counts BytesRead.
type recordingReader struct {
	r   io.ReaderAt
	mu  sync.Mutex
	err error
}

func (r *recordingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.r.ReadAt(p, off)
	BytesRead.Add(int64(n))
	if err != nil && !errors.Is(err, io.EOF) {
		r.mu.Lock()
		if r.err == nil {
			r.err = err
		}
		r.mu.Unlock()
	}
	return n, err
}

func (r *recordingReader) storageErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (o *openedFile) close() {
	o.pf.Close()
	o.f.Close()
}

// sizes estimates the file's rows and event-id bytes from its footer.
func (o *openedFile) sizes() (rows, idBytes int) {
	rows = int(o.pf.NumRows())
	md := o.pf.MetaData()
	col := md.Schema.ColumnIndexByName(features.ColEventID)
	if col < 0 {
		return rows, 0
	}
	var total int64
	for g := 0; g < md.NumRowGroups(); g++ {
		cc, err := md.RowGroup(g).ColumnChunk(col)
		if err != nil {
			return rows, 0
		}
		// Plain byte arrays: a 4-byte length before each value.
		total += cc.TotalUncompressedSize() - 4*cc.NumValues()
	}
	return rows, int(max(0, min(total, int64(rows)*256)))
}

func (s *Source) openFile(ctx context.Context, obj objstore.Object, opts ReadOptions) (*openedFile, error) {
	url := s.store.URL(obj.Path)
	f, err := s.store.Open(ctx, obj.Path)
	if err != nil {
		return nil, fmt.Errorf("open source file %s: %w", url, err)
	}
	var ra io.ReaderAt = f
	if opts.Throttle != nil {
		ra = throttledReader{ctx: ctx, r: f, wait: opts.Throttle}
	}
	raw := &recordingReader{r: ra}
	pf, err := file.NewParquetReader(io.NewSectionReader(raw, 0, f.Size()), file.WithReadProps(parquet.NewReaderProperties(memory.DefaultAllocator)))
	if err != nil {
		f.Close()
		if serr := raw.storageErr(); serr != nil {
			return nil, fmt.Errorf("read source file %s: %w", url, serr)
		}
		return nil, fmt.Errorf("source file %s is not readable Parquet (%v): %w; replace or remove the file, then run again", url, err, ErrUnreadable)
	}
	return &openedFile{f: f, pf: pf, raw: raw}, nil
}

func (s *Source) readFile(ctx context.Context, obj objstore.Object, of *openedFile, b *features.DayBuilder, opts ReadOptions) error {
	url := s.store.URL(obj.Path)
	pf := of.pf
	sch := pf.MetaData().Schema
	var names []string
	for i := 0; i < sch.NumColumns(); i++ {
		names = append(names, sch.Column(i).Name())
	}
	if missing := features.MissingRequired(names); missing != "" {
		return &features.ColumnError{File: url, Column: missing, Problem: "is missing (a required column of the source contract)"}
	}
	batch := opts.BatchSize
	if batch <= 0 {
		batch = 16 << 10
	}
	props := pqarrow.ArrowReadProperties{BatchSize: int64(batch)}
	cols := usedColumns(sch, &props)
	fr, err := pqarrow.NewFileReader(pf, props, memory.DefaultAllocator)
	if err != nil {
		return fmt.Errorf("source file %s: map Parquet schema to Arrow: %w", url, err)
	}
	b.StartFile(obj.Path)
	if err := s.readRecords(ctx, url, of, fr, cols, nil, b); err != nil {
		return err
	}
	return ctx.Err()
}

// usedColumns returns the indexes of the columns the logic reads, asking
// for the low-cardinality ones as dictionaries.
func usedColumns(sch *schema.Schema, props *pqarrow.ArrowReadProperties) []int {
	var cols []int
	for _, name := range features.UsedColumns {
		idx := sch.ColumnIndexByName(name)
		if idx < 0 {
			continue // a missing nullable column reads as nulls
		}
		cols = append(cols, idx)
		for _, dn := range readDict {
			if dn == name {
				props.SetReadDict(idx, true)
			}
		}
	}
	return cols
}

// readRecords decodes the given row groups (nil: all) of an opened file
// into b, whose current file it is.
func (s *Source) readRecords(ctx context.Context, url string, of *openedFile, fr *pqarrow.FileReader, cols, rowGroups []int, b *features.DayBuilder) error {
	// The string columns read directly are left out of the record reader
	// and joined to its batches.
	var direct []*byteColumn
	var arrowCols []int
	for _, idx := range cols {
		if dc := directColumn(of.pf, idx, rowGroups); dc != nil {
			direct = append(direct, dc)
			continue
		}
		arrowCols = append(arrowCols, idx)
	}
	rr, err := fr.GetRecordReader(ctx, arrowCols, rowGroups)
	if err != nil {
		return fmt.Errorf("source file %s: %w", url, err)
	}
	defer rr.Release()
	j := joiner{direct: direct}
	for rr.Next() {
		rec, err := j.join(rr.RecordBatch())
		if err != nil {
			return of.readErr(url, err)
		}
		err = b.Add(rec)
		rec.Release()
		if err != nil {
			var ce *features.ColumnError
			if errors.As(err, &ce) {
				ce.File = url
				return ce
			}
			return fmt.Errorf("source file %s: %w", url, err)
		}
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return of.readErr(url, err)
	}
	return nil
}

// joiner adds the directly read columns to the record reader's batches.
type joiner struct {
	direct []*byteColumn
	sch    *arrow.Schema
	arrs   []arrow.Array
}

// join returns rec with the direct columns' next rows added; the caller
// releases it.
func (j *joiner) join(rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(j.direct) == 0 {
		rec.Retain()
		return rec, nil
	}
	if j.sch == nil {
		fields := slices.Clone(rec.Schema().Fields())
		for _, dc := range j.direct {
			fields = append(fields, dc.field)
		}
		j.sch = arrow.NewSchema(fields, nil)
	}
	j.arrs = append(j.arrs[:0], rec.Columns()...)
	n := len(j.arrs)
	defer func() {
		for _, a := range j.arrs[n:] {
			a.Release()
		}
	}()
	for _, dc := range j.direct {
		a, err := dc.next(int(rec.NumRows()))
		if err != nil {
			return nil, err
		}
		j.arrs = append(j.arrs, a)
	}
	return array.NewRecordBatch(j.sch, j.arrs, rec.NumRows()), nil
}

// readErr reports a failed read of the file's data: the storage's error
// when there was one (retry), else a corrupt file (replace it).
func (o *openedFile) readErr(url string, err error) error {
	if serr := o.raw.storageErr(); serr != nil {
		return fmt.Errorf("read source file %s: %w", url, serr)
	}
	return fmt.Errorf("source file %s is corrupt (%v): %w; replace or remove the file, then run again", url, err, ErrUnreadable)
}

type throttledReader struct {
	ctx  context.Context
	r    io.ReaderAt
	wait func(context.Context, int) error
}

func (t throttledReader) ReadAt(p []byte, off int64) (int, error) {
	if err := t.wait(t.ctx, len(p)); err != nil {
		return 0, err
	}
	return t.r.ReadAt(p, off)
}
