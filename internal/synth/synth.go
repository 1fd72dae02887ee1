package synth

import (
	"bytes"
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strconv"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
)

// Config says what to generate. Generate fills the zero-valued optional
// fields with the documented defaults.
type Config struct {
	From, To     features.Date // inclusive
	EventsPerDay int           // average events per normal day
	Seed         int64
	// V2From is the first day whose files are schema v2. On exactly that day
	// both a v1 file and v2 files are written (the producer switched that
	// day, at a time of day derived from Seed). The zero value or a day
	// before From makes every day v2; a day after To makes every day v1.
	V2From features.Date
	// FilesPerDay is the number of files per day (default 3). On the switch
	// day one file is v1 and max(1, FilesPerDay-1) are v2.
	FilesPerDay int
	// Customers is the population size; default max(1000, EventsPerDay/4).
	Customers int
	// HeavyDays is the number of heavy days (3-5x volume), chosen
	// deterministically from Seed among From..To; default one per 30 days,
	// and at least one when the range has 10 days or more. Negative: none.
	HeavyDays int
}

// DayStats describes one generated day folder. Events counts the rows
// written, duplicates and rejects included.
type DayStats struct {
	Day    features.Date
	Events int
	Files  int
	Bytes  int64
}

// Volume and layout.
const (
	// defaultFilesPerDay is used when Config.FilesPerDay is zero.
	defaultFilesPerDay = 3
	// maxFilesPerDay keeps the part-NNNNN file names five digits wide.
	maxFilesPerDay = 99_999
	// minCustomers is the smallest default population.
	minCustomers = 1000
	// eventsPerCustomerDay sets the default population: EventsPerDay / 4.
	eventsPerCustomerDay = 4
	// heavyDayEvery is the default spacing of heavy days (one per 30 days).
	heavyDayEvery = 30
	// heavyDayMinRange is the range length from which at least one heavy day
	// is chosen by default.
	heavyDayMinRange = 10
	// heavyMinFactor and heavyMaxFactor bound a heavy day's volume as a
	// multiple of EventsPerDay ("3-5x"; the floor sits a little above 3 so
	// a heavy day always clears 3x despite the day-to-day noise).
	heavyMinFactor = 3.2
	heavyMaxFactor = 5.0
	// rowGroupRows is the Parquet row-group length (128 Ki rows).
	rowGroupRows = 128 * 1024
	// maxSessionsPerDay keeps session<<3|index inside the uint32 event sequence.
	maxSessionsPerDay = 1 << 29
)

// Customers.
const (
	// userIDOffset is added to the customer number 1..Customers to form the
	// v1 user_id, so ids look like a production sequence (10000001...).
	userIDOffset = 10_000_000
	// customerSkew shapes activity: a session's customer rank is
	// floor(Customers * u^customerSkew), so the top 1% of customers own
	// about 10% of sessions and the top 10% about 32% (Zipf-like).
	customerSkew = 2
	// customerPermMul scatters activity ranks over customer numbers (rank*mul
	// mod Customers), so the busiest customers are not simply 1, 2, 3...
	customerPermMul = 1_000_003
	// uppercaseUserIDShare of v2 user_ids are written in upper case.
	uppercaseUserIDShare = 0.05
)

// Event mix. A day's distinct events come from sessions; the session rates
// below are derived from these shares (see newPlan) so that the realised mix
// is about 75% touch, 20% order, 5% refund.
const (
	touchShare  = 0.75
	orderShare  = 0.20
	refundShare = 0.05
	// longOrderShare of orders belong to "long" sessions whose earlier
	// touches were made 1 to 9.5 days before the order and so sit in
	// earlier day folders (some beyond the 7-day attribution window).
	longOrderShare = 0.25
	// noPreTouchShare of same-day order sessions have no touch before the order.
	noPreTouchShare = 0.10
	// maxPreTouches is the most touches before a same-day order (1..5).
	maxPreTouches = 5
	// preTouchMaxAge bounds how long before a same-day order its touches
	// happen (skewed towards the order; never before the day's midnight).
	preTouchMaxAge = 8 * hourMicros
	// postOrderTouchShare of same-day order sessions have one touch after
	// the order, on the same day (about 5% of all touches).
	postOrderTouchShare = 0.25
	// postTouchMaxDelay bounds how long after the order that touch happens.
	postTouchMaxDelay = 3 * hourMicros
	// maxBrowseTouches is the most touches of a session without an order (1..3).
	maxBrowseTouches = 3
	// browseSpan bounds the spread of a browse session's touches.
	browseSpan = 2 * hourMicros
	// maxEarlyTouches is the most early touches of a long session (1..3).
	maxEarlyTouches = 3
	// earlyTouchMinAge and earlyTouchMaxAge bound how long before its order a
	// long session's early touch happens: 29% of them fall beyond 7 days.
	earlyTouchMinAge = 1 * features.MicrosPerDay
	earlyTouchMaxAge = 9*features.MicrosPerDay + 12*hourMicros
	// maxLongSameDayTouches is the most same-day touches of a long session (0..2).
	maxLongSameDayTouches = 2
	// longReachDays is how many days ahead a folder must look for long
	// sessions whose early touches land in it (ceil of earlyTouchMaxAge).
	longReachDays = 10
)

