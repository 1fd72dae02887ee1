package validate

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/icefill/icefill/internal/errkind"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
)

// Options of Compare.
type Options struct {
	// Base and Candidate are refs: branch or tag names, or snapshot ids.
	Base, Candidate string
	// From and To limit both refs to event_date in [From, To] (either may
	// be nil: open-ended).
	From, To *features.Date
	// Expected declares the intended differences and rule overrides; nil
	// declares none (every difference beyond the rule fails).
	Expected *Expected
	// Sample is how many differing keys to show: 0 means DefaultSample, a
	// negative number none.
	Sample int
	// Workers is how many partitions are joined at once; 0 means
	// min(GOMAXPROCS, 4).
	Workers int
}

// ErrBadOptions is wrapped by the errors of Compare that come from its
// options (an unknown ref, an inverted range), as opposed to failures to
// read the table.
var ErrBadOptions = errkind.UsageError(errors.New("invalid comparison options"))

type optionsError struct{ err error }

func (e optionsError) Error() string   { return e.err.Error() }
func (e optionsError) Unwrap() []error { return []error{e.err, ErrBadOptions} }

func badOptions(err error) error { return optionsError{err} }

// DefaultSample is the number of differing keys shown by default.
const DefaultSample = 20

// exampleLimit is how many example keys an invariant violation lists.
const exampleLimit = 5

