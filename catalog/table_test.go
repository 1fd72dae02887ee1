package catalog

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/icefill/icefill/features"
)

type wantField struct {
	id       int
	name     string
	typ      iceberg.Type
	required bool
}

var wantLegacy = []wantField{
	{1, "event_date", iceberg.PrimitiveTypes.Date, true},
	{2, "customer_id", iceberg.PrimitiveTypes.String, true},
	{3, "channel", iceberg.PrimitiveTypes.String, true},
	{4, "orders", iceberg.PrimitiveTypes.Int64, true},
	{5, "gross_revenue_cents", iceberg.PrimitiveTypes.Int64, true},
	{6, "refund_cents", iceberg.PrimitiveTypes.Int64, true},
	{7, "net_revenue_cents", iceberg.PrimitiveTypes.Int64, true},
	{8, "country", iceberg.PrimitiveTypes.String, false},
}

var wantFull = append(append([]wantField{}, wantLegacy...),
	wantField{9, "touches_7d", iceberg.PrimitiveTypes.Int64, false},
	wantField{10, "distinct_channels_7d", iceberg.PrimitiveTypes.Int32, false},
	wantField{11, "avg_hours_to_convert", iceberg.PrimitiveTypes.Float64, false},
)

func checkFields(t *testing.T, what string, s *iceberg.Schema, want []wantField) {
	t.Helper()
	got := s.Fields()
	if len(got) != len(want) {
		t.Fatalf("%s: %d fields, want %d: %s", what, len(got), len(want), s)
	}
	for i, w := range want {
		g := got[i]
		if g.ID != w.id || g.Name != w.name || !g.Type.Equals(w.typ) || g.Required != w.required {
			t.Errorf("%s field %d = {%d %s %s required=%v}, want {%d %s %s required=%v}",
				what, i, g.ID, g.Name, g.Type, g.Required, w.id, w.name, w.typ, w.required)
		}
	}
}

func TestTableSchema(t *testing.T) {
	for _, tc := range []struct {
		withFeatures bool
		want         []wantField
		arrowFields  int
	}{{false, wantLegacy, features.LegacySchema.NumFields()}, {true, wantFull, features.FullSchema.NumFields()}} {
		t.Run(fmt.Sprint("features=", tc.withFeatures), func(t *testing.T) {
			s := TableSchema(tc.withFeatures)
			checkFields(t, "TableSchema", s, tc.want)
			if len(tc.want) != tc.arrowFields {
				t.Errorf("features schema has %d fields", tc.arrowFields)
			}
		})
	}
}

func newSQLiteCatalog(t *testing.T, dir string) *Catalog {
	t.Helper()
	return mustOpen(t, Config{SQLitePath: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "warehouse")})
}

func TestEnsureTableAndFeatureColumns(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := newSQLiteCatalog(t, dir)

	if _, err := c.LoadTable(ctx); err == nil || !strings.Contains(err.Error(), "icefill run") {
		t.Fatalf("LoadTable before creation: %v", err)
	}

	for i, wantCreated := range []bool{true, false} {
		tbl, created, err := c.EnsureTable(ctx)
		if err != nil {
			t.Fatalf("EnsureTable #%d: %v", i+1, err)
		}
		if created != wantCreated {
			t.Errorf("EnsureTable #%d: created = %v, want %v", i+1, created, wantCreated)
		}
		checkFields(t, "created table", tbl.Schema(), wantLegacy)

		spec := tbl.Spec()
		var pf []iceberg.PartitionField
		for _, f := range spec.Fields() {
			pf = append(pf, f)
		}
		if len(pf) != 1 || pf[0].Name != "event_date" || pf[0].FieldID != 1000 ||
			len(pf[0].SourceIDs) != 1 || pf[0].SourceIDs[0] != 1 || !pf[0].Transform.Equals(iceberg.IdentityTransform{}) {
			t.Errorf("partition spec = %s", spec)
		}
		if v := tbl.Metadata().Version(); v != 2 {
			t.Errorf("format version %d", v)
		}
		props := tbl.Properties()
		for k, v := range map[string]string{
			"write.metadata.delete-after-commit.enabled":                      "true",
			"write.metadata.previous-versions-max":                            "50",
			"write.parquet.compression-codec":                                 "zstd",
			"write.parquet.compression-level":                                 "1",
			"write.parquet.dict-encoding-enabled.column.customer_id":          "false",
			"write.parquet.dict-encoding-enabled.column.avg_hours_to_convert": "false",
		} {
			if props[k] != v {
				t.Errorf("property %s = %q, want %q (all: %v)", k, props[k], v, props)
			}
		}
		if !strings.HasSuffix(tbl.Location(), "/warehouse/analytics.db/clv_daily") {
			t.Errorf("location %s", tbl.Location())
		}
	}

	for i, wantAdded := range []bool{true, false} {
		tbl, added, err := c.EnsureFeatureColumns(ctx)
		if err != nil {
			t.Fatalf("EnsureFeatureColumns #%d: %v", i+1, err)
		}
		if added != wantAdded {
			t.Errorf("EnsureFeatureColumns #%d: added = %v, want %v", i+1, added, wantAdded)
		}
		checkFields(t, "evolved table", tbl.Schema(), wantFull)
	}

	// EnsureTable on the evolved table leaves it alone.
	tbl, created, err := c.EnsureTable(ctx)
	if err != nil || created {
		t.Fatalf("EnsureTable after evolution: created=%v err=%v", created, err)
	}
	checkFields(t, "reloaded table", tbl.Schema(), wantFull)
	if n := len(tbl.Schemas()); n != 2 {
		t.Errorf("%d schemas in the metadata, want 2 (one evolution)", n)
	}
}