// Values.
const (
	// orderMinCents and orderMaxCents bound order and refund amounts.
	orderMinCents = 500
	orderMaxCents = 50_000
	// amountSkew skews amounts towards the minimum: amount =
	// min*(max/min)^(u^amountSkew), median about 16 currency units.
	amountSkew = 2
	// amountNullShare of orders and refunds carry a null amount.
	amountNullShare = 0.01
	// refundMaxAgeDays bounds how old the order named by a refund is.
	refundMaxAgeDays = 30
	// countryNullShare of events carry a null country.
	countryNullShare = 0.05
	// countryAwayShare of events carry a random country instead of the
	// customer's home country (travel, VPNs).
	countryAwayShare = 0.03
)

// Delivery defects.
const (
	// lateSessionShare of same-day sessions are delivered 1..lateMaxDays days
	// late: their event_ts lies before dt (about 2% of all events).
	lateSessionShare = 0.025
	lateMaxDays      = 3
	// dupShare of a folder's rows are added again as exact copies within
	// the same folder (in any of its files).
	dupShare = 0.015
	// redeliverShare * EventsPerDay events of each day are delivered again,
	// as exact copies, in the folder 1..redeliverMaxDays days later.
	redeliverShare   = 0.005
	redeliverMaxDays = 3
	// rejectShare of rows are unreadable by the contract: unknown event_type
	// "click", null user_id, or (v2) user_id "not-a-uuid". The count per day
	// is rejectShare*rows rounded stochastically, so small days may have none.
	rejectShare = 0.00005
	// switchEarliestHour and switchWindowHours place the producer's v1 to v2
	// switch on the V2From day between 06:00 and 18:00 UTC.
	switchEarliestHour = 6
	switchWindowHours  = 12
)

const hourMicros = int64(3_600_000_000)

// userNamespace is the RFC 9562 URL namespace 6ba7b811-9dad-11d1-80b4-00c04fd430c8.
var userNamespace = [16]byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// userNamePrefix precedes the decimal v1 user_id in the UUIDv5 name.
const userNamePrefix = "urn:clv:user:"

// diurnalWeights is the relative activity per UTC hour (sums to 100).
var diurnalWeights = [24]int{1, 1, 1, 1, 1, 2, 3, 4, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 5, 4, 2, 1}

// channels are the touch channels with their weights (per 100 touches);
// index 0 is null.
var channels = []struct {
	name   string
	weight int
}{
	{"", 10}, {"paid_search", 25}, {"social", 18}, {"email", 15},
	{"affiliate", 10}, {"display", 17}, {"direct", 5},
}

// countries are ISO 3166 alpha-2 codes with their weights (per 100
// customers); index 0 is reserved for null.
var countries = []struct {
	code   string
	weight int
}{
	{"", 0}, {"US", 30}, {"GB", 8}, {"DE", 8}, {"FR", 7}, {"CA", 5}, {"ES", 4},
	{"IT", 4}, {"NL", 4}, {"SE", 3}, {"PL", 3}, {"BR", 4}, {"MX", 3}, {"JP", 4},
	{"AU", 3}, {"IN", 3}, {"KR", 2}, {"IE", 1}, {"CH", 1}, {"BE", 2}, {"AT", 1},
}

// Event types; typeClick is only written by rejects.
const (
	typeTouch uint8 = iota
	typeOrder
	typeRefund
	typeClick
)

var typeNames = [...][]byte{[]byte("touch"), []byte("order"), []byte("refund"), []byte("click")}

// Event flags.
const (
	flagUpper    uint8 = 1 << iota // v2 user_id in upper case
	flagNullUser                   // reject: null user_id
	flagBadUUID                    // reject: v2 user_id "not-a-uuid" (null in v1 files)
)

// Streams: each per-day random stream is keyed by (Seed, day, stream, index).
const (
	streamMain uint64 = iota + 1
	streamLong
	streamRedeliver
	streamDup
	streamReject
	streamLayout
	streamHeavy
	streamSwitch
	streamCountry
)

// Event id stream letters: same-day session, long session, reject.
const (
	idMain   = 'm'
	idLong   = 'l'
	idReject = 'x'
)

var (
	channelTable [100]uint8 // uniform 0..99 -> channel index
	countryTable [256]uint8 // uniform byte -> country index
	hourTable    [100]uint8 // uniform 0..99 -> hour of day
)

func init() {
	fill := func(table []uint8, weights []int) {
		total := 0
		for _, w := range weights {
			total += w
		}
		i, acc := 0, 0
		for k, w := range weights {
			acc += w
			for ; i < len(table) && i*total < acc*len(table); i++ {
				table[i] = uint8(k)
			}
		}
	}
	cw := make([]int, len(channels))
	for i, c := range channels {
		cw[i] = c.weight
	}
	fill(channelTable[:], cw)
	kw := make([]int, len(countries))
	for i, c := range countries {
		kw[i] = c.weight
	}
	fill(countryTable[:], kw)
	fill(hourTable[:], diurnalWeights[:])
}

// event is one row before rendering; copies of an event render identically
// (apart from the user_id's v1/v2 form).
type event struct {
	ts      int64
	origin  features.Date // day of the stream that made it (in event_id, order_id)
	seq     uint32        // session<<3 | index in session
	rnd     uint32        // random suffix of event_id (24 bits)
	cust    uint32        // customer index 0..Customers-1
	amount  int32         // cents; -1 is null
	ref     uint32        // refunds: sequence part of the referenced order_id
	refBack uint8         // refunds: days from the referenced order to origin
	typ     uint8
	channel uint8 // index into channels; 0 is null
	country uint8 // index into countries; 0 is null
	stream  uint8 // idMain, idLong or idReject
	flags   uint8
}

