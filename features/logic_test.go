package features

import (
	"reflect"
	"testing"
)

const (
	alice = "11111111-1111-4111-8111-111111111111"
	bob   = "22222222-2222-4222-8222-222222222222"
	// carolV1 is a v1 integer user; carol is the same person's v2 UUID.
	carolV1 = int64(42)
	carol   = "dcedccc5-b77a-5478-8896-cecf3531a00e"
)

func TestUUIDv5Vectors(t *testing.T) {
	// Computed with Python's uuid.uuid5(uuid.NAMESPACE_URL, "urn:clv:user:<n>").
	tests := []struct {
		id   int64
		want string
	}{
		{42, "dcedccc5-b77a-5478-8896-cecf3531a00e"},
		{0, "ba12e379-8a6e-596c-8dbb-530d3e65ff28"},
		{-7, "549a09ff-7a59-50f3-acab-6fc2d22822b3"},
		{9223372036854775807, "9f88b079-9f0f-519e-9aba-09031336a032"},
	}
	for _, tt := range tests {
		if got := CustomerFromV1(tt.id).String(); got != tt.want {
			t.Errorf("CustomerFromV1(%d) = %s, want %s", tt.id, got, tt.want)
		}
	}
}

func TestParseCustomerV2(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"DCEDCCC5-B77A-5478-8896-CECF3531A00E", carol, true},
		{carol, carol, true},
		{"00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000", true},
		{"not-a-uuid", "", false},
		{"dcedccc5b77a54788896cecf3531a00e", "", false},
		{"{dcedccc5-b77a-5478-8896-cecf3531a00e}", "", false},
		{"dcedccc5-b77a-5478-8896-cecf3531a00g", "", false},
		{"dcedccc5-b77a-5478-8896_cecf3531a00e", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		c, ok := ParseCustomerV2([]byte(tt.in))
		if ok != tt.ok || (ok && c.String() != tt.want) {
			t.Errorf("ParseCustomerV2(%q) = %s, %v; want %s, %v", tt.in, c, ok, tt.want, tt.ok)
		}
	}
}

func TestCustomerOrderMatchesText(t *testing.T) {
	a, _ := ParseCustomerV2([]byte("0a000000-0000-0000-0000-000000000000"))
	b, _ := ParseCustomerV2([]byte("a0000000-0000-0000-0000-000000000000"))
	c, _ := ParseCustomerV2([]byte("9f000000-0000-0000-0000-000000000000"))
	if !(a.Less(c) && c.Less(b)) || !(a.String() < c.String() && c.String() < b.String()) {
		t.Fatal("byte order of CustomerID differs from its text order")
	}
}

