package catalog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/features"
	"github.com/icefill/icefill/internal/errkind"
)

// PartitionFieldID is the id of the table's only partition field,
// identity(event_date). Iceberg numbers partition fields from 1000.
const PartitionFieldID = 1000

// TableProperties are the properties icefill creates the table with.
//
//   - format-version 2: what PyIceberg, Spark and Trino all read and write.
//   - delete-after-commit with 50 previous versions: a long backfill makes
//     thousands of commits, and without these every one leaves a
//     metadata.json behind forever.
//   - zstd Parquet compression (iceberg-go's default, made explicit so other
//     writers use it too) at level 1: the data files are small next to the
//     source, and the default level 3 cost about a tenth of a backfill's CPU.
//   - no dictionary encoding for the columns whose values are nearly all
//     distinct (customer_id, the three revenue columns, the average hours):
//     the writer built a dictionary per page only to drop it again, about a
//     fifth of its CPU. Every Parquet reader reads plain columns.
//   - commit.retry.num-retries 4 and its waits: Java's defaults, written down
//     because iceberg-go's default is 0 retries and the table's other writers
//     (the nightly job, whatever engine) read the same properties. icefill's
//     own commits do not use them: each is pinned to the refs it read and
//     retried by icefill's loop after re-reading the table
//     (snapshots.commitStaged), so a library replay can never give a
//     checkpoint a wrong sequence number.
func TableProperties() iceberg.Properties {
	props := iceberg.Properties{
		table.PropertyFormatVersion:               "2",
		table.MetadataDeleteAfterCommitEnabledKey: "true",
		table.MetadataPreviousVersionsMaxKey:      "50",
		table.ParquetCompressionKey:               "zstd",
		table.ParquetCompressionLevelKey:          "1",
		table.CommitNumRetriesKey:                 "4",
		table.CommitMinRetryWaitMsKey:             "100",
		table.CommitMaxRetryWaitMsKey:             "60000",
		table.CommitTotalRetryTimeoutMsKey:        "1800000",
	}
	for _, col := range plainColumns {
		props[dictColumnKey+col] = "false"
	}
	return props
}

// dictColumnKey turns dictionary encoding off for one column of the data
// files iceberg-go writes (it reads the property when writing; a writer
// that ignores it only encodes differently, readers see the same values).
const dictColumnKey = "write.parquet.dict-encoding-enabled.column."

// plainColumns are the output columns whose values are nearly all distinct.
var plainColumns = []string{features.OutCustomerID, features.OutGrossRevenueCents, features.OutRefundCents,
	features.OutNetRevenueCents, features.OutAvgHoursToConvert}

// TableSchema is the Iceberg schema matching features.LegacySchema
// (withFeatures false: columns 1–8) or features.FullSchema (1–11): the same
// names, field ids and required flags (required = not nullable).
func TableSchema(withFeatures bool) *iceberg.Schema {
	src := features.LegacySchema
	if withFeatures {
		src = features.FullSchema
	}
	fields := make([]iceberg.NestedField, 0, src.NumFields())
	for _, f := range src.Fields() {
		fields = append(fields, nestedField(f))
	}
	return iceberg.NewSchema(0, fields...)
}

// nestedField converts one of the features package's Arrow fields. It panics
// on a type the table cannot hold: that is a programming error caught by the
// tests.
func nestedField(f arrow.Field) iceberg.NestedField {
	idText, ok := f.Metadata.GetValue("PARQUET:field_id")
	if !ok {
		panic("features field " + f.Name + " has no PARQUET:field_id")
	}
	id, err := strconv.Atoi(idText)
	if err != nil {
		panic("features field " + f.Name + ": bad field id " + idText)
	}
	var t iceberg.Type
	switch f.Type.ID() {
	case arrow.DATE32:
		t = iceberg.PrimitiveTypes.Date
	case arrow.STRING:
		t = iceberg.PrimitiveTypes.String
	case arrow.INT64:
		t = iceberg.PrimitiveTypes.Int64
	case arrow.INT32:
		t = iceberg.PrimitiveTypes.Int32
	case arrow.FLOAT64:
		t = iceberg.PrimitiveTypes.Float64
	default:
		panic("features field " + f.Name + ": no Iceberg type for " + f.Type.String())
	}
	return iceberg.NestedField{ID: id, Name: f.Name, Type: t, Required: !f.Nullable}
}