// plan holds everything derived from a Config; it is read-only while days
// are generated in parallel.
type plan struct {
	cfg       Config
	seed      uint64
	customers uint64
	permMul   uint64
	files     int
	heavy     map[features.Date]float64 // volume factor of heavy days
	switchTs  int64                     // first v2 µs on cfg.V2From

	// session rates per distinct event
	mainPerEvent  float64 // same-day sessions
	orderCut      float64 // kind draw u*mainPerEvent < orderCut: order
	refundCut     float64 // < refundCut: refund, else browse
	mainEventFrac float64 // share of distinct events from same-day sessions
	baseSessions  int     // same-day sessions of a normal day
	longSessions  int     // long sessions per order day
	redeliveries  int     // re-delivered events per origin day

	home  []uint8 // home country index per customer
	uuids []byte  // 36 bytes per customer, lower case; nil without v2 days
}

func newPlan(cfg Config) (*plan, error) {
	if cfg.To < cfg.From {
		return nil, fmt.Errorf("synth: To %s is before From %s", cfg.To, cfg.From)
	}
	if cfg.EventsPerDay < 1 {
		return nil, fmt.Errorf("synth: EventsPerDay must be positive, got %d", cfg.EventsPerDay)
	}
	if cfg.FilesPerDay < 0 || cfg.FilesPerDay > maxFilesPerDay {
		return nil, fmt.Errorf("synth: FilesPerDay must be 0 (default) or 1..%d, got %d", maxFilesPerDay, cfg.FilesPerDay)
	}
	if cfg.Customers < 0 || int64(cfg.Customers) > math.MaxUint32 {
		return nil, fmt.Errorf("synth: Customers must be 0 (default) or 1..%d, got %d", uint32(math.MaxUint32), cfg.Customers)
	}
	if cfg.FilesPerDay == 0 {
		cfg.FilesPerDay = defaultFilesPerDay
	}
	if cfg.Customers == 0 {
		cfg.Customers = max(minCustomers, cfg.EventsPerDay/eventsPerCustomerDay)
	}
	p := &plan{cfg: cfg, seed: uint64(cfg.Seed), customers: uint64(cfg.Customers), files: cfg.FilesPerDay}
	p.permMul = customerPermMul % p.customers
	if p.permMul == 0 || gcd(p.permMul, p.customers) != 1 {
		p.permMul = 1
	}

	// Session rates, derived from the target mix.
	longPerEvent := orderShare * longOrderShare
	mainOrders := orderShare - longPerEvent
	meanPre := (1 - noPreTouchShare) * (1 + maxPreTouches) / 2.0
	meanLongTouches := (1+maxEarlyTouches)/2.0 + maxLongSameDayTouches/2.0
	browseTouches := touchShare - mainOrders*(meanPre+postOrderTouchShare) - longPerEvent*meanLongTouches
	if browseTouches < 0 {
		return nil, errors.New("synth: inconsistent event-mix constants")
	}
	browse := browseTouches / ((1 + maxBrowseTouches) / 2.0)
	p.mainPerEvent = mainOrders + refundShare + browse
	p.orderCut = mainOrders
	p.refundCut = mainOrders + refundShare
	p.mainEventFrac = 1 - longPerEvent*(1+meanLongTouches)
	n := float64(cfg.EventsPerDay)
	p.baseSessions = max(1, int(math.Round(n*p.mainPerEvent)))
	p.longSessions = int(math.Round(n * longPerEvent))
	p.redeliveries = int(math.Round(n * redeliverShare))

	// Heavy days: the HeavyDays days of the range with the smallest hash.
	days := features.DaysBetween(cfg.From, cfg.To)
	nh := cfg.HeavyDays
	if nh == 0 {
		nh = len(days) / heavyDayEvery
		if nh == 0 && len(days) >= heavyDayMinRange {
			nh = 1
		}
	}
	nh = min(max(nh, 0), len(days))
	ranked := slices.Clone(days)
	slices.SortFunc(ranked, func(a, b features.Date) int {
		ha, hb := p.hash(a, streamHeavy, 0), p.hash(b, streamHeavy, 0)
		if ha != hb {
			if ha < hb {
				return -1
			}
			return 1
		}
		return int(a - b)
	})
	p.heavy = make(map[features.Date]float64, nh)
	for _, d := range ranked[:nh] {
		u := unitFloat(p.hash(d, streamHeavy, 1))
		p.heavy[d] = heavyMinFactor + (heavyMaxFactor-heavyMinFactor)*u
	}
	for _, d := range days {
		if s := p.sessions(d); s >= maxSessionsPerDay {
			return nil, fmt.Errorf("synth: %s would need %d sessions; at most %d per day", d, s, maxSessionsPerDay)
		}
	}

	u := unitFloat(p.hash(cfg.V2From, streamSwitch, 0))
	p.switchTs = cfg.V2From.StartMicros() + switchEarliestHour*hourMicros + int64(u*switchWindowHours*float64(hourMicros))

	p.home = make([]uint8, cfg.Customers)
	for c := range p.home {
		p.home[c] = countryTable[p.hash(0, streamCountry, uint64(c))>>56]
	}
	if cfg.V2From <= cfg.To {
		p.uuids = make([]byte, 0, 36*cfg.Customers)
		var name []byte
		for c := 1; c <= cfg.Customers; c++ {
			name = strconv.AppendInt(append(name[:0], userNamePrefix...), userIDOffset+int64(c), 10)
			p.uuids = appendUUIDv5(p.uuids, userNamespace, name)
		}
	}
	return p, nil
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// appendUUIDv5 appends the canonical lower-case text of the RFC 9562 name-based
// (SHA-1) UUID of name in namespace ns.
func appendUUIDv5(dst []byte, ns [16]byte, name []byte) []byte {
	h := sha1.New()
	h.Write(ns[:])
	h.Write(name)
	var sum [sha1.Size]byte
	u := h.Sum(sum[:0])
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	for i := 0; i < 16; i++ {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[u[i]>>4], hex[u[i]&0x0f])
	}
	return dst
}