// Compare compares two refs of the table over a date range and judges the
// differences:
//   - partitions present on one side only (fail unless declared);
//   - rows and the sums of orders, gross, refund and net revenue by
//     overall, event_date, month, country and channel: a metric passes when
//     at least GroupShare of a dimension's groups differ by less than
//     Tolerance, a declared group within its direction and bound is
//     expected, a group outside its declaration fails;
//   - the null rate of every column; new and dropped columns apart;
//   - the customer lifetime value distribution (p50, p90, p99, KS);
//   - invariants of the candidate (always fail when violated);
//   - a deterministic sample of differing keys.
//
// It reads every data file of each ref once: the files are grouped by
// partition, and each partition's base rows are held in a hash map while
// the candidate's rows stream past them, feeding every accumulator
// (partition, dimension group, customer, null counts, key uniqueness,
// differing keys) in the same pass. Memory is one partition's base rows per
// worker plus one entry per customer. Nothing is written.
func Compare(ctx context.Context, tbl *table.Table, opts Options) (*Report, error) {
	start := time.Now()
	if opts.Base == "" || opts.Candidate == "" {
		return nil, badOptions(fmt.Errorf("compare: both a base and a candidate ref are required"))
	}
	if opts.From != nil && opts.To != nil && *opts.To < *opts.From {
		return nil, badOptions(fmt.Errorf("compare: range end %s is before its start %s", *opts.To, *opts.From))
	}
	baseSnap, err := ResolveRef(tbl, opts.Base)
	if err != nil {
		return nil, badOptions(fmt.Errorf("base: %w", err))
	}
	candSnap, err := ResolveRef(tbl, opts.Candidate)
	if err != nil {
		return nil, badOptions(fmt.Errorf("candidate: %w", err))
	}
	sample := opts.Sample
	if sample == 0 {
		sample = DefaultSample
	}
	sample = max(sample, 0)
	workers := opts.Workers
	if workers <= 0 {
		workers = min(runtime.GOMAXPROCS(0), 4)
	}

	sides := [2]*sideScan{
		{ref: opts.Base, snap: baseSnap.SnapshotID},
		{ref: opts.Candidate, snap: candSnap.SnapshotID},
	}
	for _, s := range sides {
		if err := s.plan(ctx, tbl, opts.From, opts.To); err != nil {
			return nil, readErr(err)
		}
	}
	groups := groupByPartition(tbl, sides[0].tasks, sides[1].tasks)

	// Join the partitions, a few at a time.
	work := make(chan *taskGroup)
	accs := make([]*accumulator, workers)
	errs := make([]error, workers)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := range accs {
		accs[w] = newAccumulator(sample)
		wg.Add(1)
		go func() {
			defer wg.Done()
			scans := [2]*table.Scan{sides[0].newScan(tbl), sides[1].newScan(tbl)}
			for g := range work {
				if errs[w] != nil {
					continue
				}
				if err := accs[w].partition(ctx, scans, sides, g); err != nil {
					errs[w] = err
					cancel()
				}
			}
		}()
	}
feed:
	for _, g := range groups {
		select {
		case work <- g:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, readErr(err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, a := range accs {
		a.finish()
	}
	acc := accs[0]
	for _, a := range accs[1:] {
		acc.merge(a)
	}

	r := &Report{
		Base: opts.Base, Candidate: opts.Candidate,
		BaseSnapshot: baseSnap.SnapshotID, CandidateSnapshot: candSnap.SnapshotID,
	}
	if opts.From != nil {
		r.From = opts.From.String()
	}
	if opts.To != nil {
		r.To = opts.To.String()
	}
	if opts.Expected != nil {
		r.ExpectedFile = opts.Expected.Path
	}
	buildReport(r, acc, sides, opts.Expected, sample)
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// sideScan is one ref's scan plan.
type sideScan struct {
	ref     string
	snap    int64
	filter  iceberg.BooleanExpression
	tasks   []table.FileScanTask
	columns []string // top-level columns of the ref's schema
}

func (s *sideScan) scanOptions() []table.ScanOption {
	o := []table.ScanOption{table.WithSnapshotID(s.snap)}
	if s.filter != nil {
		o = append(o, table.WithRowFilter(s.filter))
	}
	return o
}

func (s *sideScan) newScan(tbl *table.Table) *table.Scan { return tbl.Scan(s.scanOptions()...) }

func (s *sideScan) plan(ctx context.Context, tbl *table.Table, from, to *features.Date) error {
	date := iceberg.Reference(features.OutEventDate)
	switch {
	case from != nil && to != nil:
		s.filter = iceberg.NewAnd(iceberg.GreaterThanEqual(date, iceberg.Date(*from)), iceberg.LessThanEqual(date, iceberg.Date(*to)))
	case from != nil:
		s.filter = iceberg.GreaterThanEqual(date, iceberg.Date(*from))
	case to != nil:
		s.filter = iceberg.LessThanEqual(date, iceberg.Date(*to))
	}
	scan := s.newScan(tbl)
	sch, err := scan.Projection()
	if err != nil {
		return fmt.Errorf("schema of %s: %w", s.ref, err)
	}
	for _, f := range sch.Fields() {
		s.columns = append(s.columns, f.Name)
	}
	for _, need := range []string{features.OutEventDate, features.OutCustomerID, features.OutChannel} {
		if !slices.Contains(s.columns, need) {
			return fmt.Errorf("ref %s has no column %s", s.ref, need)
		}
	}
	if s.tasks, err = scan.PlanFiles(ctx); err != nil {
		return fmt.Errorf("plan files of %s: %w", s.ref, err)
	}
	return nil
}

// taskGroup holds both refs' files of one partition.
type taskGroup struct {
	tasks [2][]table.FileScanTask
}

// groupByPartition groups the files of both refs by their event_date
// partition value. Keys include the date, so the grouping only bounds
// memory; if some file's partition value is unknown (another spec), every
// file goes into one group, which is still correct.
func groupByPartition(tbl *table.Table, base, cand []table.FileScanTask) []*taskGroup {
	byDay := map[iceberg.Date]*taskGroup{}
	md := tbl.Metadata()
	fieldIDs := map[int]int{} // spec id → partition field id of event_date, -1 none
	dayOf := func(t table.FileScanTask) (iceberg.Date, bool) {
		specID := int(t.File.SpecID())
		fid, ok := fieldIDs[specID]
		if !ok {
			fid = -1
			if spec := md.PartitionSpecByID(specID); spec != nil {
				if src, ok := tbl.Schema().FindFieldByName(features.OutEventDate); ok {
					for _, f := range spec.Fields() {
						if len(f.SourceIDs) == 1 && f.SourceIDs[0] == src.ID {
							if _, ok := f.Transform.(iceberg.IdentityTransform); ok {
								fid = f.FieldID
							}
						}
					}
				}
			}
			fieldIDs[specID] = fid
		}
		if fid < 0 {
			return 0, false
		}
		d, ok := t.File.Partition()[fid].(iceberg.Date)
		return d, ok
	}
	for side, tasks := range [2][]table.FileScanTask{base, cand} {
		for _, t := range tasks {
			d, ok := dayOf(t)
			if !ok {
				all := &taskGroup{tasks: [2][]table.FileScanTask{base, cand}}
				return []*taskGroup{all}
			}
			g := byDay[d]
			if g == nil {
				g = &taskGroup{}
				byDay[d] = g
			}
			g.tasks[side] = append(g.tasks[side], t)
		}
	}
	days := make([]iceberg.Date, 0, len(byDay))
	for d := range byDay {
		days = append(days, d)
	}
	slices.Sort(days)
	out := make([]*taskGroup, len(days))
	for i, d := range days {
		out[i] = byDay[d]
	}
	return out
}

// Value columns compared between the refs, in mask bit order.
var valueColumns = []string{
	features.OutOrders, features.OutGrossRevenueCents, features.OutRefundCents, features.OutNetRevenueCents,
	features.OutCountry, features.OutTouches7d, features.OutDistinctChannels7d, features.OutAvgHoursToConvert,
}

const (
	colOrders = iota
	colGross
	colRefund
	colNet
	colCountry
	colTouches
	colDistinct
	colAvg
	nValueCols
	maskOnlyBase = 1 << nValueCols
	maskOnlyCand = 1 << (nValueCols + 1)
)

// custKey is a customer id without pointers (maps of it are not scanned
// by the garbage collector): the 16 bytes of a canonical lower-case UUID,
// or, for any other text (odd), the first 16 bytes of its SHA-256.
type custKey struct {
	u   [16]byte
	odd bool
}

func (c custKey) uuid() string {
	const hexd = "0123456789abcdef"
	var b [36]byte
	j := 0
	for i, x := range c.u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b[j] = '-'
			j++
		}
		b[j], b[j+1] = hexd[x>>4], hexd[x&15]
		j += 2
	}
	return string(b[:])
}

// hexVal maps lower-case hex digits to their value, anything else to 0xff.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	return
}()

// parseCustomer reads a canonical lower-case UUID; ok is false otherwise.
func parseCustomer(s string) (k custKey, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return k, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i--
			continue
		}
		hi, lo := hexVal[s[i]], hexVal[s[i+1]]
		if hi > 15 || lo > 15 {
			return k, false
		}
		k.u[j] = hi<<4 | lo
		j++
	}
	return k, true
}

