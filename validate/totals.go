// Package validate compares refs of the table (branches, tags, snapshots)
// and gates publication on the result. This file holds the plain per-ref
// totals used by the demo and by people checking a backfill by eye.
package validate

import (
	"context"
	"fmt"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
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
	return nil, fmt.Errorf("ref %q is neither a branch, a tag nor a snapshot id of the table", ref)
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
		return nil, fmt.Errorf("scan %s: %w", ref, err)
	}
	t := &Totals{Ref: ref, SnapshotID: snap.SnapshotID}
	customers := map[string]struct{}{}
	days := map[int32]struct{}{}
	for rec, err := range it {
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", ref, err)
		}
		sch := rec.Schema()
		col := func(name string) int {
			if idx := sch.FieldIndices(name); len(idx) > 0 {
				return idx[0]
			}
			return -1
		}
		dates := rec.Column(col(features.OutEventDate)).(*array.Date32)
		cust := rec.Column(col(features.OutCustomerID)).(*array.String)
		orders := rec.Column(col(features.OutOrders)).(*array.Int64)
		gross := rec.Column(col(features.OutGrossRevenueCents)).(*array.Int64)
		refund := rec.Column(col(features.OutRefundCents)).(*array.Int64)
		net := rec.Column(col(features.OutNetRevenueCents)).(*array.Int64)
		var touches *array.Int64
		if i := col(features.OutTouches7d); i >= 0 {
			touches, _ = rec.Column(i).(*array.Int64)
		}
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