// ---- randomness ----

func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (p *plan) hash(d features.Date, stream, i uint64) uint64 {
	h := mix64(p.seed ^ 0x5851f42d4c957f2d)
	h = mix64(h ^ uint64(uint32(d)))
	h = mix64(h ^ stream)
	return mix64(h ^ i)
}

// rng is wyrand: tiny, fast, and good enough for test data.
type rng struct{ s uint64 }

func (p *plan) rng(d features.Date, stream, i uint64) rng { return rng{p.hash(d, stream, i)} }

func (r *rng) next() uint64 {
	r.s += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(r.s, r.s^0xe7037ed1a0b428db)
	return hi ^ lo
}

// intn is uniform in [0, n) for n > 0.
func (r *rng) intn(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

func (r *rng) int63n(n int64) int64 {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int64(hi)
}

// powInt is u**k for a small k >= 1.
func powInt(u float64, k int) float64 {
	v := u
	for range k - 1 {
		v *= u
	}
	return v
}

func unitFloat(x uint64) float64 { return float64(x>>11) / (1 << 53) }

func (r *rng) float() float64 { return unitFloat(r.next()) }

func (r *rng) chance(p float64) bool { return r.float() < p }

// round rounds x stochastically, so that the expected value is x.
func (r *rng) round(x float64) int {
	f := math.Floor(x)
	if r.float() < x-f {
		f++
	}
	return int(f)
}

// ---- sessions ----

func (p *plan) factor(d features.Date) float64 {
	if f, ok := p.heavy[d]; ok {
		return f
	}
	return 1
}

// sessions is the number of same-day sessions of day d. Heavy days add
// sessions on top of a normal day's, so session j is the same on both.
func (p *plan) sessions(d features.Date) int {
	f := p.factor(d)
	if f == 1 {
		return p.baseSessions
	}
	longFrac := 1 - p.mainEventFrac
	n := float64(p.cfg.EventsPerDay) * (f - longFrac) / p.mainEventFrac * p.mainPerEvent
	return max(p.baseSessions, int(math.Round(n)))
}

func (p *plan) customer(r *rng) uint32 {
	u := r.float()
	rank := uint64(float64(p.customers) * powInt(u, customerSkew))
	if rank >= p.customers {
		rank = p.customers - 1
	}
	return uint32(rank * p.permMul % p.customers)
}

// timeOfDay draws a µs offset into a day following diurnalWeights.
func timeOfDay(r *rng) int64 {
	h := int64(hourTable[r.intn(len(hourTable))])
	return h*hourMicros + r.int63n(hourMicros)
}

func (p *plan) country(r *rng, cust uint32) uint8 {
	x := r.intn(1000)
	switch {
	case x < countryNullShare*1000:
		return 0
	case x < (countryNullShare+countryAwayShare)*1000:
		return countryTable[r.next()>>56]
	default:
		return p.home[cust]
	}
}

func (p *plan) amount(r *rng) int32 {
	if r.chance(amountNullShare) {
		return -1
	}
	u := r.float()
	return int32(orderMinCents * math.Exp(powInt(u, amountSkew)*math.Log(orderMaxCents/orderMinCents)))
}

// newEvent draws an event's attributes from its own seed (one draw of its
// session's stream), so that a session can skip the events that do not
// land in the folder being built without shifting the others.
func (p *plan) newEvent(seed uint64, origin features.Date, stream uint8, seq, cust uint32, ts int64, typ uint8) event {
	r := &rng{mix64(seed)}
	x := r.next()
	e := event{
		ts: ts, origin: origin, seq: seq, rnd: uint32(x) & 0xffffff, cust: cust,
		amount: -1, typ: typ, stream: stream, country: p.country(r, cust),
	}
	if float64(x>>40)/(1<<24) < uppercaseUserIDShare {
		e.flags |= flagUpper
	}
	switch typ {
	case typeTouch:
		e.channel = channelTable[r.intn(len(channelTable))]
	case typeOrder:
		e.amount = p.amount(r)
	case typeRefund:
		e.amount = p.amount(r)
		e.refBack = uint8(1 + r.intn(refundMaxAgeDays))
		e.ref = uint32(r.intn(p.baseSessions))<<3 | uint32(r.intn(1+maxPreTouches))
	}
	return e
}

// sameDayAge draws how long before t (at most room µs after midnight) a
// same-day touch happened.
func sameDayAge(r *rng, room int64) int64 {
	u := r.float()
	a := int64(u * u * float64(preTouchMaxAge))
	if a > room {
		a = int64(r.float() * float64(room))
	}
	return a
}

// mainSession appends same-day session j of day d; all its events belong to
// folder d (event_ts before d when the session is late).
func (p *plan) mainSession(dst []event, d features.Date, j int) []event {
	r := p.rng(d, streamMain, uint64(j))
	cust := p.customer(&r)
	var shift int64
	if r.chance(lateSessionShare) {
		shift = int64(1+r.intn(lateMaxDays)) * features.MicrosPerDay
	}
	start := d.StartMicros()
	t := start + timeOfDay(&r)
	seq := uint32(j) << 3
	kind := r.float() * p.mainPerEvent
	switch {
	case kind < p.orderCut:
		nPre := 0
		if !r.chance(noPreTouchShare) {
			nPre = 1 + r.intn(maxPreTouches)
		}
		for range nPre {
			ts := t - sameDayAge(&r, t-start)
			dst = append(dst, p.newEvent(r.next(), d, idMain, seq, cust, ts-shift, typeTouch))
			seq++
		}
		dst = append(dst, p.newEvent(r.next(), d, idMain, seq, cust, t-shift, typeOrder))
		seq++
		if r.chance(postOrderTouchShare) {
			room := start + features.MicrosPerDay - 1 - t
			ts := t + int64(r.float()*float64(min(room, postTouchMaxDelay)))
			dst = append(dst, p.newEvent(r.next(), d, idMain, seq, cust, ts-shift, typeTouch))
		}
	case kind < p.refundCut:
		dst = append(dst, p.newEvent(r.next(), d, idMain, seq, cust, t-shift, typeRefund))
	default:
		n := 1 + r.intn(maxBrowseTouches)
		room := start + features.MicrosPerDay - 1 - t
		for range n {
			ts := t + int64(r.float()*float64(min(room, browseSpan)))
			dst = append(dst, p.newEvent(r.next(), d, idMain, seq, cust, ts-shift, typeTouch))
			seq++
		}
	}
	return dst
}

// longSession appends the events of long session j of order day x that
// belong in folder: the order (folder x), its same-day touches (folder x)
// and its early touches (the folders of their event_ts).
func (p *plan) longSession(dst []event, x features.Date, j int, folder features.Date) []event {
	r := p.rng(x, streamLong, uint64(j))
	cust := p.customer(&r)
	start := x.StartMicros()
	t := start + timeOfDay(&r)
	seq := uint32(j) << 3
	if seed := r.next(); folder == x {
		dst = append(dst, p.newEvent(seed, x, idLong, seq, cust, t, typeOrder))
	}
	seq++
	nEarly := 1 + r.intn(maxEarlyTouches)
	for range nEarly {
		ts := t - earlyTouchMinAge - r.int63n(earlyTouchMaxAge-earlyTouchMinAge)
		if seed := r.next(); features.DateOfMicros(ts) == folder {
			dst = append(dst, p.newEvent(seed, x, idLong, seq, cust, ts, typeTouch))
		}
		seq++
	}
	if folder != x {
		return dst // the rest lands in folder x
	}
	nSame := r.intn(maxLongSameDayTouches + 1)
	for range nSame {
		ts := t - sameDayAge(&r, t-start)
		dst = append(dst, p.newEvent(r.next(), x, idLong, seq, cust, ts, typeTouch))
		seq++
	}
	return dst
}

// dayEvents returns every row of folder d, in generation order.
func (p *plan) dayEvents(w *worker, d features.Date) []event {
	evs := w.evs[:0]
	n := p.sessions(d)
	for j := range n {
		evs = p.mainSession(evs, d, j)
	}
	for x := d; x <= d+longReachDays; x++ {
		for j := range p.longSessions {
			evs = p.longSession(evs, x, j, d)
		}
	}
	// Re-deliveries of the previous days' events.
	for back := 1; back <= redeliverMaxDays; back++ {
		x := d - features.Date(back)
		r := p.rng(x, streamRedeliver, 0)
		for range p.redeliveries {
			j := r.intn(p.baseSessions)
			pick := r.next()
			delay := 1 + r.intn(redeliverMaxDays)
			if delay != back {
				continue
			}
			w.tmp = p.mainSession(w.tmp[:0], x, j)
			evs = append(evs, w.tmp[pick%uint64(len(w.tmp))])
		}
	}
	// Duplicates within the folder.
	r := p.rng(d, streamDup, 0)
	orig := len(evs)
	if orig > 0 {
		for range r.round(float64(orig) * dupShare) {
			evs = append(evs, evs[r.intn(orig)])
		}
	}
	// Rejects.
	r = p.rng(d, streamReject, 0)
	for i := range r.round(float64(len(evs)) * rejectShare) {
		cust := p.customer(&r)
		e := p.newEvent(r.next(), d, idReject, uint32(i), cust, d.StartMicros()+timeOfDay(&r), typeTouch)
		switch r.intn(3) {
		case 0:
			e.typ = typeClick
		case 1:
			e.flags |= flagNullUser
		default:
			e.flags |= flagBadUUID
		}
		evs = append(evs, e)
	}
	w.evs = evs
	return evs
}

// ---- layout and writing ----

type fileSpec struct {
	name    string
	version int32
}

func (p *plan) fileSpecs(d features.Date) []fileSpec {
	var out []fileSpec
	add := func(v int32) {
		out = append(out, fileSpec{fmt.Sprintf("dt=%s/part-%05d-v%d.parquet", d, len(out), v), v})
	}
	switch {
	case d < p.cfg.V2From:
		for range p.files {
			add(1)
		}
	case d == p.cfg.V2From:
		add(1)
		for range max(1, p.files-1) {
			add(2)
		}
	default:
		for range p.files {
			add(2)
		}
	}
	return out
}

// layout assigns rows to files and orders each file by arrival hour (random
// within the hour, so files are only roughly in time order). It returns the
// row indices grouped by file and each file's start offset.
func (p *plan) layout(w *worker, d features.Date, evs []event, specs []fileSpec) ([]int32, []int) {
	const buckets = 24
	r := p.rng(d, streamLayout, 0)
	start := d.StartMicros()
	keys := slices.Grow(w.keys[:0], len(evs))[:len(evs)]
	counts := make([]int, len(specs)*buckets+1)
	switchDay := d == p.cfg.V2From
	for i := range evs {
		e := &evs[i]
		var f int
		if switchDay {
			if e.ts >= p.switchTs {
				f = 1 + r.intn(len(specs)-1)
			}
		} else {
			f = r.intn(len(specs))
		}
		h := int((e.ts - start) / hourMicros)
		if e.ts < start || h >= buckets {
			h = r.intn(buckets) // late rows arrive at any hour
		}
		k := uint32(f*buckets + h)
		keys[i] = k
		counts[k+1]++
	}
	for k := 1; k < len(counts); k++ {
		counts[k] += counts[k-1]
	}
	offsets := make([]int, len(specs)+1)
	for f := range offsets {
		offsets[f] = counts[min(f*buckets, len(counts)-1)]
	}
	idx := slices.Grow(w.idx[:0], len(evs))[:len(evs)]
	for i, k := range keys {
		idx[counts[k]] = int32(i)
		counts[k]++
	}
	w.keys, w.idx = keys, idx
	return idx, offsets
}

// lowCard is the type written for the low-cardinality string columns: an
// Arrow dictionary over a fixed value list, so the Parquet writer takes the
// ready-made indices instead of hashing every string. In the file these are
// ordinary dictionary-encoded UTF-8 columns and read back as utf8 (no Arrow
// schema is stored).
var lowCard = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}

