package features

import (
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// Logic names a version of the business logic. The version string goes into
// every checkpoint: changing what a logic computes must change its version,
// so resumed backfills recompute partitions made by the old code.
type Logic string

// The two logics of the spec.
const (
	Legacy    Logic = "legacy"
	Corrected Logic = "corrected"
)

// Version is the logic's version as recorded in checkpoints.
func (l Logic) Version() string {
	switch l {
	case Legacy:
		return "clv-legacy/1"
	case Corrected:
		return "clv-corrected/1"
	}
	return string(l)
}

// ParseLogic reads a --logic value.
func ParseLogic(s string) (Logic, bool) {
	switch Logic(s) {
	case Legacy, Corrected:
		return Logic(s), true
	}
	return "", false
}

// Output column names (spec §2) with their Iceberg field ids.
const (
	OutEventDate          = "event_date"
	OutCustomerID         = "customer_id"
	OutChannel            = "channel"
	OutOrders             = "orders"
	OutGrossRevenueCents  = "gross_revenue_cents"
	OutRefundCents        = "refund_cents"
	OutNetRevenueCents    = "net_revenue_cents"
	OutCountry            = "country"
	OutTouches7d          = "touches_7d"
	OutDistinctChannels7d = "distinct_channels_7d"
	OutAvgHoursToConvert  = "avg_hours_to_convert"
)

// FeatureColumns are the three derived features the corrected logic adds.
var FeatureColumns = []string{OutTouches7d, OutDistinctChannels7d, OutAvgHoursToConvert}

func field(name string, t arrow.DataType, nullable bool, id string) arrow.Field {
	return arrow.Field{Name: name, Type: t, Nullable: nullable,
		Metadata: arrow.NewMetadata([]string{"PARQUET:field_id"}, []string{id})}
}

var legacyFields = []arrow.Field{
	field(OutEventDate, arrow.FixedWidthTypes.Date32, false, "1"),
	field(OutCustomerID, arrow.BinaryTypes.String, false, "2"),
	field(OutChannel, arrow.BinaryTypes.String, false, "3"),
	field(OutOrders, arrow.PrimitiveTypes.Int64, false, "4"),
	field(OutGrossRevenueCents, arrow.PrimitiveTypes.Int64, false, "5"),
	field(OutRefundCents, arrow.PrimitiveTypes.Int64, false, "6"),
	field(OutNetRevenueCents, arrow.PrimitiveTypes.Int64, false, "7"),
	field(OutCountry, arrow.BinaryTypes.String, true, "8"),
}

var featureFields = []arrow.Field{
	field(OutTouches7d, arrow.PrimitiveTypes.Int64, true, "9"),
	field(OutDistinctChannels7d, arrow.PrimitiveTypes.Int32, true, "10"),
	field(OutAvgHoursToConvert, arrow.PrimitiveTypes.Float64, true, "11"),
}

// LegacySchema is the table's schema before the backfill: columns 1–8.
var LegacySchema = arrow.NewSchema(legacyFields, nil)

// FullSchema adds the three feature columns (9–11).
var FullSchema = arrow.NewSchema(append(append([]arrow.Field{}, legacyFields...), featureFields...), nil)

// Output holds one partition's rows in output order: customer_id, then
// channel, both in byte order. Feature slices are empty for the legacy logic.
type Output struct {
	Date       Date
	Logic      Logic
	CustomerID []CustomerID
	Channel    []string
	Orders     []int64
	Gross      []int64
	Refund     []int64
	Net        []int64
	Country    []string // "" with CountryOK false is null
	CountryOK  []bool
	// Corrected logic only.
	Touches7d          []int64
	DistinctChannels7d []int32
	AvgHours           []float64
	AvgHoursOK         []bool
}

// Len is the number of rows.
func (o *Output) Len() int { return len(o.CustomerID) }

// Record converts the rows to an Arrow record of schema (LegacySchema or
// FullSchema). Feature columns of a legacy output are written as nulls.
func (o *Output) Record(mem memory.Allocator, schema *arrow.Schema) arrow.RecordBatch {
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	n := o.Len()
	b.Reserve(n)

	dates := make([]arrow.Date32, n)
	for i := range dates {
		dates[i] = arrow.Date32(o.Date)
	}
	b.Field(0).(*array.Date32Builder).AppendValues(dates, nil)

	cb := b.Field(1).(*array.StringBuilder)
	cb.ReserveData(36 * n)
	var buf [36]byte
	for _, c := range o.CustomerID {
		c.appendText(buf[:0])
		cb.BinaryBuilder.Append(buf[:])
	}
	chb := b.Field(2).(*array.StringBuilder)
	for _, s := range o.Channel {
		chb.BinaryBuilder.Append(unsafeBytes(s))
	}
	b.Field(3).(*array.Int64Builder).AppendValues(o.Orders, nil)
	b.Field(4).(*array.Int64Builder).AppendValues(o.Gross, nil)
	b.Field(5).(*array.Int64Builder).AppendValues(o.Refund, nil)
	b.Field(6).(*array.Int64Builder).AppendValues(o.Net, nil)
	ctb := b.Field(7).(*array.StringBuilder)
	for i, s := range o.Country {
		if o.CountryOK[i] {
			ctb.BinaryBuilder.Append(unsafeBytes(s))
		} else {
			ctb.AppendNull()
		}
	}
	if schema.NumFields() > 8 {
		if len(o.Touches7d) == 0 {
			b.Field(8).AppendNulls(n)
			b.Field(9).AppendNulls(n)
			b.Field(10).AppendNulls(n)
		} else {
			b.Field(8).(*array.Int64Builder).AppendValues(o.Touches7d, nil)
			b.Field(9).(*array.Int32Builder).AppendValues(o.DistinctChannels7d, nil)
			b.Field(10).(*array.Float64Builder).AppendValues(o.AvgHours, o.AvgHoursOK)
		}
	}
	return b.NewRecordBatch()
}

// Totals sums the additive columns, for summaries and demos.
type Totals struct {
	Rows, Orders, Gross, Refund, Net int64
}

// Totals sums the output.
func (o *Output) Totals() Totals {
	t := Totals{Rows: int64(o.Len())}
	for i := range o.Orders {
		t.Orders += o.Orders[i]
		t.Gross += o.Gross[i]
		t.Refund += o.Refund[i]
		t.Net += o.Net[i]
	}
	return t
}

// reserve makes room for n rows (and their features when features is set).
func (o *Output) reserve(n int, features bool) {
	o.CustomerID = make([]CustomerID, 0, n)
	o.Channel = make([]string, 0, n)
	o.Orders = make([]int64, 0, n)
	o.Gross = make([]int64, 0, n)
	o.Refund = make([]int64, 0, n)
	o.Net = make([]int64, 0, n)
	o.Country = make([]string, 0, n)
	o.CountryOK = make([]bool, 0, n)
	if features {
		o.Touches7d = make([]int64, 0, n)
		o.DistinctChannels7d = make([]int32, 0, n)
		o.AvgHours = make([]float64, 0, n)
		o.AvgHoursOK = make([]bool, 0, n)
	}
}

// customersWith counts d's customers from ≤ k < to having an event of type
// a or b: an estimate of the rows they produce.
func customersWith(d *Day, from, to int, a, b EventType) int {
	n := 0
	for k := from; k < to; k++ {
		lo, hi := d.customerRange(k)
		for _, t := range d.typ[lo:hi] {
			if t == a || t == b {
				n++
				break
			}
		}
	}
	return n
}

// appendOutput appends o2's rows (which must sort after o's) to a
// corrected output.
func (o *Output) appendOutput(o2 *Output) {
	o.CustomerID = append(o.CustomerID, o2.CustomerID...)
	o.Channel = append(o.Channel, o2.Channel...)
	o.Orders = append(o.Orders, o2.Orders...)
	o.Gross = append(o.Gross, o2.Gross...)
	o.Refund = append(o.Refund, o2.Refund...)
	o.Net = append(o.Net, o2.Net...)
	o.Country = append(o.Country, o2.Country...)
	o.CountryOK = append(o.CountryOK, o2.CountryOK...)
	o.Touches7d = append(o.Touches7d, o2.Touches7d...)
	o.DistinctChannels7d = append(o.DistinctChannels7d, o2.DistinctChannels7d...)
	o.AvgHours = append(o.AvgHours, o2.AvgHours...)
	o.AvgHoursOK = append(o.AvgHoursOK, o2.AvgHoursOK...)
}

func (o *Output) appendRow(c CustomerID, channel string, orders, gross, refund int64, country uint16, countryNames []string) {
	o.CustomerID = append(o.CustomerID, c)
	o.Channel = append(o.Channel, channel)
	o.Orders = append(o.Orders, orders)
	o.Gross = append(o.Gross, gross)
	o.Refund = append(o.Refund, refund)
	o.Net = append(o.Net, gross-refund)
	if country == 0 {
		o.Country = append(o.Country, "")
		o.CountryOK = append(o.CountryOK, false)
	} else {
		o.Country = append(o.Country, countryNames[country])
		o.CountryOK = append(o.CountryOK, true)
	}
}
