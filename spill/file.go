package spill

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/klauspost/compress/s2"

	"github.com/icefill/icefill/features"
)

// A spill file is a sequence of frames: uvarint(length) then an S2 block of
// records. A record is one event and the rank of its day in the window:
//
//	rank u8 | hi u64 | lo u64 | ts varint | amount varint | seq uvarint |
//	type u8 | channel uvarint | country uvarint | len(id) uvarint | id
//
// Files live only as long as the process that wrote them (symbol codes and
// id hashes are per process).

// writer appends records to one spill file. One writer per bucket is open
// at once, so each buffers at most frame bytes (Budget.frame: the buffers
// of all buckets' writers stay within a share of the budget), and the
// compressed copy of a frame comes from a pool shared by all writers.
type writer struct {
	f     *os.File
	path  string
	buf   []byte
	frame int
	n     int64 // bytes written
	// records counts the records written.
	records int64
}

// encBufs holds the buffers frames are compressed into.
var encBufs = sync.Pool{New: func() any { return new([]byte) }}

// openFile creates a spill file; tests replace it to make writes fail.
var openFile = func(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
}

func createWriter(path string, frame int) (*writer, error) {
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	return &writer{f: f, path: path, frame: frame}, nil
}

func (w *writer) add(rank uint8, e *features.Event) error {
	if w.buf == nil {
		w.buf = make([]byte, 0, w.frame+64)
	}
	b := w.buf
	b = append(b, rank)
	b = binary.BigEndian.AppendUint64(b, e.Hi)
	b = binary.BigEndian.AppendUint64(b, e.Lo)
	b = binary.AppendVarint(b, e.TS)
	b = binary.AppendVarint(b, e.Amount)
	b = binary.AppendUvarint(b, uint64(e.Seq))
	b = append(b, byte(e.Type))
	b = binary.AppendUvarint(b, uint64(e.Channel))
	b = binary.AppendUvarint(b, uint64(e.Country))
	b = binary.AppendUvarint(b, uint64(len(e.ID)))
	b = append(b, e.ID...)
	w.buf = b
	w.records++
	if len(b) >= w.frame {
		return w.flush()
	}
	return nil
}

func (w *writer) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	eb := encBufs.Get().(*[]byte)
	defer encBufs.Put(eb)
	if need := binary.MaxVarintLen64 + s2.MaxEncodedLen(len(w.buf)); cap(*eb) < need {
		*eb = make([]byte, need)
	}
	out := (*eb)[:cap(*eb)]
	enc := s2.Encode(out[binary.MaxVarintLen64:], w.buf)
	// The length goes just before the block, one write per frame.
	var hdr [binary.MaxVarintLen64]byte
	h := binary.PutUvarint(hdr[:], uint64(len(enc)))
	start := binary.MaxVarintLen64 - h
	copy(out[start:], hdr[:h])
	if _, err := w.f.Write(out[start : binary.MaxVarintLen64+len(enc)]); err != nil {
		return err
	}
	n := int64(h + len(enc))
	w.n += n
	BytesWritten.Add(n)
	BytesOnDisk.Add(n)
	w.buf = w.buf[:0]
	return nil
}

// close flushes and closes the file (keeping it).
func (w *writer) close() error {
	err := w.flush()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.buf = nil
	return err
}

// countFile adds a finished file written by a library (Parquet) to the
// counters and returns its size.
func countFile(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	BytesWritten.Add(st.Size())
	BytesOnDisk.Add(st.Size())
	return st.Size()
}

// removeFile deletes a spill file of n bytes.
func removeFile(path string, n int64) {
	if os.Remove(path) == nil {
		BytesOnDisk.Add(-n)
	}
}

// readFile calls fn with every record of a spill file, in write order. The
// event's ID is only valid during the call.
func readFile(path string, fn func(rank uint8, e *features.Event) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 256<<10)
	var comp, raw []byte
	var e features.Event
	for {
		n, err := binary.ReadUvarint(r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("spill file %s: %w", path, err)
		}
		if cap(comp) < int(n) {
			comp = make([]byte, n)
		}
		comp = comp[:n]
		if _, err := io.ReadFull(r, comp); err != nil {
			return fmt.Errorf("spill file %s: %w", path, err)
		}
		if raw, err = s2.Decode(raw[:cap(raw)], comp); err != nil {
			return fmt.Errorf("spill file %s: %w", path, err)
		}
		b := raw
		for len(b) > 0 {
			rank := b[0]
			b = b[1:]
			if len(b) < 16 {
				return fmt.Errorf("spill file %s: truncated record", path)
			}
			e.Hi = binary.BigEndian.Uint64(b)
			e.Lo = binary.BigEndian.Uint64(b[8:])
			b = b[16:]
			var k int
			e.TS, k = binary.Varint(b)
			b = b[k:]
			e.Amount, k = binary.Varint(b)
			b = b[k:]
			seq, k := binary.Uvarint(b)
			b = b[k:]
			e.Seq = int32(seq)
			e.Type = features.EventType(b[0])
			b = b[1:]
			ch, k := binary.Uvarint(b)
			b = b[k:]
			ct, k := binary.Uvarint(b)
			b = b[k:]
			l, k := binary.Uvarint(b)
			b = b[k:]
			if k <= 0 || uint64(len(b)) < l {
				return fmt.Errorf("spill file %s: truncated record", path)
			}
			e.Channel, e.Country = uint16(ch), uint16(ct)
			e.ID = b[:l]
			b = b[l:]
			if err := fn(rank, &e); err != nil {
				return err
			}
		}
	}
}