// PartitionSpec is identity(event_date), field id 1000.
func PartitionSpec() iceberg.PartitionSpec {
	src, _ := TableSchema(false).FindFieldByName(features.OutEventDate)
	return iceberg.NewPartitionSpec(iceberg.PartitionField{
		SourceIDs: []int{src.ID},
		FieldID:   PartitionFieldID,
		Name:      features.OutEventDate,
		Transform: iceberg.IdentityTransform{},
	})
}

func (c *Catalog) tableName() string { return strings.Join(c.ident, ".") }

// LoadTable loads icefill's table. A missing table (or namespace) gives an
// error wrapping catalog.ErrNoSuchTable/ErrNoSuchNamespace that tells the
// user to run `icefill run`, which creates it.
func (c *Catalog) LoadTable(ctx context.Context) (*table.Table, error) {
	tbl, err := c.cat.LoadTable(ctx, c.Ident())
	if err != nil {
		if isNotFound(err) {
			return nil, c.scrub(fmt.Errorf("table %s does not exist in %s catalog %q (run `icefill run`, which creates it): %w",
				c.tableName(), c.kind, c.cfg.Name, err))
		}
		return nil, c.scrub(fmt.Errorf("load table %s: %w", c.tableName(), err))
	}
	return tbl, nil
}

func isNotFound(err error) bool {
	return errors.Is(err, icecat.ErrNoSuchTable) || errors.Is(err, icecat.ErrNoSuchNamespace)
}

// EnsureTable loads the table, creating its namespace and the table itself
// if missing: the legacy schema (columns 1–8), partitioned by
// identity(event_date), with TableProperties. created reports whether this
// call created it. Concurrent creators are fine: the loser of the race loads
// the winner's table. An existing table must have compatible columns (same
// names, ids and types).
func (c *Catalog) EnsureTable(ctx context.Context) (*table.Table, bool, error) {
	tbl, err := c.cat.LoadTable(ctx, c.Ident())
	if err == nil {
		if err := checkSchema(tbl.Schema(), false); err != nil {
			return nil, false, c.scrub(fmt.Errorf("table %s: %w", c.tableName(), err))
		}
		warnOnSpec(tbl)
		return tbl, false, nil
	}
	if !isNotFound(err) {
		return nil, false, c.scrub(fmt.Errorf("load table %s: %w", c.tableName(), err))
	}

	ns := icecat.NamespaceFromIdent(c.ident)
	if err := c.cat.CreateNamespace(ctx, ns, nil); err != nil && !errors.Is(err, icecat.ErrNamespaceAlreadyExists) {
		// A concurrent creator may have won with an error other than
		// "already exists" (e.g. a constraint violation): check.
		if ok, cerr := c.cat.CheckNamespaceExists(ctx, ns); cerr != nil || !ok {
			return nil, false, c.scrub(fmt.Errorf("create namespace %s: %w", strings.Join(ns, "."), err))
		}
	}

	spec := PartitionSpec()
	tbl, err = c.cat.CreateTable(ctx, c.Ident(), TableSchema(false),
		icecat.WithPartitionSpec(&spec),
		icecat.WithProperties(TableProperties()))
	if err == nil {
		slog.Info("created Iceberg table", "table", c.tableName(), "location", tbl.Location())
		return tbl, true, nil
	}
	// Someone else created it between our load and create (ErrTableAlreadyExists,
	// or on some catalogs a less specific error): load theirs.
	loaded, lerr := c.cat.LoadTable(ctx, c.Ident())
	if lerr != nil {
		return nil, false, c.scrub(fmt.Errorf("create table %s: %w", c.tableName(), err))
	}
	if err := checkSchema(loaded.Schema(), false); err != nil {
		return nil, false, c.scrub(fmt.Errorf("table %s: %w", c.tableName(), err))
	}
	return loaded, false, nil
}

// ensureColumnsAttempts bounds EnsureFeatureColumns' retries: a schema
// change commits on main and fails if anything else committed to main
// meanwhile.
const ensureColumnsAttempts = 6

