package features

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"math/bits"
)

// Event is one accepted source event outside a Day: the form in which the
// external (spill) path moves events between its passes. Channel and
// Country are this process's symbol codes, so an Event never leaves the
// process that decoded it.
type Event struct {
	Hi, Lo  uint64 // customer, big-endian halves of the 16 bytes
	TS      int64  // event_ts, µs since epoch
	Amount  int64  // amount_cents, null as 0
	Seq     int32  // event number in its day (read order)
	Type    EventType
	Channel uint16
	Country uint16
	ID      []byte
}

// SetSink makes the builder hand every accepted event to f, in read order,
// instead of keeping it: Finish then returns a Day holding only the files,
// the row count and the rejects. The event (and its ID bytes) is only
// valid during the call. Used to stream a day of any size.
func (b *DayBuilder) SetSink(f func(*Event)) { b.sink = f }

// SetRejectSink makes the builder hand every rejected row to f instead of
// keeping it in Day.Rejects (the Day only counts them): the rejects of a
// day of any size need not fit in memory either.
func (b *DayBuilder) SetRejectSink(f func(Reject)) { b.rejectSink = f }

// sinkRows hands the batch rows [s, e), all accepted, to the sink.
func (b *DayBuilder) sinkRows(s, e int, ids stringCol) error {
	ev := &b.ev
	for i := s; i < e; i++ {
		id, _ := ids.value(i)
		*ev = Event{Hi: b.hi[i], Lo: b.lo[i], TS: b.tsv[i], Amount: b.amt[i], Seq: int32(b.n),
			Type: EventType(b.typ[i]), Channel: b.chn[i], Country: b.ctry[i], ID: id}
		b.sink(ev)
		b.n++
	}
	return nil
}

// AddEvent appends one event to the day being built, as if decoded next:
// its event number is the number of events added before it, so events must
// be added in their original read order (e.Seq is not used).
func (b *DayBuilder) AddEvent(e *Event) error {
	d := b.day
	if len(d.idData)+len(e.ID) > maxIDBytes || b.n == math.MaxInt32 {
		return errTooLarge(d.Date)
	}
	d.idData = append(d.idData, e.ID...)
	d.idOff = append(d.idOff, uint32(len(d.idData)))
	k := bucketOf(e.Hi)
	b.bk[k] = append(b.bk[k], bent{hi: e.Hi, lo: e.Lo, ts: e.TS, amount: e.Amount, ev: int32(b.n),
		h32: uint32(IDHash(e.ID) >> 32), chn: e.Channel, ctry: e.Country, typ: e.Type})
	b.n++
	return nil
}

func errTooLarge(d Date) error {
	return &ColumnError{File: d.String(), Column: ColEventID, Problem: "holds more events or event-id bytes than one day can"}
}

// IDHash is the process's hash of an event_id: equal ids hash equally
// whatever day they come from; it never leaves the process.
func IDHash(id []byte) uint64 { return maphash.Bytes(idSeed, id) }

// CustomerBucket is the bucket, of n, of customer hi: buckets are ranges of
// customers in byte order, so bucket outputs concatenated in bucket order
// are in output order.
func CustomerBucket(hi uint64, n int) int {
	b, _ := bits.Mul64(hi, uint64(n))
	return int(b)
}

// AppendBucket appends to o the rows of src whose customer falls in bucket
// k of n: the external path computes each bucket with some events of other
// customers (copies of event ids they share), whose rows it drops here.
func (o *Output) AppendBucket(src *Output, k, n int) {
	feat := len(src.Touches7d) > 0
	for i, c := range src.CustomerID {
		if CustomerBucket(c.hi(), n) != k {
			continue
		}
		o.CustomerID = append(o.CustomerID, c)
		o.Channel = append(o.Channel, src.Channel[i])
		o.Orders = append(o.Orders, src.Orders[i])
		o.Gross = append(o.Gross, src.Gross[i])
		o.Refund = append(o.Refund, src.Refund[i])
		o.Net = append(o.Net, src.Net[i])
		o.Country = append(o.Country, src.Country[i])
		o.CountryOK = append(o.CountryOK, src.CountryOK[i])
		if feat {
			o.Touches7d = append(o.Touches7d, src.Touches7d[i])
			o.DistinctChannels7d = append(o.DistinctChannels7d, src.DistinctChannels7d[i])
			o.AvgHours = append(o.AvgHours, src.AvgHours[i])
			o.AvgHoursOK = append(o.AvgHoursOK, src.AvgHoursOK[i])
		}
	}
}

func (c CustomerID) hi() uint64 { return binary.BigEndian.Uint64(c[:8]) }

// Hi is the customer's first 8 bytes, big-endian: the key CustomerBucket takes.
func (c CustomerID) Hi() uint64 { return c.hi() }

// Reset empties o, keeping its date, logic and capacity.
func (o *Output) Reset() {
	*o = Output{Date: o.Date, Logic: o.Logic,
		CustomerID: o.CustomerID[:0], Channel: o.Channel[:0], Orders: o.Orders[:0], Gross: o.Gross[:0],
		Refund: o.Refund[:0], Net: o.Net[:0], Country: o.Country[:0], CountryOK: o.CountryOK[:0],
		Touches7d: o.Touches7d[:0], DistinctChannels7d: o.DistinctChannels7d[:0], AvgHours: o.AvgHours[:0], AvgHoursOK: o.AvgHoursOK[:0]}
}
