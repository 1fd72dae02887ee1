package catalog

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	icecat "github.com/apache/iceberg-go/catalog"

	"github.com/icefill/icefill/internal/objstore"
)

func TestDefaultConfig(t *testing.T) {
	d := DefaultConfig()
	if d.Name != "icefill" || d.SQLitePath != "./icefill-data/catalog.db" || d.Warehouse != "./icefill-data/warehouse" ||
		d.Table != "analytics.clv_daily" || d.HTTPRetries != 5 || d.URI != "" {
		t.Errorf("DefaultConfig() = %+v", d)
	}
}

func TestOpenSQLiteForms(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir) // relative paths land in the temp dir
	tests := []struct {
		name    string
		cfg     Config
		wantDB  string
		wantWH  string
		wantErr string
	}{
		{name: "defaults", cfg: Config{}, wantDB: "icefill-data/catalog.db", wantWH: "icefill-data/warehouse"},
		{name: "SQLitePath", cfg: Config{SQLitePath: "a/b/cat.db", Warehouse: "wh1"}, wantDB: "a/b/cat.db", wantWH: "wh1"},
		{name: "sqlite:// URI", cfg: Config{URI: "sqlite://c/cat.db", Warehouse: "wh2"}, wantDB: "c/cat.db", wantWH: "wh2"},
		{name: "sqlite:/// absolute URI", cfg: Config{URI: "sqlite://" + filepath.Join(dir, "abs.db"), Warehouse: "wh3"}, wantDB: "abs.db", wantWH: "wh3"},
		{name: "bare path URI", cfg: Config{URI: "d/cat.db", Warehouse: "file://" + filepath.Join(dir, "wh4")}, wantDB: "d/cat.db", wantWH: "wh4"},
		{name: "unknown scheme", cfg: Config{URI: "ftp://host/x"}, wantErr: "unsupported scheme"},
		{name: "empty sqlite URI", cfg: Config{URI: "sqlite://"}, wantErr: "names no file"},
		{name: "table without namespace", cfg: Config{Table: "clv_daily"}, wantErr: "want namespace.table"},
		{name: "table with empty part", cfg: Config{Table: "analytics..x"}, wantErr: "empty namespace"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(context.Background(), tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if c.Kind() != KindSQLite {
				t.Errorf("Kind = %q", c.Kind())
			}
			if _, err := os.Stat(filepath.Join(dir, tc.wantDB)); err != nil {
				t.Errorf("database not created: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, tc.wantWH)); err != nil {
				t.Errorf("warehouse folder not created: %v", err)
			}
			tbl, created, err := c.EnsureTable(context.Background())
			if err != nil || !created {
				t.Fatalf("EnsureTable: created=%v err=%v", created, err)
			}
			wantLoc := "file://" + filepath.ToSlash(filepath.Join(dir, tc.wantWH)) + "/analytics.db/clv_daily"
			if tbl.Location() != wantLoc {
				t.Errorf("location %s, want %s", tbl.Location(), wantLoc)
			}
			if got := strings.Join(c.Ident(), "."); got != "analytics.clv_daily" {
				t.Errorf("Ident = %s", got)
			}
		})
	}
}

func TestCatalogNameIsolation(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	cfg := Config{SQLitePath: filepath.Join(dir, "cat.db"), Warehouse: filepath.Join(dir, "wh")}
	a := mustOpen(t, cfg)
	if _, _, err := a.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	// Same name, new handle: sees the table.
	if _, err := mustOpen(t, cfg).LoadTable(ctx); err != nil {
		t.Fatalf("reopened catalog: %v", err)
	}
	// Another name on the same file sees nothing, and says how to fix it.
	other := cfg
	other.Name = "other"
	_, err := mustOpen(t, other).LoadTable(ctx)
	if !errors.Is(err, icecat.ErrNoSuchTable) && !errors.Is(err, icecat.ErrNoSuchNamespace) {
		t.Fatalf("err = %v, want not found", err)
	}
	if !strings.Contains(err.Error(), "icefill run") {
		t.Errorf("not-found error gives no hint: %v", err)
	}
}

func mustOpen(t *testing.T, cfg Config) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

const (
	testToken     = "tok-3c7a9f1e-SECRET"
	testCredSec   = "cred-9b2d-SECRET"
	testS3Secret  = "s3key-77ab-SECRET"
	testS3Session = "s3sess-1f2e-SECRET"
)

func secretConfig(uri string) Config {
	return Config{
		URI:        uri,
		Token:      testToken,
		Credential: "client-id:" + testCredSec,
		S3: objstore.S3Options{Endpoint: "http://minio:9000", Region: "eu-west-1",
			AccessKeyID: "AKIAEXAMPLE", SecretAccessKey: testS3Secret, SessionToken: testS3Session},
	}
}

func assertNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range []string{testToken, testCredSec, testS3Secret, testS3Session} {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains a secret (%s): %s", what, sec, s)
		}
	}
}