// rowKey is the table's key within one worker: channel is the worker's
// interned id. Pointer-free.
type rowKey struct {
	date    int32
	channel uint32
	cust    custKey
}

// sampleKey is a key resolved to text, comparable across workers.
type sampleKey struct {
	date     int32
	customer string
	channel  string
}

func (k sampleKey) less(o sampleKey) bool {
	if k.date != o.date {
		return k.date < o.date
	}
	if k.customer != o.customer {
		return k.customer < o.customer
	}
	return k.channel < o.channel
}

func (k sampleKey) String() string {
	return features.Date(k.date).String() + " " + k.customer + " " + k.channel
}

// keyHash is FNV-1a (64 bit) of the key (date, the customer's 16 bytes,
// the channel's text): stable across runs, machines and workers, so the
// "smallest keys by hash" sample is deterministic.
func keyHash(date int32, cust custKey, channel string) uint64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < 4; i++ {
		h = (h ^ uint64(byte(date>>(8*i)))) * prime
	}
	for _, b := range cust.u {
		h = (h ^ uint64(b)) * prime
	}
	if cust.odd {
		h = (h ^ 1) * prime
	}
	for i := 0; i < len(channel); i++ {
		h = (h ^ uint64(channel[i])) * prime
	}
	return h
}

// rowVals are a row's values; valid has bit i set when valueColumns[i] is
// not null. country is the worker's interned id.
type rowVals struct {
	orders, gross, refund, net, touches int64
	avg                                 float64
	country                             uint32
	distinct                            int32
	valid                               uint8
}

