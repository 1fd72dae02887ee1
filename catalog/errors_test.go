package catalog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/internal/errkind"
)

func TestMarkErr(t *testing.T) {
	cases := []struct {
		err    error
		want   errkind.Kind
		marked bool
	}{
		{fmt.Errorf("load: %w", icecat.ErrNoSuchTable), errkind.Usage, true},
		{rest.ErrUnauthorized, errkind.Usage, true},
		{rest.ErrServiceUnavailable, errkind.Unavailable, true},
		{rest.ErrCommitStateUnknown, errkind.Unavailable, true},
		{table.ErrCommitFailed, errkind.Unavailable, true},
		{errors.New("database is locked"), errkind.Unavailable, true},
		{rest.ErrBadRequest, errkind.Failed, false},
		{context.Canceled, errkind.Failed, false},
		{errkind.UsageError(errors.New("x")), errkind.Usage, true},
	}
	for _, c := range cases {
		got, marked := errkind.Of(markErr(c.err))
		if got != c.want || marked != c.marked {
			t.Errorf("markErr(%v): %v,%v want %v,%v", c.err, got, marked, c.want, c.marked)
		}
	}
	// SQLite's busy error says who holds the lock, and stays the error it was.
	busy := errors.New("database is locked (5) (SQLITE_BUSY)")
	if err := markErr(busy); !errors.Is(err, busy) || !strings.Contains(err.Error(), "paused, stopped or hung") {
		t.Errorf("markErr(%v) = %v: want it wrapped with the hint", busy, err)
	}
	if err := markErr(rest.ErrServiceUnavailable); strings.Contains(err.Error(), "write lock") {
		t.Errorf("markErr(%v) = %v: the SQLite hint on another error", rest.ErrServiceUnavailable, err)
	}
}

// TestCommitsThroughLoadedTablesAreMarked: a table loaded from the catalog
// commits through the marking wrapper, so a conflict a transaction meets
// is marked too.
func TestCommitsThroughLoadedTablesAreMarked(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.SQLitePath, cfg.Warehouse = filepath.Join(dir, "c.db"), filepath.Join(dir, "wh")
	c, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, _, err := c.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	tbl, err := c.LoadTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := c.LoadTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	addColumn := func(tbl *table.Table, name string) error {
		txn := tbl.NewTransaction()
		us := txn.UpdateSchema(true, false)
		us.AddColumn([]string{name}, iceberg.PrimitiveTypes.Int64, "", false, nil)
		if err := us.Commit(); err != nil {
			t.Fatal(err)
		}
		_, err := txn.Commit(ctx)
		return err
	}
	if err := addColumn(tbl, "a"); err != nil {
		t.Fatal(err)
	}
	// The stale table asserts the old schema id: the catalog refuses.
	err = addColumn(stale, "b")
	if err == nil {
		t.Fatal("a schema change on a stale table committed")
	}
	if k, _ := errkind.Of(err); k != errkind.Unavailable {
		t.Errorf("stale commit: %v marked %v, want unavailable", err, k)
	}
	if _, err := Open(ctx, Config{SQLitePath: filepath.Join(dir, "none.db"), ReadOnly: true}); !errors.Is(err, ErrNoCatalog) {
		t.Errorf("read-only open of a missing file: %v, want ErrNoCatalog", err)
	} else if k, _ := errkind.Of(err); k != errkind.Usage {
		t.Errorf("read-only open of a missing file marked %v, want usage", k)
	}
}