func TestLegacy(t *testing.T) {
	const D = "2024-03-10"
	tests := []struct {
		name string
		rows []ev
		want []row
	}{
		{
			name: "earliest touch of the day wins even after the order",
			rows: []ev{
				{dt: D, id: "o1", ts: D + "T08:00:00Z", user: alice, typ: "order", amt: 1000},
				{dt: D, id: "t2", ts: D + "T12:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "t1", ts: D + "T09:00:00Z", user: alice, typ: "touch", ch: "social"},
			},
			want: []row{{Customer: alice, Channel: "social", Orders: 1, Gross: 1000, AvgHours: -1}},
		},
		{
			name: "earliest touch with null channel gives direct; direct equals null",
			rows: []ev{
				{dt: D, id: "t1", ts: D + "T01:00:00Z", user: alice, typ: "touch"},
				{dt: D, id: "t2", ts: D + "T02:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "o1", ts: D + "T03:00:00Z", user: alice, typ: "order", amt: 5},
				{dt: D, id: "t3", ts: D + "T01:00:00Z", user: bob, typ: "touch", ch: "direct"},
				{dt: D, id: "t4", ts: D + "T02:00:00Z", user: bob, typ: "touch", ch: "email"},
				{dt: D, id: "o2", ts: D + "T03:00:00Z", user: bob, typ: "order", amt: 7},
			},
			want: []row{
				{Customer: alice, Channel: "direct", Orders: 1, Gross: 5, AvgHours: -1},
				{Customer: bob, Channel: "direct", Orders: 1, Gross: 7, AvgHours: -1},
			},
		},
		{
			name: "ties on event_ts go to the smallest event_id",
			rows: []ev{
				{dt: D, id: "t-b", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "t-a", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "social"},
				{dt: D, id: "o1", ts: D + "T03:00:00Z", user: alice, typ: "order", amt: 5},
			},
			want: []row{{Customer: alice, Channel: "social", Orders: 1, Gross: 5, AvgHours: -1}},
		},
		{
			name: "duplicates counted as often as they occur, refunds ignored, null amount is 0",
			rows: []ev{
				{dt: D, id: "o1", ts: D + "T03:00:00Z", user: alice, typ: "order", amt: 500},
				{dt: D, file: "part-1.parquet", id: "o1", ts: D + "T03:00:00Z", user: alice, typ: "order", amt: 500},
				{dt: D, id: "o2", ts: D + "T04:00:00Z", user: alice, typ: "order", amt: nullAmt},
				{dt: D, id: "r1", ts: D + "T05:00:00Z", user: alice, typ: "refund", amt: 300},
			},
			want: []row{{Customer: alice, Channel: "direct", Orders: 3, Gross: 1000, AvgHours: -1}},
		},
		{
			name: "refunds-only customer gets no row; no touch means direct",
			rows: []ev{
				{dt: D, id: "r1", ts: D + "T05:00:00Z", user: bob, typ: "refund", amt: 300},
			},
			want: nil,
		},
		{
			name: "country of the latest event that has one, ties smallest id; v1 and v2 are one customer",
			rows: []ev{
				{dt: D, file: "a-v1.parquet", id: "o1", ts: D + "T03:00:00Z", user: carolV1, typ: "order", amt: 1, ctry: "DE"},
				{dt: D, file: "b-v2.parquet", id: "t9", ts: D + "T09:00:00Z", user: "DCEDCCC5-B77A-5478-8896-CECF3531A00E", typ: "touch", ch: "email", ctry: "FR"},
				{dt: D, file: "b-v2.parquet", id: "t8", ts: D + "T09:00:00Z", user: carol, typ: "touch", ch: "email", ctry: "NL"},
				{dt: D, file: "b-v2.parquet", id: "t7", ts: D + "T10:00:00Z", user: carol, typ: "touch", ch: "email"},
			},
			want: []row{{Customer: carol, Channel: "email", Orders: 1, Gross: 1, Country: "NL", AvgHours: -1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := legacyRows(t, D, tt.rows); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCorrected(t *testing.T) {
	const D = "2024-03-10"
	const D1, D3, D6, D7, D8 = "2024-03-09", "2024-03-07", "2024-03-04", "2024-03-03", "2024-03-02"
	tests := []struct {
		name string
		rows []ev
		want []row
	}{
		{
			name: "last touch before the order wins; a touch after the order is ignored",
			rows: []ev{
				{dt: D, id: "t1", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "social"},
				{dt: D, id: "t2", ts: D + "T02:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "o1", ts: D + "T04:00:00Z", user: alice, typ: "order", amt: 1000},
				{dt: D, id: "t3", ts: D + "T05:00:00Z", user: alice, typ: "touch", ch: "display"},
			},
			want: []row{{Customer: alice, Channel: "email", Orders: 1, Gross: 1000, Touches: 3, Distinct: 3, AvgHours: 2}},
		},
		{
			name: "touch exactly 7 days before is outside the window",
			rows: []ev{
				{dt: D7, id: "t1", ts: D7 + "T04:00:00Z", user: alice, typ: "touch", ch: "social"},
				{dt: D, id: "o1", ts: D + "T04:00:00Z", user: alice, typ: "order", amt: 10},
			},
			want: []row{{Customer: alice, Channel: "direct", Orders: 1, Gross: 10, AvgHours: -1}},
		},
		{
			name: "touch one microsecond inside 7 days attributes",
			rows: []ev{
				{dt: D7, id: "t1", ts: D7 + "T04:00:00.000001Z", user: alice, typ: "touch", ch: "social"},
				{dt: D, id: "o1", ts: D + "T04:00:00Z", user: alice, typ: "order", amt: 10},
			},
			want: []row{{Customer: alice, Channel: "social", Orders: 1, Gross: 10, AvgHours: 604799999999.0 / 3600000000.0}},
		},
		{
			name: "touch at the same microsecond as the order attributes; null-channel touches skipped",
			rows: []ev{
				{dt: D, id: "t1", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "t2", ts: D + "T04:00:00Z", user: alice, typ: "touch", ch: "social"},
				{dt: D, id: "t3", ts: D + "T04:00:00Z", user: alice, typ: "touch"},
				{dt: D, id: "t4", ts: D + "T04:00:00Z", user: alice, typ: "touch", ch: "direct"},
				{dt: D, id: "o1", ts: D + "T04:00:00Z", user: alice, typ: "order", amt: 10},
			},
			want: []row{{Customer: alice, Channel: "social", Orders: 1, Gross: 10, Touches: 4, Distinct: 2, AvgHours: 0}},
		},
		{
			name: "ties on touch event_ts go to the smallest event_id",
			rows: []ev{
				{dt: D, id: "t-b", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "t-a", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "social"},
				{dt: D, id: "o1", ts: D + "T03:00:00Z", user: alice, typ: "order", amt: 5},
			},
			want: []row{{Customer: alice, Channel: "social", Orders: 1, Gross: 5, Touches: 2, Distinct: 2, AvgHours: 2}},
		},
		{
			name: "lookback touch from an earlier folder attributes and counts in features only inside [D-6, D+1)",
			rows: []ev{
				{dt: D7, id: "t0", ts: D7 + "T23:00:00Z", user: alice, typ: "touch", ch: "affiliate"},
				{dt: D3, id: "t1", ts: D3 + "T10:00:00Z", user: alice, typ: "touch", ch: "display"},
				{dt: D, id: "o1", ts: D + "T10:00:00Z", user: alice, typ: "order", amt: 70},
			},
			want: []row{{Customer: alice, Channel: "display", Orders: 1, Gross: 70, Touches: 1, Distinct: 1, AvgHours: 72}},
		},
		{
			name: "features window: D-6 00:00 is in, D+1 00:00 is out, late touches count by event_ts",
			rows: []ev{
				{dt: D6, id: "t1", ts: D6 + "T00:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D7, id: "t0", ts: D7 + "T23:59:59.999999Z", user: alice, typ: "touch", ch: "social"},
				{dt: D, id: "t2", ts: "2024-03-11T00:00:00Z", user: alice, typ: "touch", ch: "display"},
				{dt: D, id: "t3", ts: D1 + "T12:00:00Z", user: alice, typ: "touch"},
				{dt: D, id: "o1", ts: D + "T10:00:00Z", user: alice, typ: "order", amt: 1},
			},
			want: []row{{Customer: alice, Channel: "email", Orders: 1, Gross: 1, Touches: 2, Distinct: 1, AvgHours: 154}},
		},
		{
			name: "duplicates inside a day count once; copies in two files",
			rows: []ev{
				{dt: D, id: "o1", ts: D + "T03:00:00Z", user: alice, typ: "order", amt: 500},
				{dt: D, file: "part-1.parquet", id: "o1", ts: D + "T03:00:00Z", user: alice, typ: "order", amt: 500},
				{dt: D, id: "t1", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, file: "part-1.parquet", id: "t1", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "email"},
			},
			want: []row{{Customer: alice, Channel: "email", Orders: 1, Gross: 500, Touches: 1, Distinct: 1, AvgHours: 2}},
		},
		{
			name: "order re-delivered from the lookback is dropped here; its customer gets no row",
			rows: []ev{
				{dt: D3, id: "o1", ts: D3 + "T03:00:00Z", user: alice, typ: "order", amt: 500},
				{dt: D, id: "o1", ts: D3 + "T03:00:00Z", user: alice, typ: "order", amt: 500},
			},
			want: nil,
		},
		{
			name: "order whose event_id also occurs in the lookback is dropped even with an earlier event_ts here",
			rows: []ev{
				{dt: D3, id: "o1", ts: D3 + "T03:00:00Z", user: alice, typ: "order", amt: 500},
				{dt: D, id: "o1", ts: D3 + "T02:00:00Z", user: alice, typ: "order", amt: 500},
				{dt: D, id: "o2", ts: D + "T02:00:00Z", user: alice, typ: "order", amt: 7},
			},
			want: []row{{Customer: alice, Channel: "direct", Orders: 1, Gross: 7, AvgHours: -1}},
		},
		{
			name: "an id seen 8 days ago is outside the lookback and counts again",
			rows: []ev{
				{dt: D8, id: "o1", ts: D8 + "T03:00:00Z", user: alice, typ: "order", amt: 500},
				{dt: D, id: "o1", ts: D8 + "T03:00:00Z", user: alice, typ: "order", amt: 500},
			},
			want: []row{{Customer: alice, Channel: "direct", Orders: 1, Gross: 500, AvgHours: -1}},
		},
		{
			name: "touch re-delivered across lookback days counts once",
			rows: []ev{
				{dt: D3, id: "t1", ts: D3 + "T03:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D1, id: "t1", ts: D3 + "T03:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "t1", ts: D3 + "T03:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "o1", ts: D + "T03:00:00Z", user: alice, typ: "order", amt: 1},
			},
			want: []row{{Customer: alice, Channel: "email", Orders: 1, Gross: 1, Touches: 1, Distinct: 1, AvgHours: 72}},
		},
		{
			name: "differing copies: the earliest event_ts wins, then the copy in D",
			rows: []ev{
				{dt: D1, id: "t1", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "t1", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "social"},
				{dt: D, id: "t2", ts: D + "T02:00:00Z", user: alice, typ: "touch", ch: "display"},
				{dt: D, file: "part-1.parquet", id: "t2", ts: D + "T00:30:00Z", user: alice, typ: "touch", ch: "affiliate"},
				{dt: D, id: "o1", ts: D + "T01:30:00Z", user: alice, typ: "order", amt: 1},
			},
			want: []row{{Customer: alice, Channel: "social", Orders: 1, Gross: 1, Touches: 2, Distinct: 2, AvgHours: 0.5}},
		},
		{
			name: "refunds subtracted and attributed; refunds-only customer gets a row; avg ignores refunds",
			rows: []ev{
				{dt: D, id: "t1", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "o1", ts: D + "T02:00:00Z", user: alice, typ: "order", amt: 1000},
				{dt: D, id: "r1", ts: D + "T05:00:00Z", user: alice, typ: "refund", amt: 300},
				{dt: D, id: "r2", ts: D + "T05:00:00Z", user: bob, typ: "refund", amt: nullAmt},
			},
			want: []row{
				{Customer: alice, Channel: "email", Orders: 1, Gross: 1000, Refund: 300, Touches: 1, Distinct: 1, AvgHours: 1},
				{Customer: bob, Channel: "direct", Orders: 0, Gross: 0, Refund: 0, AvgHours: -1},
			},
		},
		{
			name: "late order: event_ts two days before dt, output keyed by dt",
			rows: []ev{
				{dt: D3, id: "t1", ts: D3 + "T01:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "o1", ts: "2024-03-08T01:00:00Z", user: alice, typ: "order", amt: 9},
			},
			want: []row{{Customer: alice, Channel: "email", Orders: 1, Gross: 9, Touches: 1, Distinct: 1, AvgHours: 24}},
		},
		{
			name: "orders split over channels give one row per channel, sorted; features repeat",
			rows: []ev{
				{dt: D, id: "t1", ts: D + "T01:00:00Z", user: alice, typ: "touch", ch: "social"},
				{dt: D, id: "o1", ts: D + "T02:00:00Z", user: alice, typ: "order", amt: 1},
				{dt: D, id: "t2", ts: D + "T03:00:00Z", user: alice, typ: "touch", ch: "email"},
				{dt: D, id: "o2", ts: D + "T05:00:00Z", user: alice, typ: "order", amt: 2, ctry: "DE"},
				{dt: D, id: "o3", ts: D + "T06:00:00Z", user: alice, typ: "order", amt: 4},
			},
			want: []row{
				{Customer: alice, Channel: "email", Orders: 2, Gross: 6, Country: "DE", Touches: 2, Distinct: 2, AvgHours: 2.5},
				{Customer: alice, Channel: "social", Orders: 1, Gross: 1, Country: "DE", Touches: 2, Distinct: 2, AvgHours: 1},
			},
		},
		{
			name: "country ignores a dropped re-delivered order",
			rows: []ev{
				{dt: D3, id: "o1", ts: D3 + "T03:00:00Z", user: alice, typ: "order", amt: 5, ctry: "FR"},
				{dt: D, id: "o1", ts: D + "T23:00:00Z", user: alice, typ: "order", amt: 5, ctry: "FR"},
				{dt: D, id: "o2", ts: D + "T03:00:00Z", user: alice, typ: "order", amt: 5, ctry: "DE"},
			},
			want: []row{{Customer: alice, Channel: "direct", Orders: 1, Gross: 5, Country: "DE", AvgHours: -1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := correctedRows(t, D, tt.rows); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestRejects(t *testing.T) {
	const D = "2024-03-10"
	rows := []ev{
		{dt: D, id: nullStr, ts: D + "T01:00:00Z", user: alice, typ: "order", amt: 1},
		{dt: D, id: "a", ts: nullStr, user: alice, typ: "order", amt: 1},
		{dt: D, id: "b", ts: D + "T01:00:00Z", user: nullStr, typ: "order", amt: 1},
		{dt: D, id: "c", ts: D + "T01:00:00Z", user: "not-a-uuid", typ: "order", amt: 1},
		{dt: D, id: "d", ts: D + "T01:00:00Z", user: alice, typ: "click"},
		{dt: D, id: "e", ts: D + "T01:00:00Z", user: alice, typ: "Order"},
		{dt: D, id: "f", ts: D + "T01:00:00Z", user: alice, typ: nullStr},
		{dt: D, id: "g", ts: D + "T01:00:00Z", user: alice, typ: "order", amt: 3},
	}
	day := buildDays(t, rows)[MustParseDate(D)]
	want := []RejectReason{RejectNullEventID, RejectNullEventTS, RejectNullUserID, RejectUserIDNotUUID,
		RejectUnknownType, RejectUnknownType, RejectUnknownType}
	var got []RejectReason
	for _, r := range day.Rejects {
		got = append(got, r.Reason)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("reject reasons %v, want %v", got, want)
	}
	if day.RowsRead != 8 || day.Len() != 1 {
		t.Fatalf("rows read %d, accepted %d; want 8 and 1", day.RowsRead, day.Len())
	}
	if r := day.Rejects[3]; r.Row != 3 || r.UserID == nil || *r.UserID != "not-a-uuid" || r.File == "" {
		t.Fatalf("reject keeps position and raw values: %+v", r)
	}
	if out := rowsOf(ComputeLegacy(day)); len(out) != 1 || out[0].Gross != 3 {
		t.Fatalf("rejected rows must not count: %+v", out)
	}
}

func TestCorrectedRejectsLookbackOutsideWindow(t *testing.T) {
	d := NewDayBuilder(MustParseDate("2024-03-10"), 0).Finish()
	far := NewDayBuilder(MustParseDate("2024-03-01"), 0).Finish()
	if _, err := ComputeCorrected(d, []*Day{far}); err == nil {
		t.Fatal("a day outside D-7..D-1 must be refused")
	}
}