func (v *rowVals) ok(col int) bool { return v.valid&(1<<col) != 0 }

// diffMask has bit i set when valueColumns[i] differs (null vs value, or
// two different values).
func diffMask(a, b *rowVals) uint16 {
	m := uint16(a.valid ^ b.valid)
	both := a.valid & b.valid
	set := func(col int, differ bool) {
		if differ && both&(1<<col) != 0 {
			m |= 1 << col
		}
	}
	set(colOrders, a.orders != b.orders)
	set(colGross, a.gross != b.gross)
	set(colRefund, a.refund != b.refund)
	set(colNet, a.net != b.net)
	set(colCountry, a.country != b.country)
	set(colTouches, a.touches != b.touches)
	set(colDistinct, a.distinct != b.distinct)
	set(colAvg, a.avg != b.avg)
	return m
}

// sums are the additive metrics of a group, in additiveMetrics order.
type sums [5]int64

func (s *sums) add(v *rowVals) {
	s[0]++
	s[1] += v.orders
	s[2] += v.gross
	s[3] += v.refund
	s[4] += v.net
}

func (s *sums) addAll(o *sums) {
	for i := range s {
		s[i] += o[i]
	}
}

// interner numbers the distinct strings of a column (channels, countries:
// a handful), so rows carry small ids; small tables are searched linearly,
// which beats hashing.
type interner struct {
	strs []string
	ids  map[string]uint32
}

const linearIntern = 24

func (in *interner) id(s string) uint32 {
	if len(in.strs) <= linearIntern {
		for i, x := range in.strs {
			if x == s {
				return uint32(i)
			}
		}
	} else if id, ok := in.ids[s]; ok {
		return id
	}
	id := uint32(len(in.strs))
	c := strings.Clone(s)
	in.strs = append(in.strs, c)
	if in.ids == nil {
		in.ids = map[string]uint32{}
	}
	in.ids[c] = id
	return id
}

// sideAcc accumulates one ref.
type sideAcc struct {
	rows   int64
	byDate map[int32]*sums
	// byChannel and byCountry are indexed by the accumulator's interned ids
	// (country id+1, 0 for null) until finish turns them into maps.
	byChannelID, byCountryID []sums
	byCountry, byChannel     map[string]*sums
	nulls                    map[string]int64
	// Invariant violations: [0] duplicate keys, [1] net ≠ gross − refund,
	// [2+i] negative nonNegativeColumns[i].
	violations [2 + 4]int64
	examples   [2 + 4]*topN
}

func newSideAcc() *sideAcc {
	s := &sideAcc{byDate: map[int32]*sums{}, byCountry: map[string]*sums{}, byChannel: map[string]*sums{}, nulls: map[string]int64{}}
	for i := range s.examples {
		s.examples[i] = newTopN(exampleLimit)
	}
	return s
}

func at(s *[]sums, i uint32) *sums {
	for int(i) >= len(*s) {
		*s = append(*s, sums{})
	}
	return &(*s)[i]
}

func group(m map[string]*sums, k string) *sums {
	s := m[k]
	if s == nil {
		s = &sums{}
		m[k] = s
	}
	return s
}