var (
	tsType  = &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}
	schemas = [3]*arrow.Schema{1: newSchema(arrow.PrimitiveTypes.Int64), 2: newSchema(arrow.BinaryTypes.String)}
	// writerProps: Snappy, 128 Ki-row groups, dictionary encoding only for
	// the low-cardinality columns, a fixed created_by for reproducible bytes.
	writerProps = parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(rowGroupRows),
		parquet.WithDictionaryDefault(false),
		parquet.WithDictionaryFor("schema_version", true),
		parquet.WithDictionaryFor("event_type", true),
		parquet.WithDictionaryFor("channel", true),
		parquet.WithDictionaryFor("country", true),
		parquet.WithCreatedBy("icefill synth"),
	)
	arrowProps = pqarrow.NewArrowWriterProperties()
)

// newSchema is the source schema as written; every field is nullable so
// that rejects can be planted and optional columns look like a real
// producer's.
func newSchema(userID arrow.DataType) *arrow.Schema {
	return arrow.NewSchema([]arrow.Field{
		{Name: "event_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "event_ts", Type: tsType, Nullable: true},
		{Name: "schema_version", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "user_id", Type: userID, Nullable: true},
		{Name: "event_type", Type: lowCard, Nullable: true},
		{Name: "channel", Type: lowCard, Nullable: true},
		{Name: "order_id", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "amount_cents", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "country", Type: lowCard, Nullable: true},
	}, nil)
}

// Dictionaries of the low-cardinality columns: event type i is typeDict[i];
// channel and country index k (k > 0) are entry k-1, index 0 is null.
var (
	typeDict    = stringArray(len(typeNames), func(i int) string { return string(typeNames[i]) })
	channelDict = stringArray(len(channels)-1, func(i int) string { return channels[i+1].name })
	countryDict = stringArray(len(countries)-1, func(i int) string { return countries[i+1].code })
	notAUUID    = []byte("not-a-uuid")
)

func stringArray(n int, value func(int) string) arrow.Array {
	b := array.NewStringBuilder(memory.NewGoAllocator())
	defer b.Release()
	for i := range n {
		b.Append(value(i))
	}
	return b.NewArray()
}

// worker holds the reusable buffers of one goroutine.
type worker struct {
	evs  []event
	tmp  []event
	keys []uint32
	idx  []int32
	buf  bytes.Buffer
	ymd  [64]struct {
		day features.Date
		ok  bool
		s   [8]byte
	}
}

// appendYMD appends d as YYYYMMDD, through a small cache.
func (w *worker) appendYMD(dst []byte, d features.Date) []byte {
	c := &w.ymd[uint32(d)%uint32(len(w.ymd))]
	if !c.ok || c.day != d {
		y, m, dd := civil(int64(d))
		b := strconv.AppendInt(c.s[:0], int64(y*10000+m*100+dd), 10)
		if len(b) != 8 { // years outside 1000..9999
			copy(c.s[:], fmt.Sprintf("%08d", y*10000+m*100+dd)[:8])
		}
		c.day, c.ok = d, true
	}
	return append(dst, c.s[:]...)
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date.
func civil(days int64) (y, m, d int) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	yy := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	if m <= 2 {
		yy++
	}
	return int(yy), m, d
}

const hexDigits = "0123456789abcdef"

// record renders rows as one record batch of the given schema version.
// Columns are built straight into Go slices that become the Arrow buffers;
// they are freshly allocated per batch because the Parquet writer may keep
// references (statistics) to them.
func (w *worker) record(p *plan, version int32, rows []int32, evs []event) arrow.RecordBatch {
	n := len(rows)
	eid := newStringColumn(n, 28)
	ts := make([]int64, n)
	sv := make([]int32, n)
	var uidInt *int64Column
	var uidStr *stringColumn
	if version == 1 {
		uidInt = newInt64Column(n)
	} else {
		uidStr = newStringColumn(n, 36)
	}
	typ, ch, cty := newIndexColumn(n), newIndexColumn(n), newIndexColumn(n)
	oid := newStringColumn(n, 6)
	amt := newInt64Column(n)

	for k, i := range rows {
		e := &evs[i]
		// event_id: e-YYYYMMDD-<stream><seq>-<6 hex>
		b := append(eid.data, 'e', '-')
		b = w.appendYMD(b, e.origin)
		b = append(b, '-', e.stream)
		b = strconv.AppendUint(b, uint64(e.seq), 10)
		eid.data = append(b, '-',
			hexDigits[e.rnd>>20&15], hexDigits[e.rnd>>16&15], hexDigits[e.rnd>>12&15],
			hexDigits[e.rnd>>8&15], hexDigits[e.rnd>>4&15], hexDigits[e.rnd&15])
		eid.end(true)

		ts[k] = e.ts
		sv[k] = version

		if version == 1 {
			uidInt.append(userIDOffset+1+int64(e.cust), e.flags&(flagNullUser|flagBadUUID) == 0)
		} else {
			switch {
			case e.flags&flagNullUser != 0:
				uidStr.end(false)
			case e.flags&flagBadUUID != 0:
				uidStr.data = append(uidStr.data, notAUUID...)
				uidStr.end(true)
			case e.flags&flagUpper != 0:
				start := len(uidStr.data)
				uidStr.data = append(uidStr.data, p.uuids[36*e.cust:36*e.cust+36]...)
				for k, c := range uidStr.data[start:] {
					if c >= 'a' && c <= 'f' {
						uidStr.data[start+k] = c - 'a' + 'A'
					}
				}
				uidStr.end(true)
			default:
				uidStr.data = append(uidStr.data, p.uuids[36*e.cust:36*e.cust+36]...)
				uidStr.end(true)
			}
		}

		typ.append(e.typ, true)
		ch.append(e.channel-1, e.channel != 0)
		switch e.typ {
		case typeOrder:
			b := append(oid.data, 'o', '-')
			b = w.appendYMD(b, e.origin)
			b = append(b, '-', e.stream)
			oid.data = strconv.AppendUint(b, uint64(e.seq), 10)
			oid.end(true)
		case typeRefund:
			b := append(oid.data, 'o', '-')
			b = w.appendYMD(b, e.origin-features.Date(e.refBack))
			b = append(b, '-', idMain)
			oid.data = strconv.AppendUint(b, uint64(e.ref), 10)
			oid.end(true)
		default:
			oid.end(false)
		}
		amt.append(int64(e.amount), e.amount >= 0)
		cty.append(e.country-1, e.country != 0)
	}

	var uid arrow.Array
	if version == 1 {
		uid = uidInt.array()
	} else {
		uid = uidStr.array()
	}
	cols := []arrow.Array{
		eid.array(),
		makeArray(tsType, n, 0, nil, arrow.Int64Traits.CastToBytes(ts)),
		makeArray(arrow.PrimitiveTypes.Int32, n, 0, nil, arrow.Int32Traits.CastToBytes(sv)),
		uid,
		typ.dictArray(typeDict), ch.dictArray(channelDict),
		oid.array(), amt.array(), cty.dictArray(countryDict),
	}
	rec := array.NewRecordBatch(schemas[version], cols, int64(n))
	for _, c := range cols {
		c.Release()
	}
	return rec
}

// makeArray wraps Go slices as an Arrow array (buffers: validity, then the
// type's own); valid may be nil when nulls is 0.
func makeArray(dt arrow.DataType, n, nulls int, valid []byte, bufs ...[]byte) arrow.Array {
	buffers := []*memory.Buffer{nil}
	if valid != nil {
		buffers[0] = memory.NewBufferBytes(valid)
	}
	for _, b := range bufs {
		buffers = append(buffers, memory.NewBufferBytes(b))
	}
	data := array.NewData(dt, n, buffers, nil, nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// bitmap is an Arrow validity bitmap under construction.
type bitmap struct {
	bits  []byte
	n     int
	nulls int
}

func newBitmap(n int) bitmap { return bitmap{bits: make([]byte, (n+7)/8)} }

func (b *bitmap) append(ok bool) {
	if ok {
		b.bits[b.n>>3] |= 1 << (b.n & 7)
	} else {
		b.nulls++
	}
	b.n++
}

// stringColumn is a utf8 column under construction: append the value's
// bytes to data, then call end.
type stringColumn struct {
	offsets []int32
	data    []byte
	valid   bitmap
}

func newStringColumn(n, avg int) *stringColumn {
	c := &stringColumn{offsets: make([]int32, 1, n+1), data: make([]byte, 0, n*avg), valid: newBitmap(n)}
	return c
}

func (c *stringColumn) end(ok bool) {
	c.offsets = append(c.offsets, int32(len(c.data)))
	c.valid.append(ok)
}

func (c *stringColumn) array() arrow.Array {
	return makeArray(arrow.BinaryTypes.String, c.valid.n, c.valid.nulls, c.valid.bits,
		arrow.Int32Traits.CastToBytes(c.offsets), c.data)
}

// int64Column is a nullable int64 column under construction; null slots hold 0.
type int64Column struct {
	vals  []int64
	valid bitmap
}

func newInt64Column(n int) *int64Column {
	return &int64Column{vals: make([]int64, 0, n), valid: newBitmap(n)}
}

func (c *int64Column) append(v int64, ok bool) {
	if !ok {
		v = 0
	}
	c.vals = append(c.vals, v)
	c.valid.append(ok)
}

func (c *int64Column) array() arrow.Array {
	return makeArray(arrow.PrimitiveTypes.Int64, c.valid.n, c.valid.nulls, c.valid.bits, arrow.Int64Traits.CastToBytes(c.vals))
}

// indexColumn is a nullable int8 dictionary-index column under
// construction; null slots hold 0.
type indexColumn struct {
	vals  []byte
	valid bitmap
}

func newIndexColumn(n int) *indexColumn {
	return &indexColumn{vals: make([]byte, 0, n), valid: newBitmap(n)}
}

func (c *indexColumn) append(v uint8, ok bool) {
	if !ok {
		v = 0
	}
	c.vals = append(c.vals, v)
	c.valid.append(ok)
}

func (c *indexColumn) dictArray(dict arrow.Array) arrow.Array {
	idx := makeArray(arrow.PrimitiveTypes.Int8, c.valid.n, c.valid.nulls, c.valid.bits, c.vals)
	defer idx.Release()
	return array.NewDictionaryArray(lowCard, idx, dict)
}

// writeFile encodes rows as one Parquet file in memory and publishes it;
// nothing is published when encoding fails.
func (w *worker) writeFile(ctx context.Context, store objstore.Store, p *plan, spec fileSpec, rows []int32, evs []event) (int64, error) {
	w.buf.Reset()
	fw, err := pqarrow.NewFileWriter(schemas[spec.version], &w.buf, writerProps, arrowProps)
	if err != nil {
		return 0, fmt.Errorf("synth: %s: %w", spec.name, err)
	}
	for off := 0; off < len(rows); off += rowGroupRows {
		rec := w.record(p, spec.version, rows[off:min(off+rowGroupRows, len(rows))], evs)
		err := fw.Write(rec)
		rec.Release()
		if err != nil {
			fw.Close()
			return 0, fmt.Errorf("synth: encode %s: %w", spec.name, err)
		}
	}
	if err := fw.Close(); err != nil {
		return 0, fmt.Errorf("synth: encode %s: %w", spec.name, err)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	out, err := store.Create(ctx, spec.name)
	if err != nil {
		return 0, fmt.Errorf("synth: %w", err)
	}
	if _, err := out.Write(w.buf.Bytes()); err != nil {
		// Not closed on purpose: Close would publish a partial object.
		return 0, fmt.Errorf("synth: write %s: %w", store.URL(spec.name), err)
	}
	if err := out.Close(); err != nil {
		return 0, fmt.Errorf("synth: publish %s: %w", store.URL(spec.name), err)
	}
	return int64(w.buf.Len()), nil
}

func (p *plan) writeDay(ctx context.Context, store objstore.Store, w *worker, d features.Date) (DayStats, error) {
	st := DayStats{Day: d}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	evs := p.dayEvents(w, d)
	specs := p.fileSpecs(d)
	idx, offsets := p.layout(w, d, evs, specs)
	for f, spec := range specs {
		n, err := w.writeFile(ctx, store, p, spec, idx[offsets[f]:offsets[f+1]], evs)
		if err != nil {
			return st, err
		}
		st.Files++
		st.Bytes += n
	}
	st.Events = len(evs)
	return st, nil
}

// Generate writes the day folders From..To under the store's root as
// dt=YYYY-MM-DD/part-NNNNN-v1.parquet or ...-v2.parquet, one day per
// goroutine on up to runtime.NumCPU() goroutines. A day's rows depend only
// on cfg (not on which days are generated alongside it, apart from the
// choice of heavy days), so runs are reproducible and restartable.
//
// onDay, when not nil, is called once per finished day, never concurrently,
// in completion order. The returned stats are sorted by day; on error they
// hold the days completed before it.
func Generate(ctx context.Context, store objstore.Store, cfg Config, onDay func(DayStats)) ([]DayStats, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	days := features.DaysBetween(cfg.From, cfg.To)
	// Biggest days first, so a heavy day does not finish last alone.
	order := slices.Clone(days)
	slices.SortStableFunc(order, func(a, b features.Date) int {
		sa, sb := p.sessions(a), p.sessions(b)
		return sb - sa
	})

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan features.Date)
	results := make(chan DayStats)
	var wg sync.WaitGroup
	for range min(runtime.NumCPU(), len(days)) {
		wg.Go(func() {
			w := new(worker)
			for d := range jobs {
				st, err := p.writeDay(ctx, store, w, d)
				if err != nil {
					cancel(fmt.Errorf("day %s: %w", d, err))
					return
				}
				select {
				case results <- st:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		defer close(jobs)
		for _, d := range order {
			select {
			case jobs <- d:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()

	out := make([]DayStats, 0, len(days))
	for st := range results {
		out = append(out, st)
		if onDay != nil {
			onDay(st)
		}
	}
	slices.SortFunc(out, func(a, b DayStats) int { return int(a.Day - b.Day) })
	if err := context.Cause(ctx); err != nil {
		return out, err
	}
	return out, nil
}