func TestEnsureConcurrent(t *testing.T) {
	for _, workers := range []int{2, 4} {
		t.Run(fmt.Sprint(workers, " workers"), func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			// One catalog handle per worker, as separate processes would have.
			cats := make([]*Catalog, workers)
			for i := range cats {
				cats[i] = newSQLiteCatalog(t, dir)
			}
			var (
				wg               sync.WaitGroup
				mu               sync.Mutex
				nCreated, nAdded int
				errs             []error
				start            = make(chan struct{})
			)
			for _, c := range cats {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, created, err := c.EnsureTable(ctx)
					if err != nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("EnsureTable: %w", err))
						mu.Unlock()
						return
					}
					tbl, added, err := c.EnsureFeatureColumns(ctx)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, fmt.Errorf("EnsureFeatureColumns: %w", err))
						return
					}
					if created {
						nCreated++
					}
					if added {
						nAdded++
					}
					if len(tbl.Schema().Fields()) != 11 {
						errs = append(errs, fmt.Errorf("schema %s", tbl.Schema()))
					}
				}()
			}
			close(start)
			wg.Wait()
			for _, err := range errs {
				t.Error(err)
			}
			if nCreated != 1 || nAdded != 1 {
				t.Errorf("created %d times, added %d times; want 1 and 1", nCreated, nAdded)
			}
			tbl, err := cats[0].LoadTable(ctx)
			if err != nil {
				t.Fatal(err)
			}
			checkFields(t, "final table", tbl.Schema(), wantFull)
		})
	}
}

func TestEnsureTableRejectsForeignSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name    string
		fields  []iceberg.NestedField
		wantErr string
	}{
		{"wrong type", []iceberg.NestedField{
			{ID: 1, Name: "event_date", Type: iceberg.PrimitiveTypes.Date, Required: true},
			{ID: 2, Name: "customer_id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		}, "column customer_id has type long"},
		{"missing column", []iceberg.NestedField{
			{ID: 1, Name: "event_date", Type: iceberg.PrimitiveTypes.Date, Required: true},
		}, "column customer_id is missing"},
		{"feature column required", append(TableSchema(false).Fields(),
			iceberg.NestedField{ID: 9, Name: "touches_7d", Type: iceberg.PrimitiveTypes.Int64, Required: true}),
			"touches_7d is required"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("analytics.foreign%d", i)
			c := mustOpen(t, Config{SQLitePath: filepath.Join(dir, "catalog.db"), Warehouse: filepath.Join(dir, "wh"), Table: name})
			ident := c.Ident()
			if err := c.Iceberg().CreateNamespace(ctx, icecat.NamespaceFromIdent(ident), nil); err != nil && i == 0 {
				t.Fatal(err)
			}
			if _, err := c.Iceberg().CreateTable(ctx, ident, iceberg.NewSchema(0, tc.fields...)); err != nil {
				t.Fatal(err)
			}
			_, _, err := c.EnsureTable(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("EnsureTable err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// A schema change racing a data-less commit by someone else still lands.
func TestEnsureFeatureColumnsAfterConcurrentCommit(t *testing.T) {
	ctx := context.Background()
	c := newSQLiteCatalog(t, t.TempDir())
	tbl, _, err := c.EnsureTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Another writer changes the table (properties) before we add the columns.
	txn := tbl.NewTransaction()
	if err := txn.SetProperties(iceberg.Properties{"owner": "someone"}); err != nil {
		t.Fatal(err)
	}
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	out, added, err := c.EnsureFeatureColumns(ctx)
	if err != nil || !added {
		t.Fatalf("added=%v err=%v", added, err)
	}
	if out.Properties()["owner"] != "someone" {
		t.Errorf("lost the other writer's property: %v", out.Properties())
	}
}