// EnsureFeatureColumns adds the feature columns (touches_7d long,
// distinct_channels_7d int, avg_hours_to_convert double, all optional) that
// are missing, in one commit. added reports whether this call added any. It
// is idempotent, and safe against concurrent callers and concurrent commits:
// after a failed commit it reloads, and succeeds if the columns now exist,
// else tries again (a few times).
func (c *Catalog) EnsureFeatureColumns(ctx context.Context) (*table.Table, bool, error) {
	var lastErr error
	for attempt := 0; attempt < ensureColumnsAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, false, ctx.Err()
			case <-time.After(time.Duration(attempt*attempt) * 50 * time.Millisecond):
			}
		}
		tbl, err := c.LoadTable(ctx)
		if err != nil {
			return nil, false, err
		}
		missing, err := missingFeatureColumns(tbl.Schema())
		if err != nil {
			return nil, false, c.scrub(fmt.Errorf("table %s: %w", c.tableName(), err))
		}
		if len(missing) == 0 {
			return tbl, false, nil
		}
		txn := tbl.NewTransaction()
		us := txn.UpdateSchema(true, false)
		for _, f := range missing {
			us.AddColumn([]string{f.Name}, f.Type, f.Doc, false, nil)
		}
		if err := us.Commit(); err != nil {
			return nil, false, c.scrub(fmt.Errorf("add feature columns to %s: %w", c.tableName(), err))
		}
		out, err := txn.Commit(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			lastErr = err
			slog.Debug("adding feature columns failed; reloading", "table", c.tableName(), "attempt", attempt+1, "error", c.scrub(err))
			continue // the next round reloads: done if a concurrent caller added them
		}
		if err := checkSchema(out.Schema(), true); err != nil {
			return nil, false, c.scrub(fmt.Errorf("table %s after adding feature columns: %w", c.tableName(), err))
		}
		slog.Info("added feature columns", "table", c.tableName(), "columns", fieldNames(missing))
		return out, true, nil
	}
	return nil, false, c.scrub(fmt.Errorf("add feature columns to %s: gave up after %d attempts: %w",
		c.tableName(), ensureColumnsAttempts, lastErr))
}

// missingFeatureColumns lists the feature columns the schema lacks, in field
// id order, and fails if one exists with an incompatible definition.
func missingFeatureColumns(s *iceberg.Schema) ([]iceberg.NestedField, error) {
	if err := checkSchema(s, false); err != nil {
		return nil, err
	}
	var missing []iceberg.NestedField
	for _, want := range TableSchema(true).Fields()[features.LegacySchema.NumFields():] {
		got, ok := s.FindFieldByName(want.Name)
		if !ok {
			missing = append(missing, want)
			continue
		}
		if err := compareField(want, got); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// checkSchema verifies that s holds the columns icefill writes: legacy
// columns always, feature columns when withFeatures (and whenever present),
// with the same field ids (icefill's Parquet carries them) and types. A
// column icefill writes as optional must not be required in the table.
func checkSchema(s *iceberg.Schema, withFeatures bool) error {
	for i, want := range TableSchema(true).Fields() {
		got, ok := s.FindFieldByName(want.Name)
		if !ok {
			if i < features.LegacySchema.NumFields() || withFeatures {
				return errkind.Usagef("column %s is missing from the table's schema", want.Name)
			}
			continue
		}
		if err := compareField(want, got); err != nil {
			return err
		}
	}
	return nil
}

func compareField(want, got iceberg.NestedField) error {
	if got.ID != want.ID {
		return errkind.Usagef("column %s has field id %d, icefill writes it as %d; this table was not created by icefill, or its schema was changed",
			want.Name, got.ID, want.ID)
	}
	if !got.Type.Equals(want.Type) {
		return errkind.Usagef("column %s has type %s, icefill writes %s", want.Name, got.Type, want.Type)
	}
	if got.Required && !want.Required {
		return errkind.Usagef("column %s is required in the table but optional in icefill's output", want.Name)
	}
	return nil
}

// warnOnSpec warns when an existing table is not partitioned the way icefill
// creates it: partition overwrites then replace more or less than a day.
func warnOnSpec(tbl *table.Table) {
	got, want := tbl.Spec(), PartitionSpec()
	if !got.CompatibleWith(&want) {
		slog.Warn("table is not partitioned by identity(event_date) as icefill creates it",
			"table", strings.Join(tbl.Identifier(), "."), "spec", got.String())
	}
}

func fieldNames(fs []iceberg.NestedField) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}