// finish moves the id-indexed groups into the maps by name.
func (s *sideAcc) finish(channels, countries *interner) {
	for id := range s.byChannelID {
		if x := &s.byChannelID[id]; x[0] > 0 {
			group(s.byChannel, channels.strs[id]).addAll(x)
		}
	}
	for id := range s.byCountryID {
		if x := &s.byCountryID[id]; x[0] > 0 {
			name := NullGroup
			if id > 0 {
				name = countries.strs[id-1]
			}
			group(s.byCountry, name).addAll(x)
		}
	}
	s.byChannelID, s.byCountryID = nil, nil
}

func (s *sideAcc) merge(o *sideAcc) {
	s.rows += o.rows
	for k, v := range o.byDate {
		if s.byDate[k] == nil {
			s.byDate[k] = &sums{}
		}
		s.byDate[k].addAll(v)
	}
	for k, v := range o.byCountry {
		group(s.byCountry, k).addAll(v)
	}
	for k, v := range o.byChannel {
		group(s.byChannel, k).addAll(v)
	}
	for k, v := range o.nulls {
		s.nulls[k] += v
	}
	for i := range s.violations {
		s.violations[i] += o.violations[i]
		s.examples[i].merge(o.examples[i])
	}
}

// ltvAcc is a customer's lifetime value on each side.
type ltvAcc struct {
	v  [2]int64
	in [2]bool
}

// accumulator is one worker's state.
type accumulator struct {
	side      [2]*sideAcc
	ltvIdx    map[custKey]int32
	ltv       []ltvAcc
	oddNames  map[custKey]string // text of the non-UUID customer ids
	channels  interner
	countries interner
	common    int64
	only      [2]int64
	masks     map[uint16]int64 // differing common keys by diff mask
	samples   map[uint16]*topN // smallest-hash differing keys by mask
	sampleN   int
}

func newAccumulator(sample int) *accumulator {
	return &accumulator{side: [2]*sideAcc{newSideAcc(), newSideAcc()}, ltvIdx: map[custKey]int32{},
		oddNames: map[custKey]string{}, masks: map[uint16]int64{}, samples: map[uint16]*topN{}, sampleN: sample}
}

// finish readies a worker's accumulator for merging.
func (a *accumulator) finish() {
	a.side[0].finish(&a.channels, &a.countries)
	a.side[1].finish(&a.channels, &a.countries)
}

func (a *accumulator) merge(o *accumulator) {
	a.side[0].merge(o.side[0])
	a.side[1].merge(o.side[1])
	for k, i := range o.ltvIdx {
		v := o.ltv[i]
		if j, ok := a.ltvIdx[k]; ok {
			w := &a.ltv[j]
			for s := range 2 {
				w.v[s] += v.v[s]
				w.in[s] = w.in[s] || v.in[s]
			}
		} else {
			a.ltvIdx[k] = int32(len(a.ltv))
			a.ltv = append(a.ltv, v)
		}
	}
	a.common += o.common
	a.only[0] += o.only[0]
	a.only[1] += o.only[1]
	for m, n := range o.masks {
		a.masks[m] += n
	}
	for m, t := range o.samples {
		a.sampleHeap(m).merge(t)
	}
}

func (a *accumulator) sampleHeap(mask uint16) *topN {
	t := a.samples[mask]
	if t == nil {
		t = newTopN(a.sampleN)
		a.samples[mask] = t
	}
	return t
}

// customer returns the key of a customer id text.
func (a *accumulator) customer(s string) custKey {
	if k, ok := parseCustomer(s); ok {
		return k
	}
	sum := sha256.Sum256([]byte(s))
	k := custKey{odd: true}
	copy(k.u[:], sum[:16])
	if _, ok := a.oddNames[k]; !ok {
		a.oddNames[k] = strings.Clone(s)
	}
	return k
}

func (a *accumulator) customerText(k custKey) string {
	if k.odd {
		return a.oddNames[k]
	}
	return k.uuid()
}

// resolve turns a worker's key into text.
func (a *accumulator) resolve(k rowKey) sampleKey {
	return sampleKey{date: k.date, customer: a.customerText(k.cust), channel: a.channels.strs[k.channel]}
}

