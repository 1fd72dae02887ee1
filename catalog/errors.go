package catalog

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/apache/iceberg-go/table"

	"github.com/icefill/icefill/internal/errkind"
)

// markErr says what the user can do about an error the catalog returned:
// a missing table or namespace, or refused credentials, are theirs to fix
// (errkind.Usage); an interrupted call stays as it is; a malformed request
// is icefill's bug (unmarked); anything else — a failed or unknown commit,
// a server error, a broken connection, a busy database — is the catalog
// being unavailable, which a retry can fix.
func markErr(err error) error {
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case isNotFound(err), errors.Is(err, rest.ErrUnauthorized), errors.Is(err, rest.ErrForbidden),
		errors.Is(err, rest.ErrAuthorizationExpired), errors.Is(err, rest.ErrOAuthError):
		return errkind.UsageError(err)
	case errors.Is(err, rest.ErrBadRequest):
		return err
	}
	if _, marked := errkind.Of(err); marked {
		return err
	}
	if strings.Contains(err.Error(), "database is locked") {
		err = fmt.Errorf("%w (%s)", err, sqliteBusyHint)
	}
	return errkind.UnavailableError(err)
}

// sqliteBusyHint explains SQLite's "database is locked" (SQLITE_BUSY): the
// embedded catalog allows one writer at a time, and a process paused or
// stopped inside its catalog commit (SIGSTOP, a suspended laptop, a
// debugger) keeps that lock until it runs again, however long; every other
// writer gives up after the busy timeout. docs/commit-protocol.md §5.1.
const sqliteBusyHint = "another process has held the embedded catalog's write lock for over 10 s: " +
	"a paused, stopped or hung icefill, Spark or PyIceberg process using the same --catalog-db; " +
	"nothing was committed: retry once it runs again or has ended"

// markingCatalog is the iceberg-go catalog with every table load, creation
// and commit error marked by markErr. Tables it returns commit through it,
// so transactions committed by snapshots and rewrite are marked too.
type markingCatalog struct {
	icecat.Catalog
}

func (m markingCatalog) rebind(tbl *table.Table) *table.Table {
	return table.New(tbl.Identifier(), tbl.Metadata(), tbl.MetadataLocation(), tbl.FS, m)
}

func (m markingCatalog) LoadTable(ctx context.Context, ident table.Identifier) (*table.Table, error) {
	tbl, err := m.Catalog.LoadTable(ctx, ident)
	if err != nil {
		return nil, markErr(err)
	}
	return m.rebind(tbl), nil
}

func (m markingCatalog) CreateTable(ctx context.Context, ident table.Identifier, schema *iceberg.Schema, opts ...icecat.CreateTableOpt) (*table.Table, error) {
	tbl, err := m.Catalog.CreateTable(ctx, ident, schema, opts...)
	if err != nil {
		return nil, markErr(err)
	}
	return m.rebind(tbl), nil
}

func (m markingCatalog) CommitTable(ctx context.Context, ident table.Identifier, reqs []table.Requirement, updates []table.Update) (table.Metadata, string, error) {
	meta, loc, err := m.Catalog.CommitTable(ctx, ident, reqs, updates)
	return meta, loc, markErr(err)
}

func (m markingCatalog) CreateNamespace(ctx context.Context, ns table.Identifier, props iceberg.Properties) error {
	return markErr(m.Catalog.CreateNamespace(ctx, ns, props))
}

func (m markingCatalog) CheckNamespaceExists(ctx context.Context, ns table.Identifier) (bool, error) {
	ok, err := m.Catalog.CheckNamespaceExists(ctx, ns)
	return ok, markErr(err)
}

// markOpenErr marks a failure to open a REST catalog: refused credentials
// and an unreachable host name are the user's to fix; other failures of
// the server are unavailability.
func markOpenErr(err error) error {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return errkind.UsageError(err)
	}
	return markErr(err)
}
