package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/iceberg-go"
	icecat "github.com/apache/iceberg-go/catalog"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	iceio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // registers the s3:// FileIO scheme
	"github.com/apache/iceberg-go/table"
	"github.com/uptrace/bun/driver/sqliteshim"

	"github.com/icefill/icefill/internal/errkind"
	"github.com/icefill/icefill/internal/objstore"
)

// Defaults of Config.
const (
	DefaultName        = "icefill"
	DefaultSQLitePath  = "./icefill-data/catalog.db"
	DefaultWarehouse   = "./icefill-data/warehouse"
	DefaultTable       = "analytics.clv_daily"
	DefaultHTTPRetries = 5
)

// ErrNoCatalog is returned (wrapped) by Open with Config.ReadOnly when the
// embedded catalog's SQLite file does not exist.
var ErrNoCatalog = errors.New("no catalog there")

// Kinds of catalog, as returned by Catalog.Kind.
const (
	KindSQLite = "sqlite"
	KindREST   = "rest"
)

// Config says which catalog to open and how. Zero fields take the defaults
// of DefaultConfig when Open is called.
type Config struct {
	// URI selects the catalog: "" means the embedded SQLite catalog at
	// SQLitePath; "http://…" or "https://…" a REST catalog; "sqlite://PATH"
	// or a bare path the SQLite file at PATH.
	URI string
	// Name is the catalog name (default "icefill"). For SQLite it is the
	// catalog_name stored with every row; other engines must use the same.
	Name string
	// SQLitePath is the SQLite file used when URI is "" (default
	// "./icefill-data/catalog.db").
	SQLitePath string
	// Warehouse is where table data and metadata go (default
	// "./icefill-data/warehouse", turned into an absolute file:// URL for
	// SQLite); it may be s3://bucket/prefix. For REST it is passed as the
	// warehouse option, unless it is the local default, which is not sent.
	Warehouse string
	// Table is "namespace.table" (default "analytics.clv_daily"). The last
	// dot separates the table name; earlier dots make a nested namespace.
	Table string
	// S3 configures the warehouse FileIO (s3.endpoint, s3.region,
	// s3.access-key-id, s3.secret-access-key, s3.session-token). Keys are
	// passed only as a complete pair; otherwise the AWS default chain is used.
	S3 objstore.S3Options

	// REST authentication: a static bearer Token, or OAuth2 client
	// credentials "id:secret" (Credential) exchanged at OAuthServerURI
	// (default {URI}/v1/oauth/tokens) for Scope (default "catalog"). When both
	// are set the token wins.
	Token, Credential, OAuthServerURI, Scope string
	// TLS for REST: an extra CA bundle (PEM), and an unsafe switch to skip
	// certificate verification.
	CAFile             string
	InsecureSkipVerify bool
	// SigV4 signs REST requests with AWS SigV4 (AWS default credential
	// chain); SigV4Region overrides the region, SigV4Service defaults to
	// "execute-api" (use "glue" or "s3tables" for those services).
	SigV4        bool
	SigV4Region  string
	SigV4Service string
	// Prefix is the REST path prefix after /v1 (usually handed out by the
	// server's /v1/config; set it only if the server needs it).
	Prefix string
	// Headers are extra HTTP headers sent with every REST request.
	Headers map[string]string
	// HTTPRetries bounds the retries of one REST request (0 means the default
	// 5; negative disables retries).
	HTTPRetries int
	// ReadOnly is for commands that only read: the embedded catalog's
	// SQLite file must already exist (a wrong path is named, not created)
	// and no warehouse folder is created.
	ReadOnly bool
}

// DefaultConfig returns the configuration of the embedded catalog with all
// defaults filled in.
func DefaultConfig() Config {
	return Config{
		Name:        DefaultName,
		SQLitePath:  DefaultSQLitePath,
		Warehouse:   DefaultWarehouse,
		Table:       DefaultTable,
		HTTPRetries: DefaultHTTPRetries,
	}
}

// withDefaults fills zero fields.
func (cfg Config) withDefaults() Config {
	d := DefaultConfig()
	if cfg.Name == "" {
		cfg.Name = d.Name
	}
	if cfg.SQLitePath == "" {
		cfg.SQLitePath = d.SQLitePath
	}
	if cfg.Warehouse == "" {
		cfg.Warehouse = d.Warehouse
	}
	if cfg.Table == "" {
		cfg.Table = d.Table
	}
	if cfg.HTTPRetries == 0 {
		cfg.HTTPRetries = d.HTTPRetries
	}
	return cfg
}

