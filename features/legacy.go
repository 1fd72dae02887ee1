package features

// ComputeLegacy reproduces the production logic with its bug (spec §3): it
// reads only dt = D, counts duplicate rows as many times as they occur,
// attributes every order to the channel of the customer's earliest touch of
// the day (even a touch after the order), and ignores refunds.
func ComputeLegacy(d *Day) *Output {
	out := &Output{Date: d.Date, Logic: Legacy}
	out.reserve(customersWith(d, 0, len(d.custHi), Order, Order), false)
	chNames := channelNames()
	ctNames := countrySymbols.snapshot()
	typ, chn := d.typ, d.chn
	for k := range d.custHi {
		lo, hi := d.customerRange(k)
		var orders, gross int64
		firstTouch := int32(-1)
		for e := lo; e < hi; e++ {
			switch typ[e] {
			case Order:
				orders++
				gross += d.amountOf(e)
			case Touch:
				// Events are in (event_ts, event_id) order, so the first touch
				// met is the earliest, ties broken by the smallest id.
				if firstTouch < 0 {
					firstTouch = e
				}
			}
		}
		if orders == 0 {
			continue
		}
		channel := directChannel
		if firstTouch >= 0 {
			channel = chNames[chn[firstTouch]]
		}
		out.appendRow(d.customer(k), channel, orders, gross, 0, latestCountry(d, lo, hi, nil), ctNames)
	}
	return out
}

// latestCountry is the country of the latest event (ties: smallest
// event_id) that has one among events lo..hi-1, which are in (event_ts,
// event_id) order. Events marked in dead (nil: none) are not considered.
func latestCountry(d *Day, lo, hi int32, dead []uint64) uint16 {
	// Scan backwards: the first event met with a country at the greatest
	// timestamp wins, but among equal timestamps the smallest id (the
	// earliest position) does.
	best := int32(-1)
	for e := hi - 1; e >= lo; e-- {
		if best >= 0 && d.ts[e] < d.ts[best] {
			break
		}
		if d.ctry[e] == 0 || (dead != nil && dead[e>>6]&(1<<(e&63)) != 0) {
			continue
		}
		best = e
	}
	if best < 0 {
		return 0
	}
	return d.ctry[best]
}