// offer puts a differing key into the sample heap of its mask.
func (a *accumulator) offer(mask uint16, k rowKey, base, cand *rowVals) {
	t := a.sampleHeap(mask)
	h := keyHash(k.date, k.cust, a.channels.strs[k.channel])
	if !t.wants(h) {
		return
	}
	t.add(sampleEntry{hash: h, key: a.resolve(k), mask: mask, base: a.rowValues(base), cand: a.rowValues(cand)})
}

// example records an invariant violation of side s (kind i) as an example.
func (a *accumulator) example(s *sideAcc, i int, k rowKey, note func() string) {
	s.violations[i]++
	t := s.examples[i]
	if h := keyHash(k.date, k.cust, a.channels.strs[k.channel]); t.wants(h) {
		t.add(sampleEntry{hash: h, key: a.resolve(k), note: note()})
	}
}

func (a *accumulator) rowValues(v *rowVals) *RowValues {
	if v == nil {
		return nil
	}
	out := &RowValues{}
	i := func(col int, x int64) *int64 {
		if !v.ok(col) {
			return nil
		}
		return &x
	}
	out.Orders, out.GrossRevenueCents, out.RefundCents, out.NetRevenueCents = i(colOrders, v.orders), i(colGross, v.gross), i(colRefund, v.refund), i(colNet, v.net)
	out.Touches7d = i(colTouches, v.touches)
	if v.ok(colCountry) {
		s := a.countries.strs[v.country]
		out.Country = &s
	}
	if v.ok(colDistinct) {
		d := v.distinct
		out.DistinctChannels7d = &d
	}
	if v.ok(colAvg) {
		x := v.avg
		out.AvgHoursToConvert = &x
	}
	return out
}

// partition joins one partition's rows of the two refs: the base rows are
// held in a map, the candidate's rows stream past them.
func (a *accumulator) partition(ctx context.Context, scans [2]*table.Scan, sides [2]*sideScan, g *taskGroup) error {
	// Size the maps from the files' row counts: no growth while filling.
	var rows [2]int64
	for side := range 2 {
		for _, t := range g.tasks[side] {
			rows[side] += t.File.Count()
		}
	}
	j := &join{held: make(map[rowKey]int32, rows[0]), rows: make([]baseEntry, 0, rows[0]),
		candOnly: make(map[rowKey]struct{}, max(rows[1]-rows[0], 0))}
	for side := range 2 {
		if len(g.tasks[side]) == 0 {
			continue
		}
		_, it, err := scans[side].ReadTasks(ctx, g.tasks[side])
		if err != nil {
			return fmt.Errorf("read %s: %w", sides[side].ref, err)
		}
		for rec, err := range it {
			if err != nil {
				return fmt.Errorf("read %s: %w", sides[side].ref, err)
			}
			err = a.record(side, rec, j)
			rec.Release()
			if err != nil {
				return fmt.Errorf("read %s: %w", sides[side].ref, err)
			}
		}
	}
	for k, i := range j.held {
		if e := &j.rows[i]; !e.seen {
			a.only[0]++
			if a.sampleN > 0 {
				a.offer(maskOnlyBase, k, &e.vals, nil)
			}
		}
	}
	return nil
}

// join is one partition's state.
type join struct {
	held     map[rowKey]int32 // index into rows
	rows     []baseEntry
	candOnly map[rowKey]struct{}
}

// baseEntry is a base row held while the candidate's rows stream past.
type baseEntry struct {
	vals rowVals
	seen bool
}

// columns of a record batch; nil when the batch lacks the column.
type batchCols struct {
	date                                *array.Date32
	cust, channel, country              *array.String
	orders, gross, refund, net, touches *array.Int64
	distinct                            *array.Int32
	avg                                 *array.Float64
}