// secrets lists the configured secret values, for scrubbing error messages.
func (cfg Config) secrets() []string {
	var out []string
	add := func(s string) {
		if len(s) >= 4 { // shorter strings would mangle ordinary text
			out = append(out, s)
		}
	}
	add(cfg.Token)
	add(cfg.Credential)
	if _, secret, ok := strings.Cut(cfg.Credential, ":"); ok {
		add(secret)
	}
	add(cfg.S3.SecretAccessKey)
	add(cfg.S3.SessionToken)
	for k, v := range cfg.Headers { // may carry API keys
		k = strings.ToLower(k)
		for _, w := range []string{"auth", "token", "key", "secret", "cookie", "pass", "credential"} {
			if strings.Contains(k, w) {
				add(v)
				break
			}
		}
	}
	return out
}

// Catalog is an open catalog plus the identifier of icefill's table in it.
type Catalog struct {
	cat   icecat.Catalog
	ident table.Identifier
	cfg   Config
	kind  string

	// desc is the secret-free description returned by Describe.
	desc string
	// closers run in order on Close (catalog first, then its resources).
	closers []func() error
}

// Iceberg returns the underlying iceberg-go catalog.
func (c *Catalog) Iceberg() icecat.Catalog { return c.cat }

// Ident returns the table identifier, e.g. ["analytics", "clv_daily"].
func (c *Catalog) Ident() table.Identifier { return append(table.Identifier(nil), c.ident...) }

// Kind returns "sqlite" or "rest".
func (c *Catalog) Kind() string { return c.kind }

// Config returns the configuration the catalog was opened with (defaults
// filled in). It contains secrets: never print it.
func (c *Catalog) Config() Config { return c.cfg }

// Describe is a one-line human description of the catalog and table. It never
// contains tokens, credentials or secret keys.
func (c *Catalog) Describe() string { return c.desc }

// Close releases the catalog and its database handle or HTTP connections.
func (c *Catalog) Close() error {
	var errs []error
	for _, f := range c.closers {
		if err := f(); err != nil {
			errs = append(errs, err)
		}
	}
	c.closers = nil
	return c.scrub(errors.Join(errs...))
}

// scrub removes configured secrets from an error's message, keeping the
// error chain for errors.Is/As.
func (c *Catalog) scrub(err error) error { return scrubErr(err, c.cfg.secrets()) }

func scrubErr(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, s := range secrets {
		if strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
			changed = true
		}
	}
	if !changed {
		return err
	}
	return &scrubbedError{msg: msg, err: err}
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// Open opens the catalog cfg describes. It does not create the table; see
// EnsureTable.
func Open(ctx context.Context, cfg Config) (*Catalog, error) {
	cfg = cfg.withDefaults()
	ident, err := ParseIdent(cfg.Table)
	if err != nil {
		return nil, errkind.UsageError(err)
	}
	var c *Catalog
	switch kind, path, err := classifyURI(cfg.URI, cfg.SQLitePath); {
	case err != nil:
		return nil, errkind.UsageError(err)
	case kind == KindREST:
		c, err = openREST(ctx, cfg)
		if err != nil {
			return nil, scrubErr(markOpenErr(err), cfg.secrets())
		}
	default:
		c, err = openSQLite(ctx, cfg, path)
		if err != nil {
			return nil, scrubErr(err, cfg.secrets())
		}
	}
	c.cat = markingCatalog{c.cat}
	c.ident = ident
	c.cfg = cfg
	c.desc += ", table " + strings.Join(ident, ".")
	return c, nil
}

// ParseIdent splits "namespace.table" into an identifier. The namespace may
// itself be nested ("a.b.table").
func ParseIdent(s string) (table.Identifier, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return nil, fmt.Errorf("table %q: want namespace.table, e.g. %s", s, DefaultTable)
	}
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("table %q: empty namespace or table name", s)
		}
	}
	return table.Identifier(parts), nil
}

// classifyURI returns the catalog kind and, for SQLite, the database path.
func classifyURI(uri, sqlitePath string) (kind, path string, err error) {
	lower := strings.ToLower(uri)
	switch {
	case uri == "":
		return KindSQLite, sqlitePath, nil
	case strings.HasPrefix(lower, "http://"), strings.HasPrefix(lower, "https://"):
		u, err := url.Parse(uri)
		if err != nil {
			return "", "", fmt.Errorf("catalog URI %s: %w", redactURL(uri), errors.Unwrap(err))
		}
		if u.Host == "" {
			return "", "", fmt.Errorf("catalog URI %s names no host", redactURL(uri))
		}
		return KindREST, "", nil
	case strings.HasPrefix(lower, "sqlite://"):
		p := uri[len("sqlite://"):]
		if p == "" {
			return "", "", fmt.Errorf("catalog URI %q names no file: write sqlite://PATH", uri)
		}
		return KindSQLite, p, nil
	case strings.Contains(uri, "://"):
		return "", "", fmt.Errorf("catalog URI %s: unsupported scheme; use http(s)://HOST for a REST catalog, or sqlite://PATH or a path for the embedded one", redactURL(uri))
	default:
		return KindSQLite, uri, nil
	}
}

