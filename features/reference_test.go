package features_test

// Independent reference implementation of docs' CLV daily logic
// (/work/shared/spec/clv-logic.md, sections 1–4), used for differential testing of
// the production implementation. It is written to be obviously correct, not fast:
// every Parquet file is read whole with pqarrow, every row becomes a plain Go
// struct, and the spec is applied with plain loops, maps and sorts.
//
// Choices made where the spec is silent (also summarised in the report):
//   - Only regular files whose name ends in ".parquet" inside dt=YYYY-MM-DD are read,
//     in byte order of their base name; other files and sub-folders are ignored.
//     A missing day folder counts as empty.
//   - A file that is not readable Parquet, lacks a required column, or has a
//     required column of an unusable type (event_id/event_type not string-like,
//     event_ts not a timestamp, user_id neither integer nor string-like) fails the
//     call (t.Fatalf naming file and column). schema_version must exist but its
//     values (including nulls) are ignored; a null schema_version is not a reject.
//   - event_ts of another timestamp unit (s/ms/ns) is converted to µs (ns truncated
//     toward zero); the spec only promises µs.
//   - A null event_type is an unknown event_type (rejected). Reject reasons are
//     checked as a whole; a row is counted once however many reasons apply.
//   - Rejected rows take part in nothing: not in de-duplication, not in the
//     "event_id also occurs in the lookback" test, not in country.
//   - v1 user_id is any integer type; its decimal form is strconv base 10, so a
//     negative id gives the name "urn:clv:user:-7".
//   - An empty-string channel is a real (non-null) channel value ""; only null and
//     exactly "direct" mean "no channel". An empty-string country is a non-null
//     country. Amounts are summed as-is (a negative amount is not rejected).
//   - Legacy ties beyond the spec's (same event_ts and same event_id, i.e.
//     duplicates that differ) for the earliest touch and for country go to the copy
//     first in (file name, row position) order.
//   - Corrected de-duplication groups every non-rejected row of dt=D−7..D by
//     event_id (all event types). The kept copy decides everything about the
//     event (type, customer, ts, channel, amount, country). An order/refund whose
//     kept copy is in dt=D and whose event_id also occurs (any type, any copy) in
//     dt=D−7..D−1 is dropped. An event whose kept copy is in a lookback day is a
//     lookback event: only touches among them are used (attribution, features);
//     lookback orders/refunds are ignored.
//   - Corrected country uses the customer's kept, not-dropped events whose kept
//     copy is in dt=D (all event types), with the kept event_ts.
//   - avg_hours_to_convert = float64(sum of µs differences) / (float64(n) * 3.6e9).
//   - The features are computed only for customers that have an output row;
//     touches_7d/distinct_channels_7d count kept touches of any dt in D−7..D
//     whose kept event_ts is in [D−6 00:00, D+1 00:00); null-channel touches count
//     in touches_7d but not in distinct_channels_7d.

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// refRow is one output row of the spec's clv_daily table.
type refRow struct {
	EventDate                  string // YYYY-MM-DD
	CustomerID                 string // lowercase canonical UUID
	Channel                    string
	Orders, Gross, Refund, Net int64
	Country                    *string
	Touches7d                  *int64   // nil for legacy
	DistinctChannels7d         *int32   // nil for legacy
	AvgHoursToConvert          *float64 // nil when no attributed order (and always for legacy)
}

// refEvent is one accepted (non-rejected) source row.
type refEvent struct {
	dt       string // ingestion day folder, YYYY-MM-DD
	file     string // base file name
	pos      int    // row position inside the file
	eventID  string
	ts       int64 // µs since epoch, UTC
	customer string
	typ      string  // touch, order or refund
	channel  *string // nil when null or "direct"
	amount   int64   // null counts as 0
	country  *string
}

const (
	refMicrosPerHour = int64(3_600_000_000)
	refMicrosPerDay  = int64(86_400_000_000)
	refWindow        = 7 * refMicrosPerDay // 604,800,000,000 µs
)

var refUUIDRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// refUUIDv5 is RFC 9562 UUIDv5: SHA-1 over namespace bytes || name, truncated to
// 16 bytes, version nibble 5, variant bits 10.
func refUUIDv5(namespace, name string) string {
	nsHex := strings.ReplaceAll(namespace, "-", "")
	ns, err := hex.DecodeString(nsHex)
	if err != nil || len(ns) != 16 {
		panic("bad namespace " + namespace)
	}
	h := sha1.New()
	h.Write(ns)
	h.Write([]byte(name))
	sum := h.Sum(nil)
	var u [16]byte
	copy(u[:], sum[:16])
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	x := hex.EncodeToString(u[:])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

const refURLNamespace = "6ba7b811-9dad-11d1-80b4-00c04fd430c8"

func refV1Customer(userID int64) string {
	return refUUIDv5(refURLNamespace, "urn:clv:user:"+strconv.FormatInt(userID, 10))
}

// ---------------------------------------------------------------------------
// Generic column access (plain or dictionary arrays, any chunking).

// refStringAt returns the string value at row i of a string-like array (or a
// dictionary of one), nil when null. ok is false when the type is not string-like.
func refStringAt(a arrow.Array, i int) (v *string, ok bool) {
	if a.IsNull(i) {
		switch a.(type) {
		case *array.String, *array.LargeString, *array.Binary, *array.LargeBinary, *array.StringView, *array.BinaryView, *array.Dictionary:
			return nil, true
		}
		return nil, false
	}
	var s string
	switch c := a.(type) {
	case *array.String:
		s = c.Value(i)
	case *array.LargeString:
		s = c.Value(i)
	case *array.StringView:
		s = c.Value(i)
	case *array.Binary:
		s = string(c.Value(i))
	case *array.LargeBinary:
		s = string(c.Value(i))
	case *array.BinaryView:
		s = string(c.Value(i))
	case *array.Dictionary:
		return refStringAt(c.Dictionary(), c.GetValueIndex(i))
	default:
		return nil, false
	}
	return &s, true
}

func refIsStringType(dt arrow.DataType) bool {
	switch t := dt.(type) {
	case *arrow.StringType, *arrow.LargeStringType, *arrow.BinaryType, *arrow.LargeBinaryType, *arrow.StringViewType, *arrow.BinaryViewType:
		return true
	case *arrow.DictionaryType:
		return refIsStringType(t.ValueType)
	}
	return false
}

func refIsIntType(dt arrow.DataType) bool {
	switch t := dt.(type) {
	case *arrow.Int8Type, *arrow.Int16Type, *arrow.Int32Type, *arrow.Int64Type,
		*arrow.Uint8Type, *arrow.Uint16Type, *arrow.Uint32Type, *arrow.Uint64Type:
		return true
	case *arrow.DictionaryType:
		return refIsIntType(t.ValueType)
	}
	return false
}

// refIntAt returns the integer at row i (nil when null) of any integer array or a
// dictionary of one.
func refIntAt(a arrow.Array, i int) (v *int64, ok bool) {
	if d, isDict := a.(*array.Dictionary); isDict {
		if a.IsNull(i) {
			return nil, true
		}
		return refIntAt(d.Dictionary(), d.GetValueIndex(i))
	}
	if !refIsIntType(a.DataType()) {
		return nil, false
	}
	if a.IsNull(i) {
		return nil, true
	}
	var x int64
	switch c := a.(type) {
	case *array.Int8:
		x = int64(c.Value(i))
	case *array.Int16:
		x = int64(c.Value(i))
	case *array.Int32:
		x = int64(c.Value(i))
	case *array.Int64:
		x = c.Value(i)
	case *array.Uint8:
		x = int64(c.Value(i))
	case *array.Uint16:
		x = int64(c.Value(i))
	case *array.Uint32:
		x = int64(c.Value(i))
	case *array.Uint64:
		x = int64(c.Value(i))
	default:
		return nil, false
	}
	return &x, true
}

// refTimestampMicrosAt returns a timestamp value at row i in µs (nil when null).
func refTimestampMicrosAt(a arrow.Array, i int) (v *int64, ok bool) {
	c, isTS := a.(*array.Timestamp)
	if !isTS {
		return nil, false
	}
	if a.IsNull(i) {
		return nil, true
	}
	x := int64(c.Value(i))
	switch c.DataType().(*arrow.TimestampType).Unit {
	case arrow.Second:
		x *= 1_000_000
	case arrow.Millisecond:
		x *= 1_000
	case arrow.Microsecond:
	case arrow.Nanosecond:
		x /= 1_000
	}
	return &x, true
}

// refColumn flattens a table column into one array per row: (chunk, index) pairs.
type refCell struct {
	arr arrow.Array
	idx int
}

func refColumnCells(tbl arrow.Table, name string) ([]refCell, arrow.DataType, bool) {
	idx := tbl.Schema().FieldIndices(name)
	if len(idx) == 0 {
		return nil, nil, false
	}
	col := tbl.Column(idx[0])
	cells := make([]refCell, 0, tbl.NumRows())
	for _, ch := range col.Data().Chunks() {
		for i := 0; i < ch.Len(); i++ {
			cells = append(cells, refCell{ch, i})
		}
	}
	return cells, col.DataType(), true
}

// ---------------------------------------------------------------------------
// Reading a day.

// refReadDay reads every *.parquet file of sourceDir/dt=day. It returns the
// accepted rows and the number of rejected rows. A missing folder is empty.
func refReadDay(t testing.TB, sourceDir, day string) (events []refEvent, rejected int) {
	t.Helper()
	dir := filepath.Join(sourceDir, "dt="+day)
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, 0
	}
	if err != nil {
		t.Fatalf("reference: list %s: %v", dir, err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".parquet") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names) // byte order
	for _, name := range names {
		ev, rej := refReadFile(t, filepath.Join(dir, name), day, name)
		events = append(events, ev...)
		rejected += rej
	}
	return events, rejected
}

func refReadFile(t testing.TB, path, day, name string) (events []refEvent, rejected int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("reference: open %s: %v", path, err)
	}
	defer f.Close()
	mem := memory.NewGoAllocator()
	tbl, err := pqarrow.ReadTable(context.Background(), f, parquet.NewReaderProperties(mem), pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		t.Fatalf("reference: %s is not readable Parquet: %v", path, err)
	}
	defer tbl.Release()
	n := int(tbl.NumRows())

	required := func(col string) ([]refCell, arrow.DataType) {
		cells, dt, ok := refColumnCells(tbl, col)
		if !ok {
			t.Fatalf("reference: %s lacks required column %s", path, col)
		}
		return cells, dt
	}
	optional := func(col string) []refCell {
		cells, _, ok := refColumnCells(tbl, col)
		if !ok {
			return nil // missing nullable column reads as nulls
		}
		return cells
	}
	strAt := func(col string, cells []refCell, i int) *string {
		if cells == nil {
			return nil
		}
		v, ok := refStringAt(cells[i].arr, cells[i].idx)
		if !ok {
			t.Fatalf("reference: %s column %s has type %s, want string", path, col, cells[i].arr.DataType())
		}
		return v
	}

	eventID, eidType := required("event_id")
	eventTS, tsType := required("event_ts")
	required("schema_version") // informative only
	userID, uidType := required("user_id")
	eventType, etType := required("event_type")
	if !refIsStringType(eidType) {
		t.Fatalf("reference: %s column event_id has type %s, want string", path, eidType)
	}
	if _, ok := tsType.(*arrow.TimestampType); !ok {
		t.Fatalf("reference: %s column event_ts has type %s, want timestamp", path, tsType)
	}
	if !refIsStringType(etType) {
		t.Fatalf("reference: %s column event_type has type %s, want string", path, etType)
	}
	var v1 bool
	switch {
	case refIsIntType(uidType):
		v1 = true
	case refIsStringType(uidType):
		v1 = false
	default:
		t.Fatalf("reference: %s column user_id has type %s, want integer (v1) or string (v2)", path, uidType)
	}
	channel := optional("channel")
	amount := optional("amount_cents")
	country := optional("country")
	if amount != nil && !refIsIntType(amount[0].arr.DataType()) {
		t.Fatalf("reference: %s column amount_cents has type %s, want integer", path, amount[0].arr.DataType())
	}

	for i := 0; i < n; i++ {
		eid := strAt("event_id", eventID, i)
		ts, _ := refTimestampMicrosAt(eventTS[i].arr, eventTS[i].idx)
		typ := strAt("event_type", eventType, i)

		var customer string
		userOK := false
		if v1 {
			u, _ := refIntAt(userID[i].arr, userID[i].idx)
			if u != nil {
				customer, userOK = refV1Customer(*u), true
			}
		} else {
			u := strAt("user_id", userID, i)
			if u != nil && refUUIDRe.MatchString(*u) {
				customer, userOK = strings.ToLower(*u), true
			}
		}
		typeOK := typ != nil && (*typ == "touch" || *typ == "order" || *typ == "refund")
		if eid == nil || ts == nil || !userOK || !typeOK {
			rejected++
			continue
		}

		ev := refEvent{dt: day, file: name, pos: i, eventID: *eid, ts: *ts, customer: customer, typ: *typ}
		if ch := strAt("channel", channel, i); ch != nil && *ch != "direct" {
			ev.channel = ch
		}
		if amount != nil {
			if a, _ := refIntAt(amount[i].arr, amount[i].idx); a != nil {
				ev.amount = *a
			}
		}
		ev.country = strAt("country", country, i)
		events = append(events, ev)
	}
	return events, rejected
}

