package features

import (
	"sort"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ev is one hand-written source row. user is int64 (a v1 file) or string
// (a v2 file); "" for ch/ctry and -1 for amt mean null.
type ev struct {
	dt, file, id, ts string
	user             any
	typ, ch          string
	amt              int64
	ctry             string
}

const (
	nullStr = "\x00null"
	nullAmt = int64(-1)
)

func us(ts string) int64 {
	t, err := time.Parse("2006-01-02T15:04:05.999999Z07:00", ts)
	if err != nil {
		panic(err)
	}
	return t.UnixMicro()
}

func sourceSchema(v1 bool) *arrow.Schema {
	var uid arrow.DataType = arrow.BinaryTypes.String
	if v1 {
		uid = arrow.PrimitiveTypes.Int64
	}
	return arrow.NewSchema([]arrow.Field{
		{Name: ColEventID, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColEventTS, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		{Name: ColSchemaVersion, Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: ColUserID, Type: uid, Nullable: true},
		{Name: ColEventType, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColChannel, Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: ColAmountCents, Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: ColCountry, Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
}

func appendStr(b array.Builder, s string) {
	if s == nullStr {
		b.AppendNull()
	} else {
		b.(*array.StringBuilder).Append(s)
	}
}

// record builds one batch of rows that all share a schema version.
func record(rows []ev) arrow.RecordBatch {
	_, v1 := rows[0].user.(int64)
	b := array.NewRecordBuilder(memory.DefaultAllocator, sourceSchema(v1))
	defer b.Release()
	for _, r := range rows {
		appendStr(b.Field(0), r.id)
		if r.ts == nullStr {
			b.Field(1).AppendNull()
		} else {
			b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(us(r.ts)))
		}
		if v1 {
			b.Field(2).(*array.Int32Builder).Append(1)
		} else {
			b.Field(2).(*array.Int32Builder).Append(2)
		}
		switch u := r.user.(type) {
		case int64:
			b.Field(3).(*array.Int64Builder).Append(u)
		case string:
			appendStr(b.Field(3), u)
		case nil:
			b.Field(3).AppendNull()
		}
		appendStr(b.Field(4), r.typ)
		ch := r.ch
		if ch == "" {
			ch = nullStr
		}
		appendStr(b.Field(5), ch)
		if r.amt == nullAmt {
			b.Field(6).AppendNull()
		} else {
			b.Field(6).(*array.Int64Builder).Append(r.amt)
		}
		ctry := r.ctry
		if ctry == "" {
			ctry = nullStr
		}
		appendStr(b.Field(7), ctry)
	}
	return b.NewRecordBatch()
}

// buildDays decodes rows into days: files by name, rows in given order.
func buildDays(t testing.TB, rows []ev) map[Date]*Day {
	t.Helper()
	type fileKey struct{ dt, file string }
	byFile := map[fileKey][]ev{}
	for _, r := range rows {
		if r.file == "" {
			r.file = "part-0.parquet"
		}
		byFile[fileKey{r.dt, r.file}] = append(byFile[fileKey{r.dt, r.file}], r)
	}
	keys := make([]fileKey, 0, len(byFile))
	for k := range byFile {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].dt != keys[j].dt {
			return keys[i].dt < keys[j].dt
		}
		return keys[i].file < keys[j].file
	})
	builders := map[string]*DayBuilder{}
	for _, k := range keys {
		b := builders[k.dt]
		if b == nil {
			b = NewDayBuilder(MustParseDate(k.dt), 0)
			builders[k.dt] = b
		}
		b.StartFile(k.dt + "/" + k.file)
		rec := record(byFile[k])
		if err := b.Add(rec); err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}
	out := map[Date]*Day{}
	for dt, b := range builders {
		out[MustParseDate(dt)] = b.Finish()
	}
	return out
}

// row is one output row in comparable form.
type row struct {
	Customer, Channel     string
	Orders, Gross, Refund int64
	Country               string // "" = null
	Touches               int64
	Distinct              int32
	AvgHours              float64 // -1 = null
}

func rowsOf(o *Output) []row {
	var out []row
	for i := 0; i < o.Len(); i++ {
		r := row{Customer: o.CustomerID[i].String(), Channel: o.Channel[i], Orders: o.Orders[i],
			Gross: o.Gross[i], Refund: o.Refund[i], AvgHours: -1}
		if o.Net[i] != o.Gross[i]-o.Refund[i] {
			panic("net != gross - refund")
		}
		if o.CountryOK[i] {
			r.Country = o.Country[i]
		}
		if len(o.Touches7d) > 0 {
			r.Touches, r.Distinct = o.Touches7d[i], o.DistinctChannels7d[i]
			if o.AvgHoursOK[i] {
				r.AvgHours = o.AvgHours[i]
			}
		}
		out = append(out, r)
	}
	return out
}

func legacyRows(t *testing.T, day string, rows []ev) []row {
	t.Helper()
	days := buildDays(t, rows)
	d := days[MustParseDate(day)]
	if d == nil {
		d = NewDayBuilder(MustParseDate(day), 0).Finish()
	}
	return rowsOf(ComputeLegacy(d))
}

func correctedRows(t *testing.T, day string, rows []ev) []row {
	t.Helper()
	days := buildDays(t, rows)
	D := MustParseDate(day)
	d := days[D]
	if d == nil {
		d = NewDayBuilder(D, 0).Finish()
	}
	var lb []*Day
	for dt, x := range days {
		if dt >= D-LookbackDays && dt < D {
			lb = append(lb, x)
		}
	}
	out, err := ComputeCorrected(d, lb)
	if err != nil {
		t.Fatal(err)
	}
	return rowsOf(out)
}
