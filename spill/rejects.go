package spill

import (
	"context"
	"errors"
	"io"
	"iter"
	"os"
	"path/filepath"
	"syscall"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/source"
)

// Rejects is a day's rejected rows kept on local disk as they are read (a
// billion-event day's rejects need not fit in memory): a Parquet file of
// source.RejectSchema written rejectRows rows at a time.
type Rejects struct {
	path string
	size int64
	// N counts the rows; Counts per reason.
	N      int64
	Counts map[features.RejectReason]int64
}

// rejectRows is the rows of the rejects buffered before they are written.
const rejectRows = 16 << 10

type rejectsWriter struct {
	r   *Rejects
	fw  *pqarrow.FileWriter
	b   *array.RecordBuilder
	err error
}

func newRejectsWriter(path string) (*rejectsWriter, error) {
	_, fw, err := createParquet(path, source.RejectSchema)
	if err != nil {
		return nil, err
	}
	return &rejectsWriter{r: &Rejects{path: path, Counts: map[features.RejectReason]int64{}}, fw: fw,
		b: array.NewRecordBuilder(memory.DefaultAllocator, source.RejectSchema)}, nil
}

// add keeps one reject; the first write error is kept for close.
func (w *rejectsWriter) add(r features.Reject) {
	source.AppendReject(w.b, r)
	w.r.N++
	w.r.Counts[r.Reason]++
	if w.b.Field(0).Len() >= rejectRows {
		w.flush()
	}
}

func (w *rejectsWriter) flush() {
	if w.b.Field(0).Len() == 0 {
		return
	}
	rec := w.b.NewRecordBatch()
	defer rec.Release()
	if w.err == nil {
		w.err = w.fw.Write(rec)
	}
}

// close writes what is buffered and closes the file, returning the
// rejects (removed again on error).
func (w *rejectsWriter) close() (*Rejects, error) {
	w.flush()
	w.b.Release()
	err := w.fw.Close() // closes the file too
	if w.err != nil {
		err = w.err
	}
	if err != nil {
		os.Remove(w.r.path)
		return nil, err
	}
	w.r.size = countFile(w.r.path)
	return w.r, nil
}

func (w *rejectsWriter) abort() {
	w.b.Release()
	w.fw.Close()
	os.Remove(w.r.path)
}

// link gives the caller its own name for the rejects file (a hard link
// in the same folder, or a copy where the file system has no hard links):
// the engine may drop the day's files while the caller still writes the
// rejects out.
func (r *Rejects) link() (*Rejects, error) {
	if r == nil || r.path == "" {
		return nil, nil
	}
	f, err := os.CreateTemp(filepath.Dir(r.path), filepath.Base(r.path)+"-")
	if err != nil {
		return nil, err
	}
	name := f.Name()
	f.Close()
	os.Remove(name)
	c := *r
	c.path = name
	c.size = 0 // a link: counted once, by the engine's file
	if err := linkFile(r.path, name); err != nil {
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EXDEV) && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EMLINK) {
			return nil, err
		}
		if err := copyFile(r.path, name); err != nil {
			os.Remove(name)
			return nil, err
		}
		c.size = countFile(name)
	}
	return &c, nil
}

// linkFile makes a hard link; tests replace it with a file system that
// has none.
var linkFile = os.Link

// copyFile copies spill file from to a new file to.
func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := openFile(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Records yields the rejected rows as records of source.RejectSchema.
func (r *Rejects) Records(ctx context.Context) iter.Seq2[arrow.RecordBatch, error] {
	return readParquet(ctx, r.path, source.RejectSchema)
}

// Close removes the rejects file.
func (r *Rejects) Close() {
	if r != nil && r.path != "" {
		removeFile(r.path, r.size)
		r.path = ""
	}
}