func refAddDays(t testing.TB, day string, n int) string {
	t.Helper()
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		t.Fatalf("reference: bad day %q", day)
	}
	return d.AddDate(0, 0, n).Format(time.DateOnly)
}

func refDayStartMicros(t testing.TB, day string) int64 {
	t.Helper()
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		t.Fatalf("reference: bad day %q", day)
	}
	return d.UTC().UnixMicro()
}

// refLess compares by position in the source: (dt, file, pos).
func refSourceLess(a, b refEvent) bool {
	if a.dt != b.dt {
		return a.dt < b.dt
	}
	if a.file != b.file {
		return a.file < b.file
	}
	return a.pos < b.pos
}

// refCountryOf picks the country of the latest event with a non-null country
// (latest ts, ties smallest event_id, then first in source order); nil if none.
func refCountryOf(events []refEvent) *string {
	var best *refEvent
	for i := range events {
		e := &events[i]
		if e.country == nil {
			continue
		}
		if best == nil ||
			e.ts > best.ts ||
			(e.ts == best.ts && e.eventID < best.eventID) ||
			(e.ts == best.ts && e.eventID == best.eventID && refSourceLess(*e, *best)) {
			best = e
		}
	}
	if best == nil {
		return nil
	}
	c := *best.country
	return &c
}

// referenceCompute reads the source folder sourceDir (layout: sourceDir/dt=YYYY-MM-DD/*.parquet)
// and returns the rows of partition `day` (YYYY-MM-DD) under logic "legacy" or "corrected",
// sorted by (CustomerID, Channel) in byte order. Missing day folders (including lookback days) count as empty.
// It also returns the number of rejected rows of `day` itself.
func referenceCompute(t testing.TB, sourceDir, day, logic string) (rows []refRow, rejectedOfDay int) {
	t.Helper()
	switch logic {
	case "legacy":
		events, rej := refReadDay(t, sourceDir, day)
		rows = refLegacy(day, events)
		rejectedOfDay = rej
	case "corrected":
		var all []refEvent
		for k := 7; k >= 0; k-- {
			d := refAddDays(t, day, -k)
			ev, rej := refReadDay(t, sourceDir, d)
			all = append(all, ev...)
			if k == 0 {
				rejectedOfDay = rej
			}
		}
		rows = refCorrected(t, day, all)
	default:
		t.Fatalf("reference: unknown logic %q", logic)
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].CustomerID != rows[j].CustomerID {
			return rows[i].CustomerID < rows[j].CustomerID
		}
		return rows[i].Channel < rows[j].Channel
	})
	return rows, rejectedOfDay
}

func refLegacy(day string, events []refEvent) []refRow {
	byCustomer := map[string][]refEvent{}
	for _, e := range events {
		byCustomer[e.customer] = append(byCustomer[e.customer], e)
	}
	var rows []refRow
	for customer, evs := range byCustomer {
		var orders, gross int64
		for _, e := range evs {
			if e.typ == "order" {
				orders++
				gross += e.amount
			}
		}
		if orders == 0 {
			continue // refunds ignored; refunds-only customers get no row
		}
		// Earliest touch (smallest ts, ties smallest event_id, then source order).
		var first *refEvent
		for i := range evs {
			e := &evs[i]
			if e.typ != "touch" {
				continue
			}
			if first == nil ||
				e.ts < first.ts ||
				(e.ts == first.ts && e.eventID < first.eventID) ||
				(e.ts == first.ts && e.eventID == first.eventID && refSourceLess(*e, *first)) {
				first = e
			}
		}
		channel := "direct"
		if first != nil && first.channel != nil {
			channel = *first.channel
		}
		rows = append(rows, refRow{
			EventDate:  day,
			CustomerID: customer,
			Channel:    channel,
			Orders:     orders,
			Gross:      gross,
			Refund:     0,
			Net:        gross,
			Country:    refCountryOf(evs),
		})
	}
	return rows
}

