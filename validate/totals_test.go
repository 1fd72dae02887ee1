package validate_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/icefill/icefill/catalog"
	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/validate"
)

// TestRefTotalsMissingColumn: a ref whose rows lack a summed column (a
// table changed by hand, an old snapshot) is reported, not a panic.
func TestRefTotalsMissingColumn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := catalog.DefaultConfig()
	cfg.SQLitePath, cfg.Warehouse = filepath.Join(dir, "c.db"), filepath.Join(dir, "wh")
	cat, err := catalog.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	ident := cat.Ident()
	if err := cat.Iceberg().CreateNamespace(ctx, icecat.NamespaceFromIdent(ident), nil); err != nil {
		t.Fatal(err)
	}
	// The table's columns without orders.
	schema := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: features.OutEventDate, Type: iceberg.PrimitiveTypes.Date, Required: true},
		iceberg.NestedField{ID: 2, Name: features.OutCustomerID, Type: iceberg.PrimitiveTypes.String, Required: true},
		iceberg.NestedField{ID: 3, Name: features.OutGrossRevenueCents, Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 4, Name: features.OutRefundCents, Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 5, Name: features.OutNetRevenueCents, Type: iceberg.PrimitiveTypes.Int64, Required: true},
	)
	tbl, err := cat.Iceberg().CreateTable(ctx, ident, schema)
	if err != nil {
		t.Fatal(err)
	}
	as := arrow.NewSchema([]arrow.Field{
		{Name: features.OutEventDate, Type: arrow.FixedWidthTypes.Date32},
		{Name: features.OutCustomerID, Type: arrow.BinaryTypes.String},
		{Name: features.OutGrossRevenueCents, Type: arrow.PrimitiveTypes.Int64},
		{Name: features.OutRefundCents, Type: arrow.PrimitiveTypes.Int64},
		{Name: features.OutNetRevenueCents, Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, as)
	defer b.Release()
	b.Field(0).(*array.Date32Builder).Append(arrow.Date32(features.MustParseDate("2024-05-01")))
	b.Field(1).(*array.StringBuilder).Append("c1")
	for i := 2; i < 5; i++ {
		b.Field(i).(*array.Int64Builder).Append(100)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	at := array.NewTableFromRecords(as, []arrow.RecordBatch{rec})
	defer at.Release()
	if tbl, err = tbl.AppendTable(ctx, at, 10, nil); err != nil {
		t.Fatal(err)
	}
	_, err = validate.RefTotals(ctx, tbl, "main", nil, nil)
	if err == nil || !strings.Contains(err.Error(), features.OutOrders) {
		t.Fatalf("RefTotals on a ref without %s: %v, want an error naming the column", features.OutOrders, err)
	}
	if k, _ := errkind.Of(err); k != errkind.Usage {
		t.Errorf("marked %v, want usage", k)
	}
}
