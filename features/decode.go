package features

import (
	"fmt"
	"hash/maphash"
	"time"

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
	custIdx  map[CustomerID]int32
	v1Cache  map[int64]int32
	file     int
	fileRows int64
}

// NewDayBuilder starts decoding day d. sizeHint (events) pre-sizes columns; 0 is fine.
func NewDayBuilder(d Date, sizeHint int) *DayBuilder {
	day := &Day{Date: d}
	day.idOff = make([]int64, 1, sizeHint+1)
	day.idData = make([]byte, 0, sizeHint*24)
	day.idHash = make([]uint64, 0, sizeHint)
	day.ts = make([]int64, 0, sizeHint)
	day.cust = make([]int32, 0, sizeHint)
	day.typ = make([]EventType, 0, sizeHint)
	day.chn = make([]uint32, 0, sizeHint)
	day.amount = make([]int64, 0, sizeHint)
	day.ctry = make([]uint32, 0, sizeHint)
	return &DayBuilder{day: day, custIdx: map[CustomerID]int32{}, v1Cache: map[int64]int32{}, file: -1}
}

// StartFile begins the next file; later batches belong to it.
func (b *DayBuilder) StartFile(name string) {
	b.day.Files = append(b.day.Files, name)
	b.file = len(b.day.Files) - 1
	b.fileRows = 0
}

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
	for i := 0; i < n; i++ {
		row := b.fileRows + int64(i)
		id, idOK := ids.value(i)
		ts, tsOK := tsCol.value(i)
		typ := types.code(i)
		var cust int32
		var reason RejectReason
		switch {
		case !idOK:
			reason = RejectNullEventID
		case !tsOK:
			reason = RejectNullEventTS
		}
		if reason == "" {
			switch {
			case userInts != nil || userInt32 != nil:
				var uid int64
				var ok bool
				if userInts != nil {
					ok = userInts.IsValid(i)
					uid = userInts.Value(i)
				} else {
					ok = userInt32.IsValid(i)
					uid = int64(userInt32.Value(i))
				}
				if !ok {
					reason = RejectNullUserID
				} else {
					cust = b.v1Customer(uid)
				}
			default:
				s, ok := userStrs.value(i)
				if !ok {
					reason = RejectNullUserID
				} else if c, valid := ParseCustomerV2(s); !valid {
					reason = RejectUserIDNotUUID
				} else {
					cust = b.customer(c)
				}
			}
		}
		if reason == "" && typ == 0 {
			reason = RejectUnknownType
		}
		if reason != "" {
			d.Rejects = append(d.Rejects, b.reject(file, row, reason, ids, tsCol, userInts, userInt32, userStrs, col(ColEventType), i))
			continue
		}
		d.idData = append(d.idData, id...)
		d.idOff = append(d.idOff, int64(len(d.idData)))
		d.idHash = append(d.idHash, maphash.Bytes(idSeed, id))
		d.ts = append(d.ts, ts)
		d.cust = append(d.cust, cust)
		d.typ = append(d.typ, EventType(typ))
		d.chn = append(d.chn, channels.code(i))
		var amt int64
		if amounts != nil && amounts.IsValid(i) {
			amt = amounts.Value(i)
		}
		d.amount = append(d.amount, amt)
		d.ctry = append(d.ctry, countries.code(i))
	}
	b.fileRows += int64(n)
	d.RowsRead += int64(n)
	return nil
}

func (b *DayBuilder) customer(c CustomerID) int32 {
	k, ok := b.custIdx[c]
	if !ok {
		k = int32(len(b.day.custs))
		b.day.custs = append(b.day.custs, c)
		b.custIdx[c] = k
	}
	return k
}

// v1Customer caches the SHA-1 per user id: a day repeats users many times.
func (b *DayBuilder) v1Customer(uid int64) int32 {
	if k, ok := b.v1Cache[uid]; ok {
		return k
	}
	k := b.customer(CustomerFromV1(uid))
	b.v1Cache[uid] = k
	return k
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
	b.day.finish()
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
	dv   stringValues
}

type stringValues interface {
	IsValid(int) bool
	ValueStr(int) string
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
