package validate

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
)

// Totals are the additive figures of a ref.
type Totals struct {
	Ref        string `json:"ref"`
	SnapshotID int64  `json:"snapshot_id"`
	Rows       int64  `json:"rows"`
	Partitions int    `json:"partitions"`
	Customers  int    `json:"customers"`
	Orders     int64  `json:"orders"`
	Gross      int64  `json:"gross_revenue_cents"`
	Refund     int64  `json:"refund_cents"`
	Net        int64  `json:"net_revenue_cents"`
	// WithFeatures counts rows whose touches_7d is set (corrected rows).
	WithFeatures int64 `json:"rows_with_features"`
}

// ResolveRef finds a branch or tag by name, or a snapshot by numeric id.
func ResolveRef(tbl *table.Table, ref string) (*table.Snapshot, error) {
	if s := tbl.SnapshotByName(ref); s != nil {
		return s, nil
	}
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		if s := tbl.SnapshotByID(id); s != nil {
			return s, nil
		}
	}
	return nil, errkind.Usagef("ref %q is neither a branch, a tag nor a snapshot id of the table", ref)
}

// RefTotals scans ref (optionally only from…to) in one pass.
func RefTotals(ctx context.Context, tbl *table.Table, ref string, from, to *features.Date) (*Totals, error) {
	snap, err := ResolveRef(tbl, ref)
	if err != nil {
		return nil, err
	}
	opts := []table.ScanOption{table.WithSnapshotID(snap.SnapshotID)}
	if from != nil && to != nil {
		opts = append(opts, table.WithRowFilter(iceberg.NewAnd(
			iceberg.GreaterThanEqual(iceberg.Reference(features.OutEventDate), iceberg.Date(*from)),
			iceberg.LessThanEqual(iceberg.Reference(features.OutEventDate), iceberg.Date(*to)))))
	}
	_, it, err := tbl.Scan(opts...).ToArrowRecords(ctx)
	if err != nil {
		return nil, scanErr(ref, err)
	}
	t := &Totals{Ref: ref, SnapshotID: snap.SnapshotID}
	customers := map[string]struct{}{}
	days := map[int32]struct{}{}
	for rec, err := range it {
		if err != nil {
			return nil, scanErr(ref, err)
		}
		cols, err := totalsColumns(rec)
		if err != nil {
			rec.Release()
			return nil, errkind.Usagef("ref %s: %w", ref, err)
		}
		dates, cust, orders, gross, refund, net, touches := cols.dates, cols.cust, cols.orders, cols.gross, cols.refund, cols.net, cols.touches
		for i := 0; i < int(rec.NumRows()); i++ {
			t.Rows++
			days[int32(dates.Value(i))] = struct{}{}
			customers[cust.Value(i)] = struct{}{}
			t.Orders += orders.Value(i)
			t.Gross += gross.Value(i)
			t.Refund += refund.Value(i)
			t.Net += net.Value(i)
			if touches != nil && touches.IsValid(i) {
				t.WithFeatures++
			}
		}
		rec.Release()
	}
	t.Customers, t.Partitions = len(customers), len(days)
	return t, nil
}

// scanErr marks a failed read of ref's files.
func scanErr(ref string, err error) error { return readErr(fmt.Errorf("scan %s: %w", ref, err)) }

// readErr marks a failed read of the table's files that no one marked
// closer to the cause: the storage failed, and a retry may succeed.
func readErr(err error) error {
	if _, marked := errkind.Of(err); marked || errors.Is(err, context.Canceled) {
		return err
	}
	return errkind.UnavailableError(err)
}

type totalsCols struct {
	dates                      *array.Date32
	cust                       *array.String
	orders, gross, refund, net *array.Int64
	touches                    *array.Int64 // nil when the ref predates the feature columns
}

// totalsColumns finds the columns RefTotals sums, by name and type. A
// missing or retyped column is an error, not a panic: an old snapshot or a
// table changed by hand may lack one.
func totalsColumns(rec arrow.RecordBatch) (totalsCols, error) {
	var c totalsCols
	sch := rec.Schema()
	col := func(name string) arrow.Array {
		if idx := sch.FieldIndices(name); len(idx) > 0 {
			return rec.Column(idx[0])
		}
		return nil
	}
	var bad []string
	want := func(name string, ok bool) {
		if !ok {
			bad = append(bad, name)
		}
	}
	var ok bool
	c.dates, ok = col(features.OutEventDate).(*array.Date32)
	want(features.OutEventDate, ok)
	c.cust, ok = col(features.OutCustomerID).(*array.String)
	want(features.OutCustomerID, ok)
	c.orders, ok = col(features.OutOrders).(*array.Int64)
	want(features.OutOrders, ok)
	c.gross, ok = col(features.OutGrossRevenueCents).(*array.Int64)
	want(features.OutGrossRevenueCents, ok)
	c.refund, ok = col(features.OutRefundCents).(*array.Int64)
	want(features.OutRefundCents, ok)
	c.net, ok = col(features.OutNetRevenueCents).(*array.Int64)
	want(features.OutNetRevenueCents, ok)
	c.touches, _ = col(features.OutTouches7d).(*array.Int64)
	if len(bad) > 0 {
		return c, fmt.Errorf("column(s) %s missing or of another type", strings.Join(bad, ", "))
	}
	return c, nil
}
