package synth

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/objstore"
)

// row is one source row as read back, nulls made explicit.
type row struct {
	dt      features.Date
	file    string
	pos     int
	version int // told by the Parquet type of user_id
	eventID string
	ts      int64
	sv      int32

	userNull bool
	userInt  int64
	userStr  string

	typ         string
	channel     string
	channelNull bool
	orderID     string
	orderNull   bool
	amount      int64
	amountNull  bool
	country     string
	countryNull bool
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// rejected applies the source contract's reject rules.
func (r row) rejected() bool {
	switch {
	case r.userNull:
		return true
	case r.typ != "touch" && r.typ != "order" && r.typ != "refund":
		return true
	case r.version == 2 && !uuidRE.MatchString(r.userStr):
		return true
	}
	return false
}

var v1Customers = map[int64]string{}

// customerID is the contract's customer_id ("" when user_id is null).
func customerID(r row) string {
	if r.userNull {
		return ""
	}
	if r.version == 1 {
		if c, ok := v1Customers[r.userInt]; ok {
			return c
		}
		c := string(appendUUIDv5(nil, userNamespace, []byte(userNamePrefix+strconv.FormatInt(r.userInt, 10))))
		v1Customers[r.userInt] = c
		return c
	}
	return strings.ToLower(r.userStr)
}

// content is what must be equal between copies of one event.
func (r row) content() string {
	amount := "null"
	if !r.amountNull {
		amount = strconv.FormatInt(r.amount, 10)
	}
	return fmt.Sprintf("%d|%s|%s|%v%s|%v%s|%s|%v%s", r.ts, customerID(r), r.typ,
		r.channelNull, r.channel, r.orderNull, r.orderID, amount, r.countryNull, r.country)
}

// fileInfo is what the tests check about a file beyond its rows.
type fileInfo struct {
	path        string
	arrow       *arrow.Schema
	userPhys    parquet.Type
	tsLogical   schema.LogicalType
	optional    bool // every column OPTIONAL
	codecs      map[compress.Compression]bool
	dictColumns map[string]bool
	rowGroups   []int64
}

func readFile(t testing.TB, store objstore.Store, path string) ([]row, fileInfo) {
	t.Helper()
	ctx := context.Background()
	f, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pf, err := file.NewParquetReader(io.NewSectionReader(f, 0, f.Size()))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer pf.Close()
	info := fileInfo{path: path, optional: true, codecs: map[compress.Compression]bool{}, dictColumns: map[string]bool{}}
	md := pf.MetaData()
	for i := 0; i < md.Schema.NumColumns(); i++ {
		c := md.Schema.Column(i)
		if c.SchemaNode().RepetitionType() != parquet.Repetitions.Optional {
			info.optional = false
		}
		switch c.Name() {
		case "user_id":
			info.userPhys = c.PhysicalType()
		case "event_ts":
			info.tsLogical = c.LogicalType()
		}
	}
	for g := 0; g < md.NumRowGroups(); g++ {
		rg := md.RowGroup(g)
		info.rowGroups = append(info.rowGroups, rg.NumRows())
		for i := 0; i < md.Schema.NumColumns(); i++ {
			cc, err := rg.ColumnChunk(i)
			if err != nil {
				t.Fatal(err)
			}
			info.codecs[cc.Compression()] = true
			if slices.Contains(cc.Encodings(), parquet.Encodings.RLEDict) || slices.Contains(cc.Encodings(), parquet.Encodings.PlainDict) {
				info.dictColumns[md.Schema.Column(i).Name()] = true
			}
		}
	}

	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := fr.ReadTable(ctx)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	defer tbl.Release()
	info.arrow = tbl.Schema()
	dt, err := features.ParseDate(strings.TrimPrefix(strings.Split(path, "/")[0], "dt="))
	if err != nil {
		t.Fatal(err)
	}
	var rows []row
	tr := array.NewTableReader(tbl, 1<<16)
	defer tr.Release()
	for tr.Next() {
		rec := tr.RecordBatch()
		col := func(name string) arrow.Array {
			idx := rec.Schema().FieldIndices(name)
			if len(idx) != 1 {
				t.Fatalf("%s: no column %s", path, name)
			}
			return rec.Column(idx[0])
		}
		eid := col("event_id").(*array.String)
		ts := col("event_ts").(*array.Timestamp)
		sv := col("schema_version").(*array.Int32)
		typ := col("event_type").(*array.String)
		ch := col("channel").(*array.String)
		oid := col("order_id").(*array.String)
		amt := col("amount_cents").(*array.Int64)
		cty := col("country").(*array.String)
		uid := col("user_id")
		for i := 0; i < int(rec.NumRows()); i++ {
			if eid.IsNull(i) || ts.IsNull(i) || sv.IsNull(i) || typ.IsNull(i) {
				t.Fatalf("%s row %d: null event_id/event_ts/schema_version/event_type", path, i)
			}
			r := row{dt: dt, file: path, pos: len(rows), eventID: eid.Value(i), ts: int64(ts.Value(i)), sv: sv.Value(i),
				typ: typ.Value(i), channel: ch.Value(i), channelNull: ch.IsNull(i),
				orderID: oid.Value(i), orderNull: oid.IsNull(i),
				amount: amt.Value(i), amountNull: amt.IsNull(i),
				country: cty.Value(i), countryNull: cty.IsNull(i),
				userNull: uid.IsNull(i)}
			switch u := uid.(type) {
			case *array.Int64:
				r.version, r.userInt = 1, u.Value(i)
			case *array.String:
				r.version, r.userStr = 2, u.Value(i)
			default:
				t.Fatalf("%s: user_id is %s", path, uid.DataType())
			}
			rows = append(rows, r)
		}
	}
	return rows, info
}

// source is a generated source read back.
type source struct {
	cfg   Config
	stats []DayStats
	files map[features.Date][]fileInfo
	rows  map[features.Date][]row
	bytes map[string][]byte // raw file content by path
}

func generate(t testing.TB, cfg Config) *source {
	t.Helper()
	store, err := objstore.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var running, calls atomic.Int32
	stats, err := Generate(context.Background(), store, cfg, func(DayStats) {
		if running.Add(1) != 1 {
			t.Error("onDay called concurrently")
		}
		calls.Add(1)
		running.Add(-1)
	})
	if err != nil {
		t.Fatal(err)
	}
	if int(calls.Load()) != len(stats) {
		t.Errorf("onDay called %d times for %d days", calls.Load(), len(stats))
	}
	s := &source{cfg: cfg, stats: stats, files: map[features.Date][]fileInfo{}, rows: map[features.Date][]row{}, bytes: map[string][]byte{}}
	objs, err := store.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		rows, info := readFile(t, store, o.Path)
		d := rows0Day(t, o.Path)
		s.files[d] = append(s.files[d], info)
		s.rows[d] = append(s.rows[d], rows...)
		f, err := store.Open(context.Background(), o.Path)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, f.Size())
		if _, err := f.ReadAt(b, 0); err != nil && err != io.EOF {
			t.Fatal(err)
		}
		f.Close()
		s.bytes[o.Path] = b
	}
	return s
}