func bindColumns(rec arrow.RecordBatch) (*batchCols, error) {
	var c batchCols
	sch := rec.Schema()
	var bad []string
	bind := func(name string, dst any) {
		idx := sch.FieldIndices(name)
		if len(idx) == 0 {
			return
		}
		col := rec.Column(idx[0])
		ok := true
		switch d := dst.(type) {
		case **array.Date32:
			*d, ok = col.(*array.Date32)
		case **array.String:
			*d, ok = col.(*array.String)
		case **array.Int64:
			*d, ok = col.(*array.Int64)
		case **array.Int32:
			*d, ok = col.(*array.Int32)
		case **array.Float64:
			*d, ok = col.(*array.Float64)
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%s is %s", name, col.DataType()))
		}
	}
	bind(features.OutEventDate, &c.date)
	bind(features.OutCustomerID, &c.cust)
	bind(features.OutChannel, &c.channel)
	bind(features.OutCountry, &c.country)
	bind(features.OutOrders, &c.orders)
	bind(features.OutGrossRevenueCents, &c.gross)
	bind(features.OutRefundCents, &c.refund)
	bind(features.OutNetRevenueCents, &c.net)
	bind(features.OutTouches7d, &c.touches)
	bind(features.OutDistinctChannels7d, &c.distinct)
	bind(features.OutAvgHoursToConvert, &c.avg)
	if len(bad) > 0 {
		return nil, errkind.Usagef("unexpected column types: %s", strings.Join(bad, ", "))
	}
	if c.date == nil || c.cust == nil || c.channel == nil {
		return nil, errkind.Usagef("batch lacks %s, %s or %s", features.OutEventDate, features.OutCustomerID, features.OutChannel)
	}
	return &c, nil
}

func i64(a *array.Int64, i int, v *int64, valid *uint8, col int) {
	if a != nil && a.IsValid(i) {
		*v = a.Value(i)
		*valid |= 1 << col
	}
}

func dupNote() string { return "key occurs more than once" }