func refCorrected(t testing.TB, day string, all []refEvent) []refRow {
	t.Helper()
	// 1. De-duplicate by event_id across everything read.
	groups := map[string][]refEvent{}
	var ids []string
	for _, e := range all {
		if _, seen := groups[e.eventID]; !seen {
			ids = append(ids, e.eventID)
		}
		groups[e.eventID] = append(groups[e.eventID], e)
	}
	keptBefore := func(a, b refEvent) bool { // does copy a win over copy b?
		if a.ts != b.ts {
			return a.ts < b.ts
		}
		aD, bD := a.dt == day, b.dt == day
		if aD != bD {
			return aD
		}
		return refSourceLess(a, b) // earliest dt, then file name, then row position
	}
	var touches []refEvent   // kept touches of any dt in D−7..D
	var dayEvents []refEvent // kept, not dropped events whose kept copy is in dt=D
	var counted []refEvent   // kept, not dropped orders and refunds of dt=D
	for _, id := range ids {
		copies := groups[id]
		kept := copies[0]
		inLookback := false
		for _, c := range copies {
			if keptBefore(c, kept) {
				kept = c
			}
			if c.dt != day {
				inLookback = true
			}
		}
		if kept.typ == "touch" {
			touches = append(touches, kept)
		}
		if kept.dt != day {
			continue // lookback event: only its touch matters
		}
		if (kept.typ == "order" || kept.typ == "refund") && inLookback {
			continue // counted on an earlier day
		}
		dayEvents = append(dayEvents, kept)
		if kept.typ == "order" || kept.typ == "refund" {
			counted = append(counted, kept)
		}
	}

	// 2–3. Attribution and aggregation.
	type key struct{ customer, channel string }
	type agg struct {
		orders, gross, refund int64
		diffSum               int64
		diffN                 int64
	}
	aggs := map[key]*agg{}
	for _, e := range counted {
		var best *refEvent
		for i := range touches {
			tc := &touches[i]
			if tc.customer != e.customer || tc.channel == nil {
				continue
			}
			if !(e.ts-refWindow < tc.ts && tc.ts <= e.ts) {
				continue
			}
			if best == nil || tc.ts > best.ts || (tc.ts == best.ts && tc.eventID < best.eventID) {
				best = tc
			}
		}
		channel := "direct"
		if best != nil {
			channel = *best.channel
		}
		k := key{e.customer, channel}
		a := aggs[k]
		if a == nil {
			a = &agg{}
			aggs[k] = a
		}
		switch e.typ {
		case "order":
			a.orders++
			a.gross += e.amount
			if best != nil {
				a.diffSum += e.ts - best.ts
				a.diffN++
			}
		case "refund":
			a.refund += e.amount
		}
	}

	// 4. Features and country, per customer.
	winStart := refDayStartMicros(t, refAddDays(t, day, -6))
	winEnd := refDayStartMicros(t, refAddDays(t, day, 1))
	var rows []refRow
	for k, a := range aggs {
		var n int64
		distinct := map[string]bool{}
		for _, tc := range touches {
			if tc.customer != k.customer || tc.ts < winStart || tc.ts >= winEnd {
				continue
			}
			n++
			if tc.channel != nil {
				distinct[*tc.channel] = true
			}
		}
		var mine []refEvent
		for _, e := range dayEvents {
			if e.customer == k.customer {
				mine = append(mine, e)
			}
		}
		touches7d := n
		dc := int32(len(distinct))
		row := refRow{
			EventDate:          day,
			CustomerID:         k.customer,
			Channel:            k.channel,
			Orders:             a.orders,
			Gross:              a.gross,
			Refund:             a.refund,
			Net:                a.gross - a.refund,
			Country:            refCountryOf(mine),
			Touches7d:          &touches7d,
			DistinctChannels7d: &dc,
		}
		if a.diffN > 0 {
			avg := float64(a.diffSum) / (float64(a.diffN) * float64(refMicrosPerHour))
			row.AvgHoursToConvert = &avg
		}
		rows = append(rows, row)
	}
	return rows
}

// ---------------------------------------------------------------------------
// Writing tiny test inputs.

// refInput is one source row for writeRefParquet. A file is v1 (int64 user_id)
// when its rows have SchemaVersion 1, else v2 (string user_id).
type refInput struct {
	EventID       string
	TS            int64 // µs since epoch, UTC
	SchemaVersion int32 // 1 or 2 (0 means 2)
	UserInt       int64 // v1 user_id
	User          string
	EventType     string
	Channel       *string
	OrderID       *string
	Amount        *int64
	Country       *string
	// Nulls in required columns (to exercise rejects).
	NullEventID, NullTS, NullUser, NullEventType bool
}

// writeRefParquet writes rows as one Parquet file at path (creating folders).
func writeRefParquet(t testing.TB, path string, rows []refInput) {
	t.Helper()
	writeRefParquetOpts(t, path, rows, refWriteOpts{})
}

type refWriteOpts struct {
	omit       map[string]bool // nullable columns to leave out
	dictionary bool            // write string columns as dictionary<int32, utf8> (arrow schema stored)
}