// openSQLite opens (creating if needed) the SQLite catalog at path.
//
// The file is an ordinary JDBC-style Iceberg SQL catalog: PyIceberg's
// SqlCatalog and Spark's JdbcCatalog can open the same file when configured
// with the same catalog name (cfg.Name) and warehouse.
func openSQLite(_ context.Context, cfg Config, path string) (*Catalog, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, errkind.Usagef("catalog database %q: %w", path, err)
	}
	if cfg.ReadOnly {
		if _, err := os.Stat(abs); err != nil {
			return nil, errkind.UsageError(fmt.Errorf("catalog database %s: %w (%w: pass the --catalog-db or --catalog-uri that `icefill run` used)", abs, err, ErrNoCatalog))
		}
	} else if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, errkind.Usagef("create the catalog database's folder: %w", err)
	}
	warehouse, err := warehouseURL(cfg.Warehouse, !cfg.ReadOnly)
	if err != nil {
		return nil, errkind.UsageError(err)
	}
	// WAL and a busy timeout let several icefill processes commit at once:
	// without them concurrent committers get SQLITE_BUSY, which the catalog
	// reports as a commit of unknown outcome rather than as a conflict.
	dsn := "file:" + sqliteEscape(filepath.ToSlash(abs)) + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open(sqliteshim.ShimName, dsn)
	if err != nil {
		return nil, errkind.Usagef("open catalog database %s: %w", abs, err)
	}
	props := s3Props(cfg.S3)
	props["warehouse"] = warehouse
	cat, err := sqlcat.NewCatalog(cfg.Name, db, sqlcat.SQLite, props)
	if err != nil {
		db.Close()
		return nil, errkind.Usagef("open SQLite catalog %s: %w", abs, err)
	}
	desc := fmt.Sprintf("embedded SQLite catalog %q at %s, warehouse %s", cfg.Name, abs, warehouse)
	if ep := cfg.S3.Endpoint; ep != "" && isS3URL(warehouse) {
		desc += " (S3 endpoint " + redactURL(ep) + ")"
	}
	return &Catalog{
		cat:     cat,
		kind:    KindSQLite,
		desc:    desc,
		closers: []func() error{cat.Close, db.Close},
	}, nil
}

// sqliteEscape percent-encodes the characters that would end the file name
// part of a SQLite URI filename.
func sqliteEscape(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(p)
}

// warehouseURL turns a local path into an absolute file:// URL and leaves
// URLs (s3://, file://, …) alone. Local folders are created when create is
// set.
func warehouseURL(w string, create bool) (string, error) {
	if strings.Contains(w, "://") {
		if strings.HasPrefix(strings.ToLower(w), "file://") {
			u, err := url.Parse(w)
			if err != nil {
				return "", fmt.Errorf("warehouse %q: %w", w, err)
			}
			if err := mkdirIf(create, u.Path); err != nil {
				return "", fmt.Errorf("create warehouse folder: %w", err)
			}
		}
		return strings.TrimRight(w, "/"), nil
	}
	abs, err := filepath.Abs(w)
	if err != nil {
		return "", fmt.Errorf("warehouse %q: %w", w, err)
	}
	if err := mkdirIf(create, abs); err != nil {
		return "", fmt.Errorf("create warehouse folder: %w", err)
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String(), nil
}

func mkdirIf(create bool, dir string) error {
	if !create {
		return nil
	}
	return os.MkdirAll(dir, 0o755)
}

func isS3URL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "s3://") || strings.HasPrefix(l, "s3a://") || strings.HasPrefix(l, "s3n://")
}

// s3Props converts S3 options into iceberg-go FileIO properties. Static keys
// are passed only as a complete pair (iceberg-go rejects half a pair);
// otherwise the AWS default credential chain applies.
func s3Props(o objstore.S3Options) iceberg.Properties {
	p := iceberg.Properties{}
	endpoint := o.Endpoint
	if endpoint == "" && o.PathStyle {
		// iceberg-go switches to path-style addressing exactly when
		// s3.endpoint is set; a custom endpoint given to the AWS SDK by
		// environment would otherwise be addressed virtual-host style.
		endpoint = os.Getenv("AWS_ENDPOINT_URL_S3")
		if endpoint == "" {
			endpoint = os.Getenv("AWS_ENDPOINT_URL")
		}
	}
	if endpoint != "" {
		p[iceio.S3EndpointURL] = endpoint
	}
	if o.Region != "" {
		p[iceio.S3Region] = o.Region
	}
	if o.AccessKeyID != "" && o.SecretAccessKey != "" {
		p[iceio.S3AccessKeyID] = o.AccessKeyID
		p[iceio.S3SecretAccessKey] = o.SecretAccessKey
		if o.SessionToken != "" {
			p[iceio.S3SessionToken] = o.SessionToken
		}
	}
	return p
}

// redactURL returns a URL fit for messages: no user info, no query string.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil // user info may be a token
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	u.Fragment = ""
	return u.String()
}