// record feeds one batch of a side.
func (a *accumulator) record(side int, rec arrow.RecordBatch, j *join) error {
	c, err := bindColumns(rec)
	if err != nil {
		return err
	}
	s := a.side[side]
	n := int(rec.NumRows())
	s.rows += int64(n)
	for i, f := range rec.Schema().Fields() {
		s.nulls[f.Name] += int64(rec.Column(i).NullN())
	}
	var lastDate int32
	var lastSums *sums
	lastCust, lastLTV := custKey{}, int32(-1)
	for i := 0; i < n; i++ {
		if !c.date.IsValid(i) || !c.cust.IsValid(i) || !c.channel.IsValid(i) {
			return fmt.Errorf("row with a null key column (%s, %s, %s are required)", features.OutEventDate, features.OutCustomerID, features.OutChannel)
		}
		k := rowKey{date: int32(c.date.Value(i)), channel: a.channels.id(c.channel.Value(i)), cust: a.customer(c.cust.Value(i))}
		var v rowVals
		i64(c.orders, i, &v.orders, &v.valid, colOrders)
		i64(c.gross, i, &v.gross, &v.valid, colGross)
		i64(c.refund, i, &v.refund, &v.valid, colRefund)
		i64(c.net, i, &v.net, &v.valid, colNet)
		i64(c.touches, i, &v.touches, &v.valid, colTouches)
		countryIdx := uint32(0) // 0 is null
		if c.country != nil && c.country.IsValid(i) {
			v.country = a.countries.id(c.country.Value(i))
			v.valid |= 1 << colCountry
			countryIdx = v.country + 1
		}
		if c.distinct != nil && c.distinct.IsValid(i) {
			v.distinct = c.distinct.Value(i)
			v.valid |= 1 << colDistinct
		}
		if c.avg != nil && c.avg.IsValid(i) {
			v.avg = c.avg.Value(i)
			v.valid |= 1 << colAvg
		}

		// Groups.
		if lastSums == nil || k.date != lastDate {
			lastDate = k.date
			lastSums = s.byDate[k.date]
			if lastSums == nil {
				lastSums = &sums{}
				s.byDate[k.date] = lastSums
			}
		}
		lastSums.add(&v)
		at(&s.byCountryID, countryIdx).add(&v)
		at(&s.byChannelID, k.channel).add(&v)

		// Customer lifetime value (rows come sorted by customer: the
		// previous row's customer is the likeliest).
		if lastLTV < 0 || k.cust != lastCust {
			idx, ok := a.ltvIdx[k.cust]
			if !ok {
				idx = int32(len(a.ltv))
				a.ltv = append(a.ltv, ltvAcc{})
				a.ltvIdx[k.cust] = idx
			}
			lastCust, lastLTV = k.cust, idx
		}
		l := &a.ltv[lastLTV]
		l.v[side] += v.net
		l.in[side] = true

		// Invariants.
		if v.ok(colNet) && v.ok(colGross) && v.ok(colRefund) && v.net != v.gross-v.refund {
			a.example(s, 1, k, func() string {
				return fmt.Sprintf("net %d ≠ gross %d − refund %d", v.net, v.gross, v.refund)
			})
		}
		for x, val := range [4]struct {
			v  int64
			ok bool
		}{{v.orders, v.ok(colOrders)}, {v.refund, v.ok(colRefund)}, {v.touches, v.ok(colTouches)}, {int64(v.distinct), v.ok(colDistinct)}} {
			if val.ok && val.v < 0 {
				a.example(s, 2+x, k, func() string { return fmt.Sprintf("%s = %d", nonNegativeColumns[x], val.v) })
			}
		}

		// Join.
		if side == 0 {
			if _, dup := j.held[k]; dup {
				a.example(s, 0, k, dupNote)
				continue
			}
			j.held[k] = int32(len(j.rows))
			j.rows = append(j.rows, baseEntry{vals: v})
			continue
		}
		idx, inBase := j.held[k]
		if !inBase {
			if _, dup := j.candOnly[k]; dup {
				a.example(s, 0, k, dupNote)
				continue
			}
			j.candOnly[k] = struct{}{}
			a.only[1]++
			if a.sampleN > 0 {
				a.offer(maskOnlyCand, k, nil, &v)
			}
			continue
		}
		e := &j.rows[idx]
		if e.seen {
			a.example(s, 0, k, dupNote)
			continue
		}
		e.seen = true
		a.common++
		if m := diffMask(&e.vals, &v); m != 0 {
			a.masks[m]++
			if a.sampleN > 0 {
				a.offer(m, k, &e.vals, &v)
			}
		}
	}
	return nil
}

// topN keeps the n entries with the smallest key hashes (ties: key order).
type topN struct {
	n       int
	entries []sampleEntry
}

type sampleEntry struct {
	hash       uint64
	key        sampleKey
	mask       uint16
	base, cand *RowValues
	note       string
}

func newTopN(n int) *topN { return &topN{n: n} }

func before(a, b *sampleEntry) bool {
	if a.hash != b.hash {
		return a.hash < b.hash
	}
	return a.key.less(b.key)
}

// wants is a quick test: could an entry of hash h enter?
func (t *topN) wants(h uint64) bool {
	return t.n > 0 && (len(t.entries) < t.n || h <= t.entries[t.n-1].hash)
}

func (t *topN) add(e sampleEntry) {
	if t.n <= 0 {
		return
	}
	if len(t.entries) == t.n && !before(&e, &t.entries[t.n-1]) {
		return
	}
	i := sort.Search(len(t.entries), func(i int) bool { return before(&e, &t.entries[i]) })
	if len(t.entries) < t.n {
		t.entries = append(t.entries, sampleEntry{})
	}
	copy(t.entries[i+1:], t.entries[i:len(t.entries)-1])
	t.entries[i] = e
}

func (t *topN) merge(o *topN) {
	for _, e := range o.entries {
		t.add(e)
	}
}