func rows0Day(t testing.TB, path string) features.Date {
	d, err := features.ParseDate(strings.TrimPrefix(strings.Split(path, "/")[0], "dt="))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (s *source) all() []row {
	var out []row
	for _, d := range features.DaysBetween(s.cfg.From, s.cfg.To) {
		out = append(out, s.rows[d]...)
	}
	return out
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func inRange(t *testing.T, what string, got, lo, hi float64) {
	t.Helper()
	if got < lo || got > hi {
		t.Errorf("%s = %.4f, want %.4f..%.4f", what, got, lo, hi)
	} else {
		t.Logf("%s = %.4f", what, got)
	}
}

var (
	day0    = features.MustParseDate("2024-03-01")
	baseCfg = Config{
		From: day0, To: day0.AddDays(13), EventsPerDay: 4000, Seed: 42,
		V2From: day0.AddDays(7), FilesPerDay: 3,
	}
)

func TestUUIDv5(t *testing.T) {
	// python3 -c "import uuid;print(uuid.uuid5(uuid.NAMESPACE_URL,'urn:clv:user:42'))"
	tests := []struct{ name, want string }{
		{"urn:clv:user:42", "dcedccc5-b77a-5478-8896-cecf3531a00e"},
		{"urn:clv:user:10000042", "674398ce-dd33-5ec8-9887-4be7555e3956"},
	}
	for _, tt := range tests {
		if got := string(appendUUIDv5(nil, userNamespace, []byte(tt.name))); got != tt.want {
			t.Errorf("uuid5(%q) = %s, want %s", tt.name, got, tt.want)
		}
	}
}

func TestAppendYMD(t *testing.T) {
	w := new(worker)
	for d := features.MustParseDate("1970-01-01"); d < features.MustParseDate("2101-01-01"); d += 17 {
		want := d.Time().Format("20060102")
		if got := string(w.appendYMD(nil, d)); got != want {
			t.Fatalf("appendYMD(%s) = %s, want %s", d, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"to before from", Config{From: day0, To: day0 - 1, EventsPerDay: 10}},
		{"no events", Config{From: day0, To: day0, EventsPerDay: 0}},
		{"negative files", Config{From: day0, To: day0, EventsPerDay: 10, FilesPerDay: -1}},
		{"too many files", Config{From: day0, To: day0, EventsPerDay: 10, FilesPerDay: 100_000}},
		{"negative customers", Config{From: day0, To: day0, EventsPerDay: 10, Customers: -5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, _ := objstore.NewLocal(t.TempDir())
			if _, err := Generate(context.Background(), store, tt.cfg, nil); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestV2From(t *testing.T) {
	from := day0
	tests := []struct {
		name   string
		v2From features.Date
		want   []string // versions per day: "1", "2" or "12"
	}{
		{"zero value", 0, []string{"2", "2", "2"}},
		{"before from", from - 5, []string{"2", "2", "2"}},
		{"on from", from, []string{"12", "2", "2"}},
		{"middle", from + 1, []string{"1", "12", "2"}},
		{"on to", from + 2, []string{"1", "1", "12"}},
		{"after to", from + 3, []string{"1", "1", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := generate(t, Config{From: from, To: from + 2, EventsPerDay: 300, Seed: 1, V2From: tt.v2From, FilesPerDay: 2})
			for i, d := range features.DaysBetween(from, from+2) {
				var got []string
				for _, f := range s.files[d] {
					v := strings.TrimSuffix(f.path[strings.LastIndex(f.path, "-v")+2:], ".parquet")
					if f.arrow.Field(3).Type.ID() == arrow.INT64 != (v == "1") {
						t.Errorf("%s: user_id type %s in a v%s file", f.path, f.arrow.Field(3).Type, v)
					}
					if !slices.Contains(got, v) {
						got = append(got, v)
					}
				}
				if g := strings.Join(got, ""); g != tt.want[i] {
					t.Errorf("%s: versions %q, want %q", d, g, tt.want[i])
				}
				for _, r := range s.rows[d] {
					if int(r.sv) != r.version {
						t.Fatalf("%s: schema_version %d in a v%d file", r.file, r.sv, r.version)
					}
				}
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	cfg := Config{From: day0, To: day0 + 4, EventsPerDay: 1500, Seed: 7, V2From: day0 + 2}
	a, b := generate(t, cfg), generate(t, cfg)
	if len(a.bytes) == 0 || len(a.bytes) != len(b.bytes) {
		t.Fatalf("file counts %d and %d", len(a.bytes), len(b.bytes))
	}
	for p, ab := range a.bytes {
		if !bytes.Equal(ab, b.bytes[p]) {
			t.Errorf("%s differs between two runs", p)
		}
	}
	for _, d := range features.DaysBetween(cfg.From, cfg.To) {
		if !slices.EqualFunc(a.rows[d], b.rows[d], func(x, y row) bool { return x == y }) {
			t.Errorf("%s: rows differ", d)
		}
	}
	if !slices.Equal(a.stats, b.stats) {
		t.Errorf("stats differ: %v vs %v", a.stats, b.stats)
	}
	cfg.Seed++
	c := generate(t, cfg)
	if bytes.Equal(a.bytes["dt=2024-03-01/part-00000-v1.parquet"], c.bytes["dt=2024-03-01/part-00000-v1.parquet"]) {
		t.Error("another seed gave the same file")
	}
}

// A day's folder does not depend on which other days are generated.
func TestRangeIndependence(t *testing.T) {
	cfg := Config{From: day0, To: day0 + 6, EventsPerDay: 1500, Seed: 9, V2From: day0 + 4, HeavyDays: -1}
	whole := generate(t, cfg)
	cfg.From, cfg.To = day0+3, day0+4
	part := generate(t, cfg)
	if len(part.bytes) == 0 {
		t.Fatal("nothing generated")
	}
	for p, b := range part.bytes {
		if !bytes.Equal(b, whole.bytes[p]) {
			t.Errorf("%s differs when generated alone", p)
		}
	}
}

func TestRejectRate(t *testing.T) {
	d := day0 + 20
	s := generate(t, Config{From: d, To: d, EventsPerDay: 50_000, Seed: 3, V2From: d})
	rows := s.rows[d]
	rejects := 0
	for _, r := range rows {
		if r.rejected() {
			rejects++
		}
	}
	rate := share(rejects, len(rows))
	t.Logf("%d rejects in %d rows (%.4f%%)", rejects, len(rows), 100*rate)
	if rejects == 0 || rate >= 0.001 {
		t.Errorf("reject rate %.5f, want > 0 and < 0.001", rate)
	}
}

// TestSource checks the realism the CLV logic depends on, on one 14-day
// source with the v1->v2 switch in the middle.
func TestSource(t *testing.T) {
	s := generate(t, baseCfg)
	days := features.DaysBetween(baseCfg.From, baseCfg.To)
	all := s.all()
	if len(all) == 0 {
		t.Fatal("no rows")
	}
	var good []row
	for _, r := range all {
		if !r.rejected() {
			good = append(good, r)
		}
	}

	t.Run("files and stats", func(t *testing.T) {
		if len(s.stats) != len(days) {
			t.Fatalf("%d stats for %d days", len(s.stats), len(days))
		}
		for i, st := range s.stats {
			d := days[i]
			if st.Day != d {
				t.Fatalf("stats[%d] is %s, want %s", i, st.Day, d)
			}
			var size int64
			for _, f := range s.files[d] {
				size += int64(len(s.bytes[f.path]))
				if !regexp.MustCompile(`^dt=\d{4}-\d\d-\d\d/part-\d{5}-v[12]\.parquet$`).MatchString(f.path) {
					t.Errorf("bad name %s", f.path)
				}
			}
			if st.Files != len(s.files[d]) || st.Events != len(s.rows[d]) || st.Bytes != size {
				t.Errorf("%s: stats %+v, found %d files, %d rows, %d bytes", d, st, len(s.files[d]), len(s.rows[d]), size)
			}
			if st.Files != 3 { // on the switch day: one v1 file and two v2 files
				t.Errorf("%s: %d files", d, st.Files)
			}
		}
	})

	t.Run("schema", func(t *testing.T) {
		for _, d := range days {
			for _, f := range s.files[d] {
				if !f.optional {
					t.Errorf("%s: not every column is optional", f.path)
				}
				for _, fld := range f.arrow.Fields() {
					if !fld.Nullable {
						t.Errorf("%s: %s not nullable", f.path, fld.Name)
					}
				}
				ts, ok := f.arrow.Field(1).Type.(*arrow.TimestampType)
				if !ok || ts.Unit != arrow.Microsecond || ts.TimeZone != "UTC" {
					t.Errorf("%s: event_ts is %s", f.path, f.arrow.Field(1).Type)
				}
				tl, ok := f.tsLogical.(schema.TimestampLogicalType)
				if !ok || !tl.IsAdjustedToUTC() || tl.TimeUnit() != schema.TimeUnitMicros {
					t.Errorf("%s: event_ts logical type %v", f.path, f.tsLogical)
				}
				wantPhys := parquet.Types.Int64
				if strings.HasSuffix(f.path, "v2.parquet") {
					wantPhys = parquet.Types.ByteArray
				}
				if f.userPhys != wantPhys {
					t.Errorf("%s: user_id physical type %s", f.path, f.userPhys)
				}
				if len(f.codecs) != 1 || !f.codecs[compress.Codecs.Snappy] {
					t.Errorf("%s: codecs %v", f.path, f.codecs)
				}
				for _, c := range []string{"event_type", "channel", "country"} {
					if !f.dictColumns[c] {
						t.Errorf("%s: %s not dictionary encoded", f.path, c)
					}
				}
				if f.dictColumns["event_id"] {
					t.Errorf("%s: event_id dictionary encoded", f.path)
				}
			}
		}
	})

	t.Run("versions", func(t *testing.T) {
		for _, d := range days {
			vs := map[int]bool{}
			for _, r := range s.rows[d] {
				vs[r.version] = true
			}
			switch {
			case d < baseCfg.V2From && (!vs[1] || vs[2]),
				d == baseCfg.V2From && (!vs[1] || !vs[2]),
				d > baseCfg.V2From && (vs[1] || !vs[2]):
				t.Errorf("%s: versions %v", d, vs)
			}
		}
		// The same people appear before and after the switch.
		before, after := map[string]bool{}, map[string]bool{}
		for _, r := range good {
			if r.version == 1 {
				before[customerID(r)] = true
			} else {
				after[customerID(r)] = true
			}
		}
		both := 0
		for c := range after {
			if before[c] {
				both++
			}
		}
		inRange(t, "v2 customers also seen in v1", share(both, len(after)), 0.5, 1)
	})

	t.Run("user ids", func(t *testing.T) {
		upper, v2 := 0, 0
		for _, r := range good {
			if r.version == 1 {
				if r.userInt < userIDOffset+1 || r.userInt > userIDOffset+1000 {
					t.Fatalf("v1 user_id %d outside the population", r.userInt)
				}
				continue
			}
			v2++
			if r.userStr != strings.ToLower(r.userStr) {
				upper++
			}
		}
		inRange(t, "upper-case v2 user_id share", share(upper, v2), 0.03, 0.07)
	})

	t.Run("event mix", func(t *testing.T) {
		n := map[string]int{}
		for _, r := range good {
			n[r.typ]++
		}
		inRange(t, "touch share", share(n["touch"], len(good)), 0.70, 0.80)
		inRange(t, "order share", share(n["order"], len(good)), 0.17, 0.23)
		inRange(t, "refund share", share(n["refund"], len(good)), 0.035, 0.065)
	})

	t.Run("columns by type", func(t *testing.T) {
		var touches, chNull, direct, money, amtNull, cNull int
		for _, r := range good {
			if r.countryNull {
				cNull++
			}
			switch r.typ {
			case "touch":
				touches++
				if r.channelNull {
					chNull++
				} else if r.channel == "direct" {
					direct++
				} else if !slices.Contains([]string{"paid_search", "social", "email", "affiliate", "display"}, r.channel) {
					t.Fatalf("channel %q", r.channel)
				}
				if !r.orderNull || !r.amountNull {
					t.Fatalf("touch %s has order_id or amount", r.eventID)
				}
			default:
				money++
				if !r.channelNull || r.orderNull || !strings.HasPrefix(r.orderID, "o-") {
					t.Fatalf("%s %s: channel %q order_id %q", r.typ, r.eventID, r.channel, r.orderID)
				}
				if r.amountNull {
					amtNull++
				} else if r.amount < orderMinCents || r.amount > orderMaxCents {
					t.Fatalf("amount %d", r.amount)
				}
			}
			if !r.countryNull && len(r.country) != 2 {
				t.Fatalf("country %q", r.country)
			}
		}
		inRange(t, "null channel share of touches", share(chNull, touches), 0.07, 0.13)
		inRange(t, "direct share of touches", share(direct, touches), 0.03, 0.07)
		inRange(t, "null amount share", share(amtNull, money), 0.002, 0.03)
		inRange(t, "null country share", share(cNull, len(good)), 0.03, 0.07)
	})

	t.Run("event ids", func(t *testing.T) {
		for _, r := range all {
			if len(r.eventID) < 20 || len(r.eventID) > 30 {
				t.Fatalf("event_id %q is %d bytes", r.eventID, len(r.eventID))
			}
		}
	})

	// Rows sharing an event_id are exact copies; within-day duplicates and
	// re-deliveries 1-3 days later both occur.
	t.Run("duplicates", func(t *testing.T) {
		type seen struct {
			content string
			dts     []features.Date
			files   []string
		}
		byID := map[string]*seen{}
		for _, r := range good {
			sn := byID[r.eventID]
			if sn == nil {
				sn = &seen{content: r.content()}
				byID[r.eventID] = sn
			} else if c := r.content(); c != sn.content {
				t.Fatalf("copies of %s differ:\n%s\n%s", r.eventID, sn.content, c)
			}
			sn.dts = append(sn.dts, r.dt)
			sn.files = append(sn.files, r.file)
		}
		var withinDay, otherFile, redelivered int
		gaps := map[int]int{}
		for _, sn := range byID {
			for i := 1; i < len(sn.dts); i++ {
				if sn.dts[i] == sn.dts[0] {
					withinDay++
					if sn.files[i] != sn.files[0] {
						otherFile++
					}
				} else {
					redelivered++
					gaps[int(sn.dts[i]-sn.dts[0])]++
				}
			}
		}
		t.Logf("within-day copies %d (%d in another file), re-delivered %d, gaps %v", withinDay, otherFile, redelivered, gaps)
		inRange(t, "within-day duplicate share", share(withinDay, len(good)), 0.008, 0.025)
		inRange(t, "re-delivered share", share(redelivered, len(good)), 0.002, 0.008)
		if otherFile == 0 {
			t.Error("no duplicate lands in another file of its day")
		}
		for g := range gaps {
			if g < 1 || g > redeliverMaxDays {
				t.Errorf("re-delivery %d days later", g)
			}
		}
	})

	t.Run("late events", func(t *testing.T) {
		late := 0
		lags := map[int]int{}
		for _, r := range good {
			d := features.DateOfMicros(r.ts)
			if d > r.dt {
				t.Fatalf("%s: event_ts %s after dt %s", r.eventID, d, r.dt)
			}
			if d < r.dt {
				late++
				lags[int(r.dt-d)]++
			}
		}
		t.Logf("lags %v", lags)
		inRange(t, "late share", share(late, len(good)), 0.01, 0.035)
		for _, lag := range []int{1, 2, 3} {
			if lags[lag] == 0 {
				t.Errorf("no event %d days late", lag)
			}
		}
		for lag := range lags {
			if lag > lateMaxDays+redeliverMaxDays { // a late event re-delivered
				t.Errorf("event %d days late", lag)
			}
		}
	})

	t.Run("heavy day", func(t *testing.T) {
		var n []int
		for _, st := range s.stats {
			n = append(n, st.Events)
		}
		sorted := slices.Sorted(slices.Values(n))
		median := sorted[len(sorted)/2]
		heavy := 0
		for i, v := range n {
			if float64(v) >= 3*float64(median) {
				heavy++
				t.Logf("heavy day %s: %d rows, median %d", s.stats[i].Day, v, median)
			}
		}
		if heavy != 1 {
			t.Errorf("%d heavy days (rows %v), want 1", heavy, n)
		}
		if lo, hi := float64(sorted[0]), float64(sorted[len(sorted)-2]); hi > 1.15*lo {
			t.Errorf("normal days vary too much: %v", sorted)
		}
	})

	t.Run("rejects", func(t *testing.T) {
		for _, d := range days {
			n := 0
			for _, r := range s.rows[d] {
				if r.rejected() {
					n++
				}
			}
			if share(n, len(s.rows[d])) >= 0.001 {
				t.Errorf("%s: %d rejects in %d rows", d, n, len(s.rows[d]))
			}
		}
	})

	t.Run("customers", func(t *testing.T) {
		perCust := map[string]int{}
		countries := map[string]map[string]int{}
		for _, r := range good {
			c := customerID(r)
			perCust[c]++
			if !r.countryNull {
				if countries[c] == nil {
					countries[c] = map[string]int{}
				}
				countries[c][r.country]++
			}
		}
		var counts []int
		for _, n := range perCust {
			counts = append(counts, n)
		}
		sort.Sort(sort.Reverse(sort.IntSlice(counts)))
		top := 0
		for _, n := range counts[:len(counts)/100] {
			top += n
		}
		inRange(t, "top 1% customers' share of rows", share(top, len(good)), 0.05, 0.25)
		modal, total := 0, 0
		for _, m := range countries {
			best, sum := 0, 0
			for _, n := range m {
				best = max(best, n)
				sum += n
			}
			if sum >= 20 {
				modal += best
				total += sum
			}
		}
		inRange(t, "home-country share", share(modal, total), 0.9, 1)
	})

	t.Run("not sorted by time", func(t *testing.T) {
		unsorted := 0
		for _, d := range days {
			byFile := map[string][]int64{}
			for _, r := range s.rows[d] {
				byFile[r.file] = append(byFile[r.file], r.ts)
			}
			for _, ts := range byFile {
				if !slices.IsSorted(ts) {
					unsorted++
				}
			}
		}
		if unsorted == 0 {
			t.Error("every file is sorted by event_ts")
		}
	})
}

// Orders are preceded by touches of the same customer, some in earlier
// folders (inside and just outside the 7-day window), some after the order
// on the same day. A sparse population keeps other sessions of the same
// customer from blurring the picture.
func TestSessions(t *testing.T) {
	cfg := baseCfg
	cfg.Customers, cfg.EventsPerDay, cfg.HeavyDays = 1_000_000, 3000, -1
	s := generate(t, cfg)
	const week = 7 * features.MicrosPerDay
	touches := map[string][]row{}
	for _, r := range s.all() {
		if r.typ == "touch" && !r.rejected() {
			c := customerID(r)
			touches[c] = append(touches[c], r)
		}
	}
	var orders, within, earlierFolder, justOutside, after int
	for _, d := range features.DaysBetween(cfg.From+10, cfg.To) {
		for _, r := range s.rows[d] {
			if r.typ != "order" || r.rejected() {
				continue
			}
			orders++
			var w, e, o, a bool
			for _, tc := range touches[customerID(r)] {
				age := r.ts - tc.ts
				switch {
				case age >= 0 && age < week:
					w = true
					e = e || tc.dt < r.dt && age > 2*features.MicrosPerDay
				case age >= week && age < week+3*features.MicrosPerDay:
					o = o || tc.dt < r.dt
				case age < 0 && tc.dt == r.dt && features.DateOfMicros(tc.ts) == features.DateOfMicros(r.ts):
					a = true
				}
			}
			within += b2i(w)
			earlierFolder += b2i(e)
			justOutside += b2i(o)
			after += b2i(a)
		}
	}
	t.Logf("%d orders", orders)
	inRange(t, "orders with a touch in the previous 7 days", share(within, orders), 0.8, 0.98)
	inRange(t, "orders with a touch 2-7 days before, in an earlier folder", share(earlierFolder, orders), 0.08, 0.35)
	inRange(t, "orders with a touch 7-10 days before, in an earlier folder", share(justOutside, orders), 0.03, 0.3)
	inRange(t, "orders with a touch after them on the same day", share(after, orders), 0.1, 0.3)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Touches after the order on the same day are about 5% of touches.
func TestPostOrderTouchShare(t *testing.T) {
	p, err := newPlan(Config{From: day0, To: day0, EventsPerDay: 20_000, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var touches, post int
	var evs []event
	for j := range p.sessions(day0) {
		evs = p.mainSession(evs[:0], day0, j)
		seenOrder := false
		for _, e := range evs {
			switch e.typ {
			case typeOrder:
				seenOrder = true
			case typeTouch:
				touches++
				if seenOrder {
					post++
				}
			}
		}
	}
	for x := day0; x <= day0+longReachDays; x++ {
		for j := range p.longSessions {
			for _, e := range p.longSession(evs[:0], x, j, day0) {
				if e.typ == typeTouch {
					touches++
				}
			}
		}
	}
	inRange(t, "post-order touch share", share(post, touches), 0.035, 0.065)
}

// BenchmarkGenerate writes 10 days of 1,000,000 events (no heavy day) to a
// local temporary folder and reports rows per second.
func BenchmarkGenerate(b *testing.B) {
	cfg := Config{From: day0, To: day0 + 9, EventsPerDay: benchEvents, Seed: 1, V2From: day0 + 5, HeavyDays: -1}
	var rows, size int64
	var elapsed time.Duration
	for b.Loop() {
		store, err := objstore.NewLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		stats, err := Generate(context.Background(), store, cfg, nil)
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		for _, st := range stats {
			rows += int64(st.Events)
			size += st.Bytes
		}
	}
	b.ReportMetric(float64(rows)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(size)/float64(rows), "bytes/event")
}

var benchEvents = 1_000_000
