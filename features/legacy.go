package features

// ComputeLegacy reproduces the production logic with its bug (spec §3): it
// reads only dt = D, counts duplicate rows as many times as they occur,
// attributes every order to the channel of the customer's earliest touch of
// the day (even a touch after the order), and ignores refunds.
func ComputeLegacy(d *Day) *Output {
	out := &Output{Date: d.Date, Logic: Legacy}
	for k, c := range d.custs {
		evs := d.customerEvents(k)
		var orders, gross int64
		firstTouch := int32(-1)
		for _, e := range evs {
			switch d.typ[e] {
			case Order:
				orders++
				gross += d.amount[e]
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
			channel = channelName(d.chn[firstTouch])
		}
		out.appendRow(c, channel, orders, gross, 0, latestCountry(d, evs, nil))
	}
	return out
}

// latestCountry is the country of the latest event (ties: smallest
// event_id) that has one; evs is in (event_ts, event_id) order. Events for
// which skip says true are not considered.
func latestCountry(d *Day, evs []int32, skip func(int32) bool) uint32 {
	var best uint32
	bestTS := int64(0)
	found := false
	for _, e := range evs {
		if d.ctry[e] == 0 || (skip != nil && skip(e)) {
			continue
		}
		// Strictly later only: among equal timestamps the first seen has
		// the smallest id.
		if !found || d.ts[e] > bestTS {
			best, bestTS, found = d.ctry[e], d.ts[e], true
		}
	}
	return best
}
