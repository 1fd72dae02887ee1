package features

import (
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"runtime"
	"slices"
	"sync"
	"time"
	"unsafe"

	"github.com/icefill/icefill/internal/errkind"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// Source column names (spec §1).
const (
	ColEventID       = "event_id"
	ColEventTS       = "event_ts"
	ColSchemaVersion = "schema_version"
	ColUserID        = "user_id"
	ColEventType     = "event_type"
	ColChannel       = "channel"
	ColOrderID       = "order_id"
	ColAmountCents   = "amount_cents"
	ColCountry       = "country"
)

// RequiredColumns must exist in every source file.
var RequiredColumns = []string{ColEventID, ColEventTS, ColSchemaVersion, ColUserID, ColEventType}

// MissingRequired names the first required column absent from names, or "".
func MissingRequired(names []string) string {
	for _, c := range RequiredColumns {
		found := false
		for _, n := range names {
			if n == c {
				found = true
				break
			}
		}
		if !found {
			return c
		}
	}
	return ""
}

// UsedColumns are the columns the logic reads; order_id and schema_version
// are never needed (the version is told by user_id's type), so readers may
// skip decoding them.
var UsedColumns = []string{ColEventID, ColEventTS, ColUserID, ColEventType, ColChannel, ColAmountCents, ColCountry}

// RejectReason says why a row does not fit the source contract.
type RejectReason string

// The reasons of spec §1.
const (
	RejectNullEventID   RejectReason = "null event_id"
	RejectNullEventTS   RejectReason = "null event_ts"
	RejectNullUserID    RejectReason = "null user_id"
	RejectUserIDNotUUID RejectReason = "v2 user_id is not a UUID"
	RejectUnknownType   RejectReason = "unknown event_type"
)

// Reject is one rejected row, kept with its raw values for inspection.
type Reject struct {
	Date      Date
	File      string
	Row       int64
	Reason    RejectReason
	EventID   *string
	EventTS   *int64
	UserID    *string
	EventType *string
}

// SchemaVersion is told by the Arrow type of user_id.
type SchemaVersion int

// The two source schema versions.
const (
	V1 SchemaVersion = 1 // user_id int64
	V2 SchemaVersion = 2 // user_id UUID string
)

// ColumnError reports a file that cannot be read into the contract at all.
type ColumnError struct {
	File, Column, Problem string
}

func (e *ColumnError) Error() string {
	return fmt.Sprintf("source file %s: column %q %s", e.File, e.Column, e.Problem)
}

// decodedRequired are the required columns the logic itself decodes.
var decodedRequired = []string{ColEventID, ColEventTS, ColUserID, ColEventType}

// VersionOf tells a batch's schema version from its user_id field, or says
// what is wrong with it.
func VersionOf(file string, schema *arrow.Schema) (SchemaVersion, error) {
	for _, c := range decodedRequired {
		if len(schema.FieldIndices(c)) == 0 {
			return 0, &ColumnError{File: file, Column: c, Problem: "is missing (a required column of the source contract)"}
		}
	}
	f := schema.Field(schema.FieldIndices(ColUserID)[0])
	switch valueType(f.Type).ID() {
	case arrow.INT64, arrow.INT32:
		return V1, nil
	case arrow.STRING, arrow.LARGE_STRING, arrow.BINARY:
		return V2, nil
	}
	return 0, &ColumnError{File: file, Column: ColUserID, Problem: fmt.Sprintf("has type %s; want int64 (v1) or string (v2)", f.Type)}
}

func valueType(t arrow.DataType) arrow.DataType {
	if d, ok := t.(*arrow.DictionaryType); ok {
		return d.ValueType
	}
	return t
}

// DayBuilder decodes a day's Arrow batches into a Day. Feed it the day's
// files in name order and each file's batches in row order.
type DayBuilder struct {
	day      *Day
	file     int
	fileRows int64

	// Accepted events so far, spread by customer (see buildBuckets).
	bk buildBuckets
	n  int

	// Per-batch scratch, reused.
	hi, lo []uint64
	reason []uint8
	tsv    []int64
	h32    []uint32
	amt    []int64
	typ    []uint8
	chn    []uint16
	ctry   []uint16
	rej    []int

	// v1 cache: user id -> customer, direct-mapped.
	v1 *v1Cache

	mem *buildMem

	// sink, when set, receives every accepted event instead of the day
	// (see SetSink).
	sink func(*Event)
	ev   Event
	// rejectSink, when set, receives the rejects (see SetRejectSink).
	rejectSink func(Reject)
}

// v1Cache maps v1 user ids to customers (SHA-1 is the costly part of
// decoding v1 files). Direct-mapped; a slot holds uid+1, 0 when empty.
type v1Cache [1 << v1CacheBits]v1Slot

type v1Slot struct {
	key    uint64
	hi, lo uint64
}

// v1CacheBits sizes the cache to a large population (24 MiB).
const v1CacheBits = 20

// v1Caches keeps idle caches for the next day's builder: the population
// of one day is mostly the population of the next. At most maxIdleV1
// caches are kept, so memory follows the number of concurrent decodes.
var v1Caches struct {
	mu   sync.Mutex
	idle []*v1Cache
}

const maxIdleV1 = 2

func getV1Cache() *v1Cache {
	v1Caches.mu.Lock()
	defer v1Caches.mu.Unlock()
	if n := len(v1Caches.idle); n > 0 {
		c := v1Caches.idle[n-1]
		v1Caches.idle = v1Caches.idle[:n-1]
		return c
	}
	return new(v1Cache)
}

func putV1Cache(c *v1Cache) {
	v1Caches.mu.Lock()
	defer v1Caches.mu.Unlock()
	if len(v1Caches.idle) >= maxIdleV1 {
		return // the collector frees it
	}
	v1Caches.idle = append(v1Caches.idle, c)
}

// DropIdleV1Caches lets the collector take the idle v1 caches (24 MiB
// each): the external path calls it once a day is streamed, so they do not
// sit in a small memory budget while buckets are computed.
func DropIdleV1Caches() {
	v1Caches.mu.Lock()
	defer v1Caches.mu.Unlock()
	clear(v1Caches.idle)
	v1Caches.idle = v1Caches.idle[:0]
}

// maxIDBytes bounds a day's event-id bytes (offsets are 32-bit).
const maxIDBytes = 1<<32 - 1

// NewDayBuilder starts decoding day d. sizeHint (events) pre-sizes columns; 0 is fine.
func NewDayBuilder(d Date, sizeHint int) *DayBuilder {
	b := &DayBuilder{day: &Day{Date: d}, file: -1}
	b.day.idOff = []uint32{0}
	b.Reserve(sizeHint, sizeHint*24)
	return b
}

// Reserve makes room for rows more events holding about idBytes bytes of
// event ids, so the columns grow once instead of doubling. The first
// reservation sizes the day's id columns and takes the decode buckets from
// the scratch pool; later growth, if any, is ordinary.
func (b *DayBuilder) Reserve(rows, idBytes int) {
	if rows <= 0 {
		return
	}
	d := b.day
	per := rows/len(b.bk) + rows/len(b.bk)/8 + 16
	if (b.mem == nil || b.mem.scratch == nil && !b.mem.reserved) && b.n == 0 && len(d.idData) == 0 {
		if b.mem == nil {
			b.mem = &buildMem{}
			runtime.AddCleanup(b, releaseBuild, b.mem)
		}
		b.mem.reserved = true
		d.idOff = append(make([]uint32, 0, rows+1), d.idOff...)
		if idBytes > 0 {
			d.idData = make([]byte, 0, idBytes)
		}
		size := int(unsafe.Sizeof(bent{}))
		b.mem.scratch = getScratch(per * size * len(b.bk))
		for k := range b.bk {
			b.bk[k] = view[bent](b.mem.scratch[k*per*size:], per)[:0]
		}
		return
	}
	d.idOff = slices.Grow(d.idOff, rows)
	if idBytes > 0 {
		d.idData = slices.Grow(d.idData, idBytes)
	}
	for k := range b.bk {
		if cap(b.bk[k])-len(b.bk[k]) < per {
			b.bk[k] = slices.Grow(b.bk[k], per)
		}
	}
}

// buildMem is what a builder borrows from the pools: the decode buckets
// (scratch, returned by Finish) and a v1 cache. A builder dropped without
// Finish returns both. reserved records the first Reserve.
type buildMem struct {
	scratch  []byte
	v1       *v1Cache
	reserved bool
	finished bool
}

func releaseBuild(m *buildMem) {
	if m.v1 != nil {
		putV1Cache(m.v1)
	}
	if !m.finished {
		putScratch(m.scratch)
	}
}

// StartFile begins the next file; later batches belong to it.
func (b *DayBuilder) StartFile(name string) {
	b.day.Files = append(b.day.Files, name)
	b.file = len(b.day.Files) - 1
	b.fileRows = 0
}

// reject reasons in precedence order; 0 accepts the row.
const (
	rsOK uint8 = iota
	rsNullEventID
	rsNullEventTS
	rsNullUserID
	rsNotUUID
	rsUnknownType
)

var reasonOf = [...]RejectReason{"", RejectNullEventID, RejectNullEventTS, RejectNullUserID, RejectUserIDNotUUID, RejectUnknownType}

// Add decodes one batch of the current file.
func (b *DayBuilder) Add(rec arrow.RecordBatch) error {
	if b.file < 0 {
		return fmt.Errorf("decode day %s: Add before StartFile", b.day.Date)
	}
	file := b.day.Files[b.file]
	version, err := VersionOf(file, rec.Schema())
	if err != nil {
		return err
	}
	col := func(name string) arrow.Array {
		if idx := rec.Schema().FieldIndices(name); len(idx) > 0 {
			return rec.Column(idx[0])
		}
		return nil
	}
	ids, err := newStringCol(file, ColEventID, col(ColEventID))
	if err != nil {
		return err
	}
	tsCol, err := newTimestampCol(file, col(ColEventTS))
	if err != nil {
		return err
	}
	types, err := newCodeCol(file, ColEventType, col(ColEventType), eventTypeCode)
	if err != nil {
		return err
	}
	channels, err := newCodeCol(file, ColChannel, col(ColChannel), channelCode)
	if err != nil {
		return err
	}
	countries, err := newCodeCol(file, ColCountry, col(ColCountry), countrySymbols.code)
	if err != nil {
		return err
	}
	var amounts *array.Int64
	if a := col(ColAmountCents); a != nil {
		var ok bool
		if amounts, ok = a.(*array.Int64); !ok {
			return &ColumnError{File: file, Column: ColAmountCents, Problem: fmt.Sprintf("has type %s; want int64", a.DataType())}
		}
	}
	var userInts *array.Int64
	var userInt32 *array.Int32
	var userStrs stringCol
	if version == V1 {
		switch u := col(ColUserID).(type) {
		case *array.Int64:
			userInts = u
		case *array.Int32:
			userInt32 = u
		default:
			return &ColumnError{File: file, Column: ColUserID, Problem: fmt.Sprintf("has unsupported array type %s", u.DataType())}
		}
	} else if userStrs, err = newStringCol(file, ColUserID, col(ColUserID)); err != nil {
		return err
	}

	d := b.day
	n := int(rec.NumRows())
	b.hi = grow(b.hi, n)
	b.lo = grow(b.lo, n)
	b.reason = grow(b.reason, n)
	b.typ = grow(b.typ, n)
	b.tsv = grow(b.tsv, n)
	b.h32 = grow(b.h32, n)
	b.amt = grow(b.amt, n)
	b.chn = grow(b.chn, n)
	b.ctry = grow(b.ctry, n)
	reason := b.reason
	clear(reason)

	// Codes of the low-cardinality columns.
	if err := types.codes8(b.typ); err != nil {
		return err
	}
	if err := channels.codes16(ColChannel, b.chn); err != nil {
		return err
	}
	if err := countries.codes16(ColCountry, b.ctry); err != nil {
		return err
	}

	// Customers, and the rejects in precedence order (a later check only
	// fills rows still accepted).
	switch {
	case userInts != nil:
		b.v1Customers(userInts.Int64Values(), nil, userInts)
	case userInt32 != nil:
		b.v1Customers(nil, userInt32.Int32Values(), userInt32)
	default:
		b.v2Customers(userStrs)
	}
	for i, t := range b.typ[:n] {
		if t == 0 && reason[i] == rsOK {
			reason[i] = rsUnknownType
		}
	}
	if ids.arr == nil || ids.arr.NullN() > 0 {
		for i := range reason {
			if ids.arr == nil || ids.arr.IsNull(i) {
				reason[i] = rsNullEventID
			}
		}
	}
	if tsCol.arr.NullN() > 0 {
		for i := range reason {
			if tsCol.arr.IsNull(i) && reason[i] != rsNullEventID {
				reason[i] = rsNullEventTS
			}
		}
	}
	rej := b.rej[:0]
	for i, r := range reason {
		if r != rsOK {
			rej = append(rej, i)
			rj := b.reject(file, b.fileRows+int64(i), reasonOf[r], ids, tsCol, userInts, userInt32, userStrs, col(ColEventType), i)
			if b.rejectSink != nil {
				b.rejectSink(rj)
				d.rejectsSunk++
			} else {
				d.Rejects = append(d.Rejects, rj)
			}
		}
	}
	b.rej = rej

	if b.n+n-len(rej) > math.MaxInt32 {
		return fmt.Errorf("decode day %s: more than %d events in one day", d.Date, math.MaxInt32)
	}
	b.fillTimestamps(tsCol)
	b.fillAmounts(amounts)

	// Append the accepted rows, segment by segment between rejects.
	s := 0
	for k := 0; k <= len(rej); k++ {
		e := n
		if k < len(rej) {
			e = rej[k]
		}
		if e > s {
			if err := b.appendRows(s, e, ids); err != nil {
				return err
			}
		}
		s = e + 1
	}
	b.fileRows += int64(n)
	d.RowsRead += int64(n)
	return nil
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// fillTimestamps converts the batch's event_ts to µs into b.tsv (rows
// with a null event_ts are rejected and left alone).
func (b *DayBuilder) fillTimestamps(tsCol timestampCol) {
	raw := tsCol.arr.TimestampValues()
	out := b.tsv
	switch {
	case tsCol.div != 1:
		for i, v := range raw[:len(out)] {
			out[i] = floorDiv(int64(v), tsCol.div)
		}
	case tsCol.mul != 1:
		for i, v := range raw[:len(out)] {
			out[i] = int64(v) * tsCol.mul
		}
	default:
		for i, v := range raw[:len(out)] {
			out[i] = int64(v)
		}
	}
}

// fillAmounts reads the batch's amount_cents into b.amt, null as 0.
func (b *DayBuilder) fillAmounts(amounts *array.Int64) {
	out := b.amt
	switch {
	case amounts == nil:
		clear(out)
	case amounts.NullN() == 0:
		copy(out, amounts.Int64Values())
	default:
		vals := amounts.Int64Values()
		for i := range out {
			var v int64
			if amounts.IsValid(i) {
				v = vals[i]
			}
			out[i] = v
		}
	}
}

// appendRows appends the batch rows [s, e), all accepted.
func (b *DayBuilder) appendRows(s, e int, ids stringCol) error {
	if b.sink != nil {
		return b.sinkRows(s, e, ids)
	}
	d := b.day
	// Event ids.
	if ids.str != nil && ids.dict == nil {
		offs := ids.str.ValueOffsets()
		data := ids.str.Data().Buffers()[2]
		var buf []byte
		if data != nil {
			buf = data.Bytes()
		}
		base := offs[s]
		if len(d.idData)+int(offs[e]-base) > maxIDBytes {
			return fmt.Errorf("decode day %s: more than %d bytes of event ids in one day", d.Date, maxIDBytes)
		}
		cur := uint32(len(d.idData)) - uint32(base)
		d.idData = append(d.idData, buf[base:offs[e]]...)
		h32 := b.h32[s:e]
		for i, o := range offs[s+1 : e+1] {
			d.idOff = append(d.idOff, cur+uint32(o))
			h32[i] = uint32(maphash.Bytes(idSeed, buf[offs[s+i]:o]) >> 32)
		}
	} else {
		for i := s; i < e; i++ {
			v, _ := ids.value(i)
			if len(d.idData)+len(v) > maxIDBytes {
				return fmt.Errorf("decode day %s: more than %d bytes of event ids in one day", d.Date, maxIDBytes)
			}
			d.idData = append(d.idData, v...)
			d.idOff = append(d.idOff, uint32(len(d.idData)))
			b.h32[i] = uint32(maphash.Bytes(idSeed, v) >> 32)
		}
	}
	// The other columns, spread by customer.
	ev := int32(b.n)
	hi, lo, ts, amt := b.hi[s:e], b.lo[s:e], b.tsv[s:e], b.amt[s:e]
	typ, chn, ctry, h32 := b.typ[s:e], b.chn[s:e], b.ctry[s:e], b.h32[s:e]
	for i := range hi {
		h := hi[i]
		k := bucketOf(h)
		b.bk[k] = append(b.bk[k], bent{hi: h, lo: lo[i], ts: ts[i], amount: amt[i], ev: ev,
			h32: h32[i], chn: chn[i], ctry: ctry[i], typ: EventType(typ[i])})
		ev++
	}
	b.n = int(ev)
	return nil
}

// v1Customers fills b.hi/b.lo from integer user ids, marking null ones.
func (b *DayBuilder) v1Customers(v64 []int64, v32 []int32, arr arrow.Array) {
	if b.v1 == nil {
		b.v1 = getV1Cache()
		if b.mem == nil {
			b.mem = &buildMem{}
			runtime.AddCleanup(b, releaseBuild, b.mem)
		}
		b.mem.v1 = b.v1
	}
	n := len(b.reason)
	nulls := arr.NullN() > 0
	for i := 0; i < n; i++ {
		if nulls && arr.IsNull(i) {
			b.reason[i] = rsNullUserID
			continue
		}
		var uid int64
		if v64 != nil {
			uid = v64[i]
		} else {
			uid = int64(v32[i])
		}
		// Fibonacci hashing spreads sequential ids over the slots.
		slot := &b.v1[(uint64(uid)*0x9E3779B97F4A7C15)>>(64-v1CacheBits)]
		if slot.key != uint64(uid)+1 || slot.key == 0 {
			c := CustomerFromV1(uid)
			*slot = v1Slot{key: uint64(uid) + 1, hi: binary.BigEndian.Uint64(c[:8]), lo: binary.BigEndian.Uint64(c[8:])}
		}
		b.hi[i], b.lo[i] = slot.hi, slot.lo
	}
}

// v2Customers fills b.hi/b.lo from UUID strings, marking null and invalid ones.
func (b *DayBuilder) v2Customers(us stringCol) {
	n := len(b.reason)
	if us.str != nil && us.dict == nil {
		offs := us.str.ValueOffsets()
		var buf []byte
		if data := us.str.Data().Buffers()[2]; data != nil {
			buf = data.Bytes()
		}
		nulls := us.arr.NullN() > 0
		for i := 0; i < n; i++ {
			if nulls && us.arr.IsNull(i) {
				b.reason[i] = rsNullUserID
				continue
			}
			hi, lo, ok := parseUUID(buf[offs[i]:offs[i+1]])
			if !ok {
				b.reason[i] = rsNotUUID
				continue
			}
			b.hi[i], b.lo[i] = hi, lo
		}
		return
	}
	for i := 0; i < n; i++ {
		v, ok := us.value(i)
		if !ok {
			b.reason[i] = rsNullUserID
			continue
		}
		hi, lo, ok := parseUUID(v)
		if !ok {
			b.reason[i] = rsNotUUID
			continue
		}
		b.hi[i], b.lo[i] = hi, lo
	}
}

func (b *DayBuilder) reject(file string, row int64, reason RejectReason, ids stringCol, ts timestampCol,
	ui *array.Int64, ui32 *array.Int32, us stringCol, typeArr arrow.Array, i int) Reject {
	r := Reject{Date: b.day.Date, File: file, Row: row, Reason: reason}
	if v, ok := ids.value(i); ok {
		s := string(v)
		r.EventID = &s
	}
	if v, ok := ts.value(i); ok {
		r.EventTS = &v
	}
	switch {
	case ui != nil && ui.IsValid(i):
		s := fmt.Sprint(ui.Value(i))
		r.UserID = &s
	case ui32 != nil && ui32.IsValid(i):
		s := fmt.Sprint(ui32.Value(i))
		r.UserID = &s
	case us.arr != nil:
		if v, ok := us.value(i); ok {
			s := string(v)
			r.UserID = &s
		}
	}
	if tc, err := newStringCol(file, ColEventType, typeArr); err == nil {
		if v, ok := tc.value(i); ok {
			s := string(v)
			r.EventType = &s
		}
	}
	return r
}

// Finish returns the decoded day, grouped by customer.
func (b *DayBuilder) Finish() *Day {
	if b.v1 != nil {
		putV1Cache(b.v1)
		b.v1 = nil
		b.mem.v1 = nil
	}
	n := b.n
	if b.sink != nil {
		n = 0 // the events went to the sink
	}
	b.day.finish(&b.bk, n)
	if b.mem != nil {
		// The buckets are consumed: nothing refers to the scratch now.
		putScratch(b.mem.scratch)
		b.mem.finished = true
	}
	d := b.day
	b.day = nil
	return d
}

func eventTypeCode(b []byte) uint32 {
	switch string(b) {
	case "touch":
		return uint32(Touch)
	case "order":
		return uint32(Order)
	case "refund":
		return uint32(Refund)
	}
	return 0
}

// stringCol reads a string column stored plainly or dictionary-encoded.
type stringCol struct {
	arr  arrow.Array
	str  *array.String
	lstr *array.LargeString
	bin  *array.Binary
	dict *array.Dictionary
}

func newStringCol(file, name string, a arrow.Array) (stringCol, error) {
	c := stringCol{arr: a}
	switch v := a.(type) {
	case nil:
	case *array.String:
		c.str = v
	case *array.LargeString:
		c.lstr = v
	case *array.Binary:
		c.bin = v
	case *array.Dictionary:
		c.dict = v
		inner, err := newStringCol(file, name, v.Dictionary())
		if err != nil {
			return c, err
		}
		if inner.dict != nil {
			return c, &ColumnError{File: file, Column: name, Problem: "is a nested dictionary"}
		}
		c.str, c.lstr, c.bin = inner.str, inner.lstr, inner.bin
	default:
		return c, &ColumnError{File: file, Column: name, Problem: fmt.Sprintf("has type %s; want string", a.DataType())}
	}
	return c, nil
}

// value returns row i's bytes (valid until the batch is released) and
// whether the value is non-null. A missing column reads as null.
func (c stringCol) value(i int) ([]byte, bool) {
	if c.arr == nil || c.arr.IsNull(i) {
		return nil, false
	}
	if c.dict != nil {
		i = c.dict.GetValueIndex(i)
	}
	switch {
	case c.str != nil:
		return unsafeBytes(c.str.Value(i)), true
	case c.lstr != nil:
		return unsafeBytes(c.lstr.Value(i)), true
	default:
		return c.bin.Value(i), true
	}
}

// codeCol maps a low-cardinality string column to codes, translating a
// dictionary once per batch instead of once per row.
type codeCol struct {
	sc     stringCol
	encode func([]byte) uint32
	dict   []uint32
}

func newCodeCol(file, name string, a arrow.Array, encode func([]byte) uint32) (codeCol, error) {
	sc, err := newStringCol(file, name, a)
	if err != nil {
		return codeCol{}, err
	}
	c := codeCol{sc: sc, encode: encode}
	if sc.dict != nil {
		dv := sc.dict.Dictionary()
		c.dict = make([]uint32, dv.Len())
		inner := sc
		inner.dict, inner.arr = nil, dv
		for j := range c.dict {
			if v, ok := inner.value(j); ok {
				c.dict[j] = encode(v)
			}
		}
	}
	return c, nil
}

func (c codeCol) code(i int) uint32 {
	if c.sc.arr == nil || c.sc.arr.IsNull(i) {
		return 0
	}
	if c.dict != nil {
		return c.dict[c.sc.dict.GetValueIndex(i)]
	}
	v, _ := c.sc.value(i)
	return c.encode(v)
}

// codes8 writes the code of every row of the batch into out (0 for null).
func (c codeCol) codes8(out []uint8) error {
	return fillCodes(c, out, "", 0xff)
}

// codes16 writes the code of every row of the batch into out (0 for null).
func (c codeCol) codes16(name string, out []uint16) error {
	return fillCodes(c, out, name, 0xffff)
}

func fillCodes[T uint8 | uint16](c codeCol, out []T, name string, limit uint32) error {
	if c.sc.arr == nil {
		clear(out)
		return nil
	}
	if c.dict == nil {
		for i := range out {
			v := c.code(i)
			if v > limit {
				return tooManyCodes(name, limit)
			}
			out[i] = T(v)
		}
		return nil
	}
	for _, v := range c.dict {
		if v > limit {
			return tooManyCodes(name, limit)
		}
	}
	switch ind := c.sc.dict.Indices().(type) {
	case *array.Int8:
		lookupCodes(out, ind.Values(), c.dict)
	case *array.Uint8:
		lookupCodes(out, ind.Values(), c.dict)
	case *array.Int16:
		lookupCodes(out, ind.Values(), c.dict)
	case *array.Uint16:
		lookupCodes(out, ind.Values(), c.dict)
	case *array.Int32:
		lookupCodes(out, ind.Values(), c.dict)
	case *array.Uint32:
		lookupCodes(out, ind.Values(), c.dict)
	case *array.Int64:
		lookupCodes(out, ind.Values(), c.dict)
	case *array.Uint64:
		lookupCodes(out, ind.Values(), c.dict)
	default:
		for i := range out {
			out[i] = T(c.code(i))
		}
		return nil
	}
	zeroNulls(c.sc.arr, out)
	return nil
}

// lookupCodes maps dictionary indices to codes; an index out of range (the
// undefined index under a null slot) maps to 0.
func lookupCodes[T uint8 | uint16, I int8 | uint8 | int16 | uint16 | int32 | uint32 | int64 | uint64](out []T, idx []I, dict []uint32) {
	idx = idx[:len(out)]
	for i, x := range idx {
		var v uint32
		if uint64(x) < uint64(len(dict)) {
			v = dict[x]
		}
		out[i] = T(v)
	}
}

// zeroNulls sets out[i] to 0 where arr is null.
func zeroNulls[T uint8 | uint16](arr arrow.Array, out []T) {
	if arr.NullN() == 0 {
		return
	}
	bm := arr.NullBitmapBytes()
	off := arr.Data().Offset()
	if len(bm) == 0 {
		clear(out)
		return
	}
	for i := range out {
		j := off + i
		if bm[j>>3]&(1<<(j&7)) == 0 {
			out[i] = 0
		}
	}
}

func tooManyCodes(name string, limit uint32) error {
	return fmt.Errorf("column %q: more than %d distinct values in one process; the compact encoding cannot hold them", name, limit)
}

// timestampCol reads event_ts as µs since epoch whatever its stored unit.
type timestampCol struct {
	arr *array.Timestamp
	mul int64
	div int64
}

func newTimestampCol(file string, a arrow.Array) (timestampCol, error) {
	ts, ok := a.(*array.Timestamp)
	if !ok {
		return timestampCol{}, &ColumnError{File: file, Column: ColEventTS, Problem: fmt.Sprintf("has type %s; want timestamp", a.DataType())}
	}
	c := timestampCol{arr: ts, mul: 1, div: 1}
	switch ts.DataType().(*arrow.TimestampType).Unit {
	case arrow.Second:
		c.mul = int64(time.Second / time.Microsecond)
	case arrow.Millisecond:
		c.mul = 1000
	case arrow.Nanosecond:
		c.div = 1000
	}
	return c, nil
}

func (c timestampCol) value(i int) (int64, bool) {
	if c.arr.IsNull(i) {
		return 0, false
	}
	v := int64(c.arr.Value(i))
	if c.div != 1 {
		return floorDiv(v, c.div), true
	}
	return v * c.mul, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// ErrorKind marks a bad source column as bad input: fix the data.
func (e *ColumnError) ErrorKind() errkind.Kind { return errkind.Usage }