func writeRefParquetOpts(t testing.TB, path string, rows []refInput, o refWriteOpts) {
	t.Helper()
	v1 := len(rows) > 0 && rows[0].SchemaVersion == 1
	for _, r := range rows {
		if (r.SchemaVersion == 1) != v1 {
			t.Fatalf("writeRefParquet: rows of %s mix schema versions", path)
		}
	}
	anyNull := func(f func(refInput) bool) bool {
		for _, r := range rows {
			if f(r) {
				return true
			}
		}
		return false
	}
	strType := arrow.DataType(arrow.BinaryTypes.String)
	if o.dictionary {
		strType = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
	}
	userType := strType
	if v1 {
		userType = arrow.PrimitiveTypes.Int64
	}
	fields := []arrow.Field{
		{Name: "event_id", Type: strType, Nullable: anyNull(func(r refInput) bool { return r.NullEventID })},
		{Name: "event_ts", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: anyNull(func(r refInput) bool { return r.NullTS })},
		{Name: "schema_version", Type: arrow.PrimitiveTypes.Int32},
		{Name: "user_id", Type: userType, Nullable: anyNull(func(r refInput) bool { return r.NullUser })},
		{Name: "event_type", Type: strType, Nullable: anyNull(func(r refInput) bool { return r.NullEventType })},
	}
	for _, name := range []string{"channel", "order_id", "amount_cents", "country"} {
		if o.omit[name] {
			continue
		}
		typ := strType
		if name == "amount_cents" {
			typ = arrow.PrimitiveTypes.Int64
		}
		fields = append(fields, arrow.Field{Name: name, Type: typ, Nullable: true})
	}
	schema := arrow.NewSchema(fields, nil)
	mem := memory.NewGoAllocator()
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()

	appendStr := func(fb array.Builder, v *string) {
		if v == nil {
			fb.AppendNull()
			return
		}
		switch x := fb.(type) {
		case *array.StringBuilder:
			x.Append(*v)
		case *array.BinaryDictionaryBuilder:
			if err := x.AppendString(*v); err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatalf("writeRefParquet: unexpected builder %T", fb)
		}
	}
	ptr := func(s string, null bool) *string {
		if null {
			return nil
		}
		return &s
	}
	for _, r := range rows {
		for fi, f := range schema.Fields() {
			fb := b.Field(fi)
			switch f.Name {
			case "event_id":
				appendStr(fb, ptr(r.EventID, r.NullEventID))
			case "event_ts":
				if r.NullTS {
					fb.AppendNull()
				} else {
					fb.(*array.TimestampBuilder).Append(arrow.Timestamp(r.TS))
				}
			case "schema_version":
				sv := r.SchemaVersion
				if sv == 0 {
					sv = 2
				}
				fb.(*array.Int32Builder).Append(sv)
			case "user_id":
				switch {
				case r.NullUser:
					fb.AppendNull()
				case v1:
					fb.(*array.Int64Builder).Append(r.UserInt)
				default:
					appendStr(fb, &r.User)
				}
			case "event_type":
				appendStr(fb, ptr(r.EventType, r.NullEventType))
			case "channel":
				appendStr(fb, r.Channel)
			case "order_id":
				appendStr(fb, r.OrderID)
			case "country":
				appendStr(fb, r.Country)
			case "amount_cents":
				if r.Amount == nil {
					fb.AppendNull()
				} else {
					fb.(*array.Int64Builder).Append(*r.Amount)
				}
			}
		}
	}
	rec := b.NewRecordBatch()
	defer rec.Release()

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w, err := pqarrow.NewFileWriter(schema, out, parquet.NewWriterProperties(), pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil { // also closes out
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// Tests of the reference itself (expected values worked out by hand from the spec).

func refS(s string) *string   { return &s }
func refI(v int64) *int64     { return &v }
func refI32(v int32) *int32   { return &v }
func refF(v float64) *float64 { return &v }

// refTS parses an RFC 3339 time (UTC) into µs since epoch.
func refTS(t testing.TB, s string) int64 {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMicro()
}

const (
	refCustA = "aaaaaaaa-0000-4000-8000-000000000001"
	refCustB = "bbbbbbbb-0000-4000-8000-000000000002"
	refCustC = "cccccccc-0000-4000-8000-000000000003"
	refCustD = "dddddddd-0000-4000-8000-000000000004"
)

func refTouch(t testing.TB, id, ts, user string, channel *string) refInput {
	return refInput{EventID: id, TS: refTS(t, ts), User: user, EventType: "touch", Channel: channel}
}

func refOrder(t testing.TB, id, ts, user string, amount int64) refInput {
	return refInput{EventID: id, TS: refTS(t, ts), User: user, EventType: "order", OrderID: refS("o-" + id), Amount: refI(amount)}
}

func refRefund(t testing.TB, id, ts, user string, amount int64) refInput {
	return refInput{EventID: id, TS: refTS(t, ts), User: user, EventType: "refund", OrderID: refS("o-" + id), Amount: refI(amount)}
}

func refWithCountry(r refInput, c string) refInput { r.Country = &c; return r }

func refFmtRows(rows []refRow) string {
	var sb strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&sb, "  %s %s %-12s o=%d g=%d r=%d n=%d", r.EventDate, r.CustomerID, r.Channel, r.Orders, r.Gross, r.Refund, r.Net)
		if r.Country != nil {
			fmt.Fprintf(&sb, " country=%q", *r.Country)
		} else {
			sb.WriteString(" country=nil")
		}
		if r.Touches7d != nil {
			fmt.Fprintf(&sb, " t7=%d", *r.Touches7d)
		} else {
			sb.WriteString(" t7=nil")
		}
		if r.DistinctChannels7d != nil {
			fmt.Fprintf(&sb, " dc7=%d", *r.DistinctChannels7d)
		} else {
			sb.WriteString(" dc7=nil")
		}
		if r.AvgHoursToConvert != nil {
			fmt.Fprintf(&sb, " avg=%v", *r.AvgHoursToConvert)
		} else {
			sb.WriteString(" avg=nil")
		}
		sb.WriteString("\n")
	}
	return sb.String()
}

func refCheck(t *testing.T, src, day, logic string, wantRows []refRow, wantRejected int) {
	t.Helper()
	got, rej := referenceCompute(t, src, day, logic)
	if rej != wantRejected {
		t.Errorf("%s %s: rejected = %d, want %d", logic, day, rej, wantRejected)
	}
	if len(got) == 0 && len(wantRows) == 0 {
		return
	}
	if !reflect.DeepEqual(got, wantRows) {
		t.Errorf("%s %s rows:\ngot:\n%swant:\n%s", logic, day, refFmtRows(got), refFmtRows(wantRows))
	}
}

func TestReferenceUUIDv5(t *testing.T) {
	// Expected values computed independently with Python:
	//   python3 -c "import uuid;print(uuid.uuid5(uuid.NAMESPACE_URL,'urn:clv:user:42'))"
	cases := []struct {
		user int64
		want string
	}{
		{42, "dcedccc5-b77a-5478-8896-cecf3531a00e"},
		{-7, "549a09ff-7a59-50f3-acab-6fc2d22822b3"},
		{0, "ba12e379-8a6e-596c-8dbb-530d3e65ff28"},
	}
	for _, c := range cases {
		if got := refV1Customer(c.user); got != c.want {
			t.Errorf("v1 customer of %d = %s, want %s", c.user, got, c.want)
		}
	}
}

func TestReferenceLegacyEarliestTouch(t *testing.T) {
	src := t.TempDir()
	D := "2024-03-10"
	writeRefParquet(t, filepath.Join(src, "dt="+D, "part-0.parquet"), []refInput{
		// A: order at 09:00 before the day's first touch (email at 10:00).
		refOrder(t, "a-o1", "2024-03-10T09:00:00Z", refCustA, 100),
		refTouch(t, "a-t1", "2024-03-10T10:00:00Z", refCustA, refS("email")),
		refTouch(t, "a-t2", "2024-03-10T11:00:00Z", refCustA, refS("social")),
		refOrder(t, "a-o2", "2024-03-10T12:00:00Z", refCustA, 50),
		refOrder(t, "a-o2", "2024-03-10T12:00:00Z", refCustA, 50), // exact duplicate
		refRefund(t, "a-r1", "2024-03-10T13:00:00Z", refCustA, 30),
		// B: earliest touch has a null channel -> direct, later social ignored.
		refTouch(t, "b-t1", "2024-03-10T01:00:00Z", refCustB, nil),
		refTouch(t, "b-t2", "2024-03-10T02:00:00Z", refCustB, refS("social")),
		refWithCountry(refOrder(t, "b-o1", "2024-03-10T03:00:00Z", refCustB, 70), "DE"),
		// C: earliest touch is literally "direct" -> direct.
		refTouch(t, "c-t1", "2024-03-10T01:00:00Z", refCustC, refS("direct")),
		refTouch(t, "c-t2", "2024-03-10T02:00:00Z", refCustC, refS("email")),
		refOrder(t, "c-o1", "2024-03-10T03:00:00Z", refCustC, 10),
		// D: refunds only -> no legacy row.
		refTouch(t, "d-t1", "2024-03-10T01:00:00Z", refCustD, refS("email")),
		refRefund(t, "d-r1", "2024-03-10T03:00:00Z", refCustD, 10),
	})
	refCheck(t, src, D, "legacy", []refRow{
		{EventDate: D, CustomerID: refCustA, Channel: "email", Orders: 3, Gross: 200, Refund: 0, Net: 200},
		{EventDate: D, CustomerID: refCustB, Channel: "direct", Orders: 1, Gross: 70, Net: 70, Country: refS("DE")},
		{EventDate: D, CustomerID: refCustC, Channel: "direct", Orders: 1, Gross: 10, Net: 10},
	}, 0)
	// Same day under the corrected logic (no lookback folders exist).
	refCheck(t, src, D, "corrected", []refRow{
		// a-o1 at 09:00: no touch at or before it -> direct.
		{EventDate: D, CustomerID: refCustA, Channel: "direct", Orders: 1, Gross: 100, Net: 100, Touches7d: refI(2), DistinctChannels7d: refI32(2)},
		// a-o2 (deduplicated) and a-r1 -> social (11:00), 1 hour to convert.
		{EventDate: D, CustomerID: refCustA, Channel: "social", Orders: 1, Gross: 50, Refund: 30, Net: 20, Touches7d: refI(2), DistinctChannels7d: refI32(2), AvgHoursToConvert: refF(1)},
		{EventDate: D, CustomerID: refCustB, Channel: "social", Orders: 1, Gross: 70, Net: 70, Country: refS("DE"), Touches7d: refI(2), DistinctChannels7d: refI32(1), AvgHoursToConvert: refF(1)},
		{EventDate: D, CustomerID: refCustC, Channel: "email", Orders: 1, Gross: 10, Net: 10, Touches7d: refI(2), DistinctChannels7d: refI32(1), AvgHoursToConvert: refF(1)},
		// Refunds-only customer gets a row in the corrected logic.
		{EventDate: D, CustomerID: refCustD, Channel: "email", Orders: 0, Gross: 0, Refund: 10, Net: -10, Touches7d: refI(1), DistinctChannels7d: refI32(1)},
	}, 0)
}

func TestReferenceCorrectedWindowEdge(t *testing.T) {
	src := t.TempDir()
	D := "2024-03-10"
	// Lookback day D-7 = 2024-03-03.
	writeRefParquet(t, filepath.Join(src, "dt=2024-03-03", "a.parquet"), []refInput{
		// A: only touch exactly 7 days before the order -> out -> direct.
		refTouch(t, "a-t1", "2024-03-03T12:00:00Z", refCustA, refS("email")),
		// B: touch exactly 7 days before (out) and 1 µs inside (in).
		refTouch(t, "b-t1", "2024-03-03T12:00:00Z", refCustB, refS("email")),
		refTouch(t, "b-t2", "2024-03-03T12:00:00.000001Z", refCustB, refS("social")),
		// C: touch 1 µs before the features window (attributable but has a null channel).
		refTouch(t, "c-t0", "2024-03-03T23:59:59.999999Z", refCustC, nil),
	})
	writeRefParquet(t, filepath.Join(src, "dt=2024-03-04", "a.parquet"), []refInput{
		// C: touch exactly at the start of the features window [D-6 00:00, D+1 00:00).
		refTouch(t, "c-t1", "2024-03-04T00:00:00Z", refCustC, refS("display")),
	})
	writeRefParquet(t, filepath.Join(src, "dt="+D, "a.parquet"), []refInput{
		refOrder(t, "a-o1", "2024-03-10T12:00:00Z", refCustA, 100),
		refOrder(t, "b-o1", "2024-03-10T12:00:00Z", refCustB, 200),
		refOrder(t, "c-o1", "2024-03-10T12:00:00Z", refCustC, 300),
		// C: a late touch stamped exactly D+1 00:00 (after the order; outside the window).
		refTouch(t, "c-t2", "2024-03-11T00:00:00Z", refCustC, refS("affiliate")),
	})
	refCheck(t, src, D, "corrected", []refRow{
		{EventDate: D, CustomerID: refCustA, Channel: "direct", Orders: 1, Gross: 100, Net: 100, Touches7d: refI(0), DistinctChannels7d: refI32(0)},
		{EventDate: D, CustomerID: refCustB, Channel: "social", Orders: 1, Gross: 200, Net: 200, Touches7d: refI(0), DistinctChannels7d: refI32(0),
			AvgHoursToConvert: refF(float64(604_799_999_999) / 3_600_000_000)},
		// 2024-03-04 00:00 -> 2024-03-10 12:00 = 6.5 days = 156 hours.
		{EventDate: D, CustomerID: refCustC, Channel: "display", Orders: 1, Gross: 300, Net: 300, Touches7d: refI(1), DistinctChannels7d: refI32(1), AvgHoursToConvert: refF(156)},
	}, 0)
	// Legacy reads only dt=D: A and B have no touch there; C's only D touch comes
	// after the order but is still the earliest touch of the day.
	refCheck(t, src, D, "legacy", []refRow{
		{EventDate: D, CustomerID: refCustA, Channel: "direct", Orders: 1, Gross: 100, Net: 100},
		{EventDate: D, CustomerID: refCustB, Channel: "direct", Orders: 1, Gross: 200, Net: 200},
		{EventDate: D, CustomerID: refCustC, Channel: "affiliate", Orders: 1, Gross: 300, Net: 300},
	}, 0)
}

func TestReferenceDuplicatesAndRedelivery(t *testing.T) {
	src := t.TempDir()
	D1, D := "2024-03-09", "2024-03-10"
	writeRefParquet(t, filepath.Join(src, "dt="+D1, "a.parquet"), []refInput{
		refTouch(t, "a-t1", "2024-03-09T08:00:00Z", refCustA, refS("email")),
		refWithCountry(refOrder(t, "a-o1", "2024-03-09T09:00:00Z", refCustA, 100), "FR"),
	})
	// dt=D-8 is outside the lookback of D: its re-delivered order counts again on D.
	writeRefParquet(t, filepath.Join(src, "dt=2024-03-02", "a.parquet"), []refInput{
		refOrder(t, "b-o0", "2024-03-02T09:00:00Z", refCustB, 5),
	})
	writeRefParquet(t, filepath.Join(src, "dt="+D, "a.parquet"), []refInput{
		// Re-delivery of a-o1 (same row) -> dropped on D.
		refWithCountry(refOrder(t, "a-o1", "2024-03-09T09:00:00Z", refCustA, 100), "FR"),
		refWithCountry(refOrder(t, "a-o2", "2024-03-10T09:00:00Z", refCustA, 40), "IT"),
		refWithCountry(refOrder(t, "a-o2", "2024-03-10T09:00:00Z", refCustA, 40), "IT"), // dup inside the day
		refOrder(t, "b-o0", "2024-03-02T09:00:00Z", refCustB, 5),
		// C: only a re-delivered order -> no corrected row on D.
		refOrder(t, "c-o1", "2024-03-10T07:00:00Z", refCustC, 9),
	})
	writeRefParquet(t, filepath.Join(src, "dt="+D1, "b.parquet"), []refInput{
		// c-o1 first delivered on D-1 with a later event_ts than its D copy: the D
		// copy is kept, but the event_id occurs in the lookback -> dropped.
		refOrder(t, "c-o1", "2024-03-10T08:00:00Z", refCustC, 9),
	})

	refCheck(t, src, D1, "corrected", []refRow{
		{EventDate: D1, CustomerID: refCustA, Channel: "email", Orders: 1, Gross: 100, Net: 100, Country: refS("FR"), Touches7d: refI(1), DistinctChannels7d: refI32(1), AvgHoursToConvert: refF(1)},
		{EventDate: D1, CustomerID: refCustC, Channel: "direct", Orders: 1, Gross: 9, Net: 9, Touches7d: refI(0), DistinctChannels7d: refI32(0)},
	}, 0)
	refCheck(t, src, D, "corrected", []refRow{
		// a-o2 once; a-o1 dropped. Touch a-t1 (D-1 08:00) is in the 7-day window: 25 h.
		{EventDate: D, CustomerID: refCustA, Channel: "email", Orders: 1, Gross: 40, Net: 40, Country: refS("IT"), Touches7d: refI(1), DistinctChannels7d: refI32(1), AvgHoursToConvert: refF(25)},
		{EventDate: D, CustomerID: refCustB, Channel: "direct", Orders: 1, Gross: 5, Net: 5, Touches7d: refI(0), DistinctChannels7d: refI32(0)},
	}, 0)
	refCheck(t, src, D, "legacy", []refRow{
		{EventDate: D, CustomerID: refCustA, Channel: "direct", Orders: 3, Gross: 180, Net: 180, Country: refS("IT")},
		{EventDate: D, CustomerID: refCustB, Channel: "direct", Orders: 1, Gross: 5, Net: 5},
		{EventDate: D, CustomerID: refCustC, Channel: "direct", Orders: 1, Gross: 9, Net: 9},
	}, 0)
}

func TestReferenceTieBreaks(t *testing.T) {
	src := t.TempDir()
	D := "2024-03-10"
	writeRefParquet(t, filepath.Join(src, "dt=2024-03-07", "a.parquet"), []refInput{
		// B: same touch in D-3 (email) and D-2 (social), same ts -> earliest dt wins (email).
		refTouch(t, "b-t1", "2024-03-09T06:00:00Z", refCustB, refS("email")),
	})
	writeRefParquet(t, filepath.Join(src, "dt=2024-03-08", "a.parquet"), []refInput{
		refTouch(t, "b-t1", "2024-03-09T06:00:00Z", refCustB, refS("social")),
	})
	writeRefParquet(t, filepath.Join(src, "dt=2024-03-09", "a.parquet"), []refInput{
		// C: touch in D-1 and D with the same ts; the D copy wins, so its country
		// counts as a dt=D event.
		refWithCountry(refTouch(t, "c-t1", "2024-03-10T01:00:00Z", refCustC, refS("email")), "JP"),
	})
	writeRefParquet(t, filepath.Join(src, "dt="+D, "b.parquet"), []refInput{
		// D: order copy in b.parquet loses to a.parquet on equal ts (file name).
		refOrder(t, "d-o1", "2024-03-10T10:00:00Z", refCustD, 999),
		// D: order copy with an earlier ts wins even though it is in a later file.
		refOrder(t, "d-o2", "2024-03-10T09:00:00Z", refCustD, 20),
	})
	writeRefParquet(t, filepath.Join(src, "dt="+D, "a.parquet"), []refInput{
		// A: two touches at the same ts: smallest event_id (a-t1 = email) wins in
		// both logics. Country tie on ts: smallest event_id (a-e1 = CA).
		refTouch(t, "a-t2", "2024-03-10T05:00:00Z", refCustA, refS("social")),
		refTouch(t, "a-t1", "2024-03-10T05:00:00Z", refCustA, refS("email")),
		refWithCountry(refOrder(t, "a-e2", "2024-03-10T06:00:00Z", refCustA, 1), "US"),
		refWithCountry(refOrder(t, "a-e1", "2024-03-10T06:00:00Z", refCustA, 2), "CA"),
		refOrder(t, "b-o1", "2024-03-10T06:00:00Z", refCustB, 3),
		refWithCountry(refTouch(t, "c-t1", "2024-03-10T01:00:00Z", refCustC, refS("email")), "JP"),
		refOrder(t, "c-o1", "2024-03-10T02:00:00Z", refCustC, 4),
		refOrder(t, "d-o1", "2024-03-10T10:00:00Z", refCustD, 10),
		refOrder(t, "d-o2", "2024-03-10T11:00:00Z", refCustD, 999),
	})
	refCheck(t, src, D, "corrected", []refRow{
		{EventDate: D, CustomerID: refCustA, Channel: "email", Orders: 2, Gross: 3, Net: 3, Country: refS("CA"), Touches7d: refI(2), DistinctChannels7d: refI32(2), AvgHoursToConvert: refF(1)},
		// b-t1 kept from dt=2024-03-07 (email); 24 h to convert.
		{EventDate: D, CustomerID: refCustB, Channel: "email", Orders: 1, Gross: 3, Net: 3, Touches7d: refI(1), DistinctChannels7d: refI32(1), AvgHoursToConvert: refF(24)},
		{EventDate: D, CustomerID: refCustC, Channel: "email", Orders: 1, Gross: 4, Net: 4, Country: refS("JP"), Touches7d: refI(1), DistinctChannels7d: refI32(1), AvgHoursToConvert: refF(1)},
		{EventDate: D, CustomerID: refCustD, Channel: "direct", Orders: 2, Gross: 30, Net: 30, Touches7d: refI(0), DistinctChannels7d: refI32(0)},
	}, 0)
	refCheck(t, src, D, "legacy", []refRow{
		{EventDate: D, CustomerID: refCustA, Channel: "email", Orders: 2, Gross: 3, Net: 3, Country: refS("CA")},
		{EventDate: D, CustomerID: refCustB, Channel: "direct", Orders: 1, Gross: 3, Net: 3},
		{EventDate: D, CustomerID: refCustC, Channel: "email", Orders: 1, Gross: 4, Net: 4, Country: refS("JP")},
		{EventDate: D, CustomerID: refCustD, Channel: "direct", Orders: 4, Gross: 2028, Net: 2028},
	}, 0)
}

func TestReferenceRejectsAndVersions(t *testing.T) {
	src := t.TempDir()
	D := "2024-03-10"
	v1Cust := "dcedccc5-b77a-5478-8896-cecf3531a00e" // UUIDv5 of urn:clv:user:42
	// v1 file: user 42 touches via email.
	writeRefParquet(t, filepath.Join(src, "dt="+D, "v1.parquet"), []refInput{
		{EventID: "v1-t1", TS: refTS(t, "2024-03-10T01:00:00Z"), SchemaVersion: 1, UserInt: 42, EventType: "touch", Channel: refS("email")},
		{EventID: "v1-bad", TS: refTS(t, "2024-03-10T01:00:00Z"), SchemaVersion: 1, NullUser: true, EventType: "touch"},
	})
	// v2 file of the same day: the same customer in upper case orders.
	writeRefParquet(t, filepath.Join(src, "dt="+D, "v2.parquet"), []refInput{
		refOrder(t, "v2-o1", "2024-03-10T03:00:00Z", strings.ToUpper(v1Cust), 500),
		{EventID: "x1", TS: refTS(t, "2024-03-10T03:00:00Z"), User: refCustA, EventType: "click"},
		{EventID: "x2", TS: refTS(t, "2024-03-10T03:00:00Z"), User: "not-a-uuid", EventType: "order", Amount: refI(1)},
		{EventID: "x3", NullTS: true, User: refCustA, EventType: "order", Amount: refI(1)},
		{NullEventID: true, TS: refTS(t, "2024-03-10T03:00:00Z"), User: refCustA, EventType: "order", Amount: refI(1)},
		{EventID: "x5", TS: refTS(t, "2024-03-10T03:00:00Z"), User: refCustA, NullEventType: true},
		{EventID: "x6", TS: refTS(t, "2024-03-10T03:00:00Z"), User: "{" + refCustA + "}", EventType: "order", Amount: refI(1)},
	})
	// A file without the nullable columns: amount reads as null -> 0.
	writeRefParquetOpts(t, filepath.Join(src, "dt="+D, "v3.parquet"), []refInput{
		{EventID: "b-o1", TS: refTS(t, "2024-03-10T04:00:00Z"), User: refCustB, EventType: "order"},
	}, refWriteOpts{omit: map[string]bool{"channel": true, "order_id": true, "amount_cents": true, "country": true}})
	// Dictionary-encoded string columns (arrow schema stored -> read back as dictionaries).
	writeRefParquetOpts(t, filepath.Join(src, "dt="+D, "v4.parquet"), []refInput{
		refTouch(t, "c-t1", "2024-03-10T01:00:00Z", refCustC, refS("social")),
		refWithCountry(refOrder(t, "c-o1", "2024-03-10T01:30:00Z", refCustC, 7), "NL"),
		{EventID: "c-x", TS: refTS(t, "2024-03-10T01:00:00Z"), User: refCustC, EventType: "Touch"}, // case matters
	}, refWriteOpts{dictionary: true})
	// Rejected rows of a lookback day are not counted for D.
	writeRefParquet(t, filepath.Join(src, "dt=2024-03-09", "a.parquet"), []refInput{
		{EventID: "y1", TS: refTS(t, "2024-03-09T03:00:00Z"), User: refCustA, EventType: "view"},
	})

	refCheck(t, src, D, "corrected", []refRow{
		{EventDate: D, CustomerID: refCustB, Channel: "direct", Orders: 1, Gross: 0, Net: 0, Touches7d: refI(0), DistinctChannels7d: refI32(0)},
		{EventDate: D, CustomerID: refCustC, Channel: "social", Orders: 1, Gross: 7, Net: 7, Country: refS("NL"), Touches7d: refI(1), DistinctChannels7d: refI32(1), AvgHoursToConvert: refF(0.5)},
		{EventDate: D, CustomerID: v1Cust, Channel: "email", Orders: 1, Gross: 500, Net: 500, Touches7d: refI(1), DistinctChannels7d: refI32(1), AvgHoursToConvert: refF(2)},
	}, 8)
	refCheck(t, src, D, "legacy", []refRow{
		{EventDate: D, CustomerID: refCustB, Channel: "direct", Orders: 1, Gross: 0, Net: 0},
		{EventDate: D, CustomerID: refCustC, Channel: "social", Orders: 1, Gross: 7, Net: 7, Country: refS("NL")},
		{EventDate: D, CustomerID: v1Cust, Channel: "email", Orders: 1, Gross: 500, Net: 500},
	}, 8)
	if _, rej := referenceCompute(t, src, "2024-03-09", "legacy"); rej != 1 {
		t.Errorf("rejected of 2024-03-09 = %d, want 1", rej)
	}

	// The dictionary path of the reader is really exercised.
	f, err := os.Open(filepath.Join(src, "dt="+D, "v4.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem := memory.NewGoAllocator()
	tbl, err := pqarrow.ReadTable(context.Background(), f, parquet.NewReaderProperties(mem), pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	for _, name := range []string{"event_id", "user_id", "channel"} {
		if _, typ, _ := refColumnCells(tbl, name); typ.ID() != arrow.DICTIONARY {
			t.Errorf("v4.parquet column %s read back as %s, want a dictionary", name, typ)
		}
	}
}