func TestDescribeAndErrorsHaveNoSecrets(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	// SQLite with S3 keys configured.
	cfg := secretConfig("")
	cfg.SQLitePath = filepath.Join(dir, "cat.db")
	cfg.Warehouse = "s3://bucket/wh"
	c := mustOpen(t, cfg)
	d := c.Describe()
	assertNoSecrets(t, "sqlite Describe", d)
	for _, want := range []string{"SQLite", "cat.db", "s3://bucket/wh", "analytics.clv_daily", "minio:9000"} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe %q lacks %q", d, want)
		}
	}

	// A REST server that rejects the token and echoes it back in its error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
			"message": "invalid token " + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "),
			"type":    "NotAuthorizedException", "code": 401}})
	}))
	defer srv.Close()
	_, err := Open(ctx, secretConfig(srv.URL))
	if err == nil {
		t.Fatal("Open succeeded against a 401 server")
	}
	assertNoSecrets(t, "REST Open error", err.Error())
	if !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("the echoed token was not redacted: %v", err)
	}

	// Secrets in the URI's user info and query never show.
	_, err = Open(ctx, Config{URI: "ftp://user:" + testToken + "@host/x?token=" + testToken})
	if err == nil {
		t.Fatal("want error")
	}
	assertNoSecrets(t, "bad URI error", err.Error())

	// A REST Describe with every secret set.
	ok := newConfigServer(t, configServer{})
	cfg = secretConfig(ok.URL)
	cfg.Warehouse = "s3://bucket/wh"
	rc := mustOpen(t, cfg)
	assertNoSecrets(t, "REST Describe", rc.Describe())
	if !strings.Contains(rc.Describe(), "bearer token") || !strings.Contains(rc.Describe(), ok.URL) {
		t.Errorf("REST Describe = %q", rc.Describe())
	}
}

// configServer is a minimal REST catalog: /v1/config, an OAuth token
// endpoint and 404 for everything else, recording what it saw.
type configServer struct {
	failConfigFirst int // answer 503 to the first N config requests
	overrides       map[string]string
}

type seenRequest struct {
	method, path string
	query        url.Values
	header       http.Header
	body         string
}

type recorder struct {
	mu   sync.Mutex
	reqs []seenRequest
}

func (r *recorder) add(req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, seenRequest{req.Method, req.URL.Path, req.URL.Query(), req.Header.Clone(), string(b)})
}

func (r *recorder) all() []seenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seenRequest(nil), r.reqs...)
}

func (r *recorder) find(path string) []seenRequest {
	var out []seenRequest
	for _, q := range r.all() {
		if q.path == path {
			out = append(out, q)
		}
	}
	return out
}

type testServer struct {
	*httptest.Server
	rec *recorder
}

func configHandler(cs configServer, rec *recorder) http.Handler {
	var configCalls atomic.Int32
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.URL.Path == "/v1/config":
			if int(configCalls.Add(1)) <= cs.failConfigFirst {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			ov := cs.overrides
			if ov == nil {
				ov = map[string]string{}
			}
			json.NewEncoder(w).Encode(map[string]any{"defaults": map[string]string{}, "overrides": ov})
		case strings.HasSuffix(r.URL.Path, "/token") || strings.HasSuffix(r.URL.Path, "/oauth/tokens"):
			json.NewEncoder(w).Encode(map[string]any{"access_token": "issued-access-token",
				"token_type": "bearer", "expires_in": 3600, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
		default:
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
				"message": "Table does not exist", "type": "NoSuchTableException", "code": 404}})
		}
	})
}

func newConfigServer(t *testing.T, cs configServer) testServer {
	t.Helper()
	rec := &recorder{}
	srv := httptest.NewServer(configHandler(cs, rec))
	t.Cleanup(srv.Close)
	return testServer{srv, rec}
}

