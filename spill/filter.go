package spill

import (
	"encoding/binary"
	"math/bits"
	"os"
)

// filter is a Bloom filter of customers (their 16 bytes are uniform: SHA-1
// or random UUIDs, so their two halves serve as the two hashes). A false
// positive only lets an event through that did not need to be, never the
// reverse, so it costs time and never changes a row.
type filter struct {
	bits []uint64
	mask uint64
}

const filterHashes = 4

// newFilter sizes a filter for a day of about rows events (half a bit per
// event: ~10 bits per buyer when 5 % of events are orders or refunds), at
// most maxBytes.
func newFilter(rows, maxBytes int64) *filter {
	words := max(64, min(rows/128, maxBytes/8))
	words = 1 << (bits.Len64(uint64(words - 1)))
	return &filter{bits: make([]uint64, words), mask: uint64(words*64 - 1)}
}

func (f *filter) add(hi, lo uint64) {
	for i := uint64(0); i < filterHashes; i++ {
		b := (hi + i*lo) & f.mask
		f.bits[b>>6] |= 1 << (b & 63)
	}
}

func (f *filter) has(hi, lo uint64) bool {
	for i := uint64(0); i < filterHashes; i++ {
		b := (hi + i*lo) & f.mask
		if f.bits[b>>6]&(1<<(b&63)) == 0 {
			return false
		}
	}
	return true
}

func (f *filter) save(path string) error {
	buf := make([]byte, 8*len(f.bits))
	for i, w := range f.bits {
		binary.LittleEndian.PutUint64(buf[8*i:], w)
	}
	out, err := openFile(path)
	if err != nil {
		return err
	}
	_, err = out.Write(buf)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return err
	}
	BytesWritten.Add(int64(len(buf)))
	BytesOnDisk.Add(int64(len(buf)))
	return nil
}

func loadFilter(path string) (*filter, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	words := len(buf) / 8
	f := &filter{bits: make([]uint64, words), mask: uint64(words*64 - 1)}
	for i := range f.bits {
		f.bits[i] = binary.LittleEndian.Uint64(buf[8*i:])
	}
	return f, nil
}