func TestOpenREST(t *testing.T) {
	ctx := context.Background()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))

	tests := []struct {
		name  string
		srv   configServer
		cfg   func(srvURL string) Config
		check func(t *testing.T, c *Catalog, rec *recorder, srvURL string)
	}{
		{
			name: "minimal config",
			cfg:  func(u string) Config { return Config{URI: u} },
			check: func(t *testing.T, c *Catalog, rec *recorder, _ string) {
				if c.Kind() != KindREST {
					t.Errorf("Kind = %q", c.Kind())
				}
				cfgReqs := rec.find("/v1/config")
				if len(cfgReqs) != 1 {
					t.Fatalf("%d config requests", len(cfgReqs))
				}
				if w := cfgReqs[0].query.Get("warehouse"); w != "" {
					t.Errorf("the local default warehouse was sent: %q", w)
				}
				if a := cfgReqs[0].header.Get("Authorization"); a != "" {
					t.Errorf("unexpected Authorization %q", a)
				}
			},
		},
		{
			name: "config 503 retried; token, headers, warehouse, prefix",
			srv:  configServer{failConfigFirst: 2},
			cfg: func(u string) Config {
				return Config{URI: u + "/", Token: testToken, Warehouse: "s3://bucket/wh", Prefix: "ws1",
					Headers: map[string]string{"X-Tenant": "acme"}, HTTPRetries: 3}
			},
			check: func(t *testing.T, c *Catalog, rec *recorder, _ string) {
				cfgReqs := rec.find("/v1/config")
				if len(cfgReqs) != 3 {
					t.Errorf("%d config requests, want 3 (2 retried 503s)", len(cfgReqs))
				}
				last := cfgReqs[len(cfgReqs)-1]
				if a := last.header.Get("Authorization"); a != "Bearer "+testToken {
					t.Errorf("Authorization = %q", a)
				}
				if h := last.header.Get("X-Tenant"); h != "acme" {
					t.Errorf("X-Tenant = %q", h)
				}
				if w := last.query.Get("warehouse"); w != "s3://bucket/wh" {
					t.Errorf("warehouse = %q", w)
				}
				// The prefix applies after /v1/config; a missing table gets the hint.
				_, err := c.LoadTable(context.Background())
				if !errors.Is(err, icecat.ErrNoSuchTable) || !strings.Contains(err.Error(), "icefill run") {
					t.Errorf("LoadTable err = %v", err)
				}
				if n := len(rec.find("/v1/ws1/namespaces/analytics/tables/clv_daily")); n != 1 {
					t.Errorf("%d load requests under the prefix, want 1: %+v", n, rec.all())
				}
			},
		},
		{
			name: "OAuth2 client credentials at a custom token URI with scope",
			cfg: func(u string) Config {
				return Config{URI: u, Credential: "my-client:" + testCredSec, OAuthServerURI: u + "/auth/token", Scope: "PRINCIPAL_ROLE:ALL"}
			},
			check: func(t *testing.T, c *Catalog, rec *recorder, _ string) {
				tok := rec.find("/auth/token")
				if len(tok) == 0 {
					t.Fatalf("token endpoint not called: %+v", rec.all())
				}
				form, _ := url.ParseQuery(tok[0].body)
				if form.Get("client_id") != "my-client" || form.Get("client_secret") != testCredSec ||
					form.Get("scope") != "PRINCIPAL_ROLE:ALL" || form.Get("grant_type") != "client_credentials" {
					t.Errorf("token request form = %v", form)
				}
				cfgReqs := rec.find("/v1/config")
				if len(cfgReqs) == 0 || cfgReqs[0].header.Get("Authorization") != "Bearer issued-access-token" {
					t.Errorf("config request not authorized with the issued token: %+v", cfgReqs)
				}
				if !strings.Contains(c.Describe(), "OAuth2 client credentials") {
					t.Errorf("Describe = %q", c.Describe())
				}
			},
		},
		{
			name: "SigV4",
			cfg: func(u string) Config {
				return Config{URI: u, SigV4: true, SigV4Region: "eu-central-1", SigV4Service: "glue"}
			},
			check: func(t *testing.T, c *Catalog, rec *recorder, _ string) {
				a := rec.find("/v1/config")[0].header.Get("Authorization")
				if !strings.HasPrefix(a, "AWS4-HMAC-SHA256") || !strings.Contains(a, "/eu-central-1/glue/") {
					t.Errorf("Authorization = %q, want a SigV4 signature for eu-central-1/glue", a)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newConfigServer(t, tc.srv)
			cfg := tc.cfg(srv.URL)
			c, err := Open(ctx, cfg)
			if err != nil {
				t.Fatalf("Open: %v (requests %+v)", err, srv.rec.all())
			}
			defer c.Close()
			assertNoSecrets(t, "Describe", c.Describe())
			tc.check(t, c, srv.rec, srv.URL)
		})
	}
}

func TestOpenRESTTLS(t *testing.T) {
	ctx := context.Background()
	rec := &recorder{}
	srv := httptest.NewTLSServer(configHandler(configServer{}, rec))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	badCA := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(badCA, []byte("not a certificate"), 0o600)

	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"unknown CA fails without retrying", Config{URI: srv.URL}, "certificate"},
		{"CA file", Config{URI: srv.URL, CAFile: caFile}, ""},
		{"skip verify", Config{URI: srv.URL, InsecureSkipVerify: true}, ""},
		{"CA file without certificates", Config{URI: srv.URL, CAFile: badCA}, "no PEM certificate"},
		{"missing CA file", Config{URI: srv.URL, CAFile: badCA + ".missing"}, "CA file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Open(ctx, tc.cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
		})
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:pw@host:8181/api?token=x#f": "https://host:8181/api?…",
		"http://host": "http://host",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestS3Props(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", "http://env-endpoint:9000")
	tests := []struct {
		name string
		in   objstore.S3Options
		want map[string]string
	}{
		{"empty", objstore.S3Options{}, map[string]string{}},
		{"full", objstore.S3Options{Endpoint: "http://m:9000", Region: "r", AccessKeyID: "a", SecretAccessKey: "s", SessionToken: "t"},
			map[string]string{"s3.endpoint": "http://m:9000", "s3.region": "r", "s3.access-key-id": "a", "s3.secret-access-key": "s", "s3.session-token": "t"}},
		{"half a key pair is dropped", objstore.S3Options{AccessKeyID: "a"}, map[string]string{}},
		{"path style takes the SDK's endpoint", objstore.S3Options{PathStyle: true}, map[string]string{"s3.endpoint": "http://env-endpoint:9000"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s3Props(tc.in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}
