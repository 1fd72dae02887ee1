package catalog

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go/catalog/rest"
	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
)

// retryPolicy says how the REST client retries one HTTP request.
//
// Safe methods (GET, HEAD, OPTIONS) are retried with exponential backoff on
// connection errors and on 429, 502, 503 and 504, honouring Retry-After.
//
// Every other method (POST above all: commits, table and namespace creation;
// also DELETE and PUT, whose replays would answer 404/409 for work that was
// done) is retried only when the server certainly did not process it: the
// connection could not be established (dial error, connection refused), or
// the server answered 429. It is never retried after a 5xx or a lost
// response: a commit that landed but whose answer was lost would come back as
// a 409 conflict, a success that looks like a failure. iceberg-go reports a
// 5xx on commit as rest.ErrCommitStateUnknown, and the engine resolves
// unknown outcomes by reading the table back.
type retryPolicy struct {
	Retries          int           // retries after the first attempt
	WaitMin, WaitMax time.Duration // exponential backoff bounds
	MaxRetryAfter    time.Duration // cap on a server's Retry-After
	Logger           func() *slog.Logger
}

func defaultRetryPolicy(retries int) retryPolicy {
	if retries < 0 {
		retries = 0
	}
	return retryPolicy{
		Retries:       retries,
		WaitMin:       250 * time.Millisecond,
		WaitMax:       15 * time.Second,
		MaxRetryAfter: 2 * time.Minute,
		Logger:        slog.Default,
	}
}

func (p retryPolicy) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger()
}

// reqInfo travels in the request context from restTransport.RoundTrip to the
// retry hooks, which otherwise do not see the request on connection errors.
type reqInfo struct {
	method string
	path   string
	tries  int
}

type reqInfoKey struct{}

// restTransport is the http.RoundTripper handed to iceberg-go's REST
// catalog. TLS settings live on its base transport: iceberg-go refuses
// rest.WithTLSConfig together with rest.WithCustomTransport.
type restTransport struct {
	base  *http.Transport
	retry *retryablehttp.RoundTripper
}

func (t *restTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	info := &reqInfo{method: strings.ToUpper(req.Method), path: req.URL.Path}
	return t.retry.RoundTrip(req.WithContext(context.WithValue(req.Context(), reqInfoKey{}, info)))
}

// CloseIdleConnections closes idle keep-alive connections.
func (t *restTransport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// newRESTTransport builds the retrying transport with cfg's TLS settings.
func newRESTTransport(cfg Config, pol retryPolicy) (*restTransport, error) {
	tlsCfg, err := restTLSConfig(cfg)
	if err != nil {
		return nil, err
	}
	base := cleanhttp.DefaultPooledTransport()
	base.TLSClientConfig = tlsCfg
	// A server that accepts the request and never answers must not hang
	// icefill forever. For a POST this is a lost response: not retried.
	base.ResponseHeaderTimeout = 2 * time.Minute
	hc := &http.Client{
		Transport: base,
		// Redirects are followed by the outer client iceberg-go builds.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rc := &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       nil, // its logs carry full URLs; we log ourselves
		RetryWaitMin: pol.WaitMin,
		RetryWaitMax: pol.WaitMax,
		RetryMax:     pol.Retries,
		CheckRetry:   pol.checkRetry,
		Backoff:      pol.backoff,
		ErrorHandler: pol.giveUp,
	}
	return &restTransport{base: base, retry: &retryablehttp.RoundTripper{Client: rc}}, nil
}

func restTLSConfig(cfg Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("catalog CA file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("catalog CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.InsecureSkipVerify {
		tc.InsecureSkipVerify = true //nolint:gosec // explicit user choice
		slog.Warn("TLS certificate verification of the REST catalog is disabled (--catalog-insecure-skip-verify)")
	}
	return tc, nil
}

// safeMethod reports whether replaying the request cannot change the outcome.
func safeMethod(m string) bool {
	switch strings.ToUpper(m) {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// notSent reports whether err proves the request never reached the server:
// the connection could not be established.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && (op.Op == "dial" || op.Op == "proxyconnect") {
		return true
	}
	return false
}

func (p retryPolicy) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, nil // the caller gives up; the error path reports ctx's error
	}
	info, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	if info == nil { // not through restTransport: be conservative
		info = &reqInfo{method: http.MethodPost}
		if resp != nil && resp.Request != nil {
			info.method, info.path = resp.Request.Method, resp.Request.URL.Path
		}
	}
	info.tries++
	safe := safeMethod(info.method)

	var reason string
	level := slog.LevelWarn
	if err != nil {
		// Certificate, scheme and redirect errors do not heal by retrying.
		if ok, _ := retryablehttp.DefaultRetryPolicy(ctx, nil, err); !ok {
			return false, nil
		}
		if !safe && !notSent(err) {
			p.logger().Debug("REST catalog: not retrying a request that may have reached the server",
				"method", info.method, "path", info.path, "error", errText(err))
			return false, nil
		}
		reason = errText(err)
	} else {
		switch resp.StatusCode {
		case http.StatusTooManyRequests:
			level = slog.LevelDebug
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			if !safe {
				p.logger().Debug("REST catalog: not retrying a request after a server error: its outcome is unknown",
					"method", info.method, "path", info.path, "status", resp.StatusCode)
				return false, nil
			}
		default:
			return false, nil
		}
		reason = resp.Status
	}
	if info.tries > p.Retries {
		return true, nil // retryablehttp stops here and calls giveUp
	}
	p.logger().Log(ctx, level, "REST catalog request failed; retrying",
		"method", info.method, "path", info.path, "attempt", info.tries, "max_retries", p.Retries, "reason", reason)
	return true, nil
}

// errText is an error's message without the request URL net/http puts
// around it.
func errText(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// backoff waits as the server's Retry-After says (capped), else exponential
// backoff with jitter.
func (p retryPolicy) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After")); ok {
			if p.MaxRetryAfter > 0 && d > p.MaxRetryAfter {
				d = p.MaxRetryAfter
			}
			return d
		}
	}
	d := minWait
	for i := 0; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	if d > maxWait {
		d = maxWait
	}
	if d <= 0 {
		return 0
	}
	// Equal jitter: a random wait in the upper half, d/2 .. d.
	return d/2 + rand.N(d/2+1)
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP date.
func parseRetryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// giveUp runs when retryablehttp stops without success. A final response is
// passed through untouched, so iceberg-go maps its status (503 on a commit
// becomes ErrCommitStateUnknown, and so on). Errors say how often they were
// tried.
func (p retryPolicy) giveUp(resp *http.Response, err error, tries int) (*http.Response, error) {
	if resp != nil {
		if tries > 1 {
			p.logger().Warn("REST catalog request still failing; giving up",
				"method", resp.Request.Method, "path", resp.Request.URL.Path, "status", resp.StatusCode, "attempts", tries)
		}
		return resp, nil
	}
	if err == nil {
		return nil, fmt.Errorf("REST catalog request failed after %d attempt(s)", tries)
	}
	// net/http wraps our error in a url.Error naming the method and URL.
	inner := err
	var ue *url.Error
	if errors.As(err, &ue) {
		inner = ue.Err
		if errors.Is(inner, context.Canceled) || errors.Is(inner, context.DeadlineExceeded) {
			return nil, inner
		}
		if !safeMethod(ue.Op) && !notSent(inner) {
			return nil, fmt.Errorf("%w (not retried: the request may have reached the server)", inner)
		}
	}
	if tries > 1 {
		p.logger().Warn("REST catalog request failing; giving up", "attempts", tries, "error", inner.Error())
		return nil, fmt.Errorf("%w (gave up after %d attempts)", inner, tries)
	}
	return nil, inner
}

// restOptions translates cfg into iceberg-go REST catalog options.
func restOptions(cfg Config, tr http.RoundTripper) ([]rest.Option, error) {
	opts := []rest.Option{rest.WithCustomTransport(tr)}
	switch {
	case cfg.Token != "":
		opts = append(opts, rest.WithOAuthToken(cfg.Token))
	case cfg.Credential != "":
		opts = append(opts, rest.WithCredential(cfg.Credential))
	}
	if cfg.OAuthServerURI != "" {
		u, err := url.Parse(cfg.OAuthServerURI)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("OAuth server URI %s: want an absolute http(s) URL", redactURL(cfg.OAuthServerURI))
		}
		opts = append(opts, rest.WithAuthURI(u))
	}
	if cfg.Scope != "" {
		opts = append(opts, rest.WithScope(cfg.Scope))
	}
	if cfg.SigV4 {
		opts = append(opts, rest.WithSigV4RegionSvc(cfg.SigV4Region, cfg.SigV4Service))
	}
	if cfg.Prefix != "" {
		opts = append(opts, rest.WithPrefix(cfg.Prefix))
	}
	if len(cfg.Headers) > 0 {
		opts = append(opts, rest.WithHeaders(maps.Clone(cfg.Headers)))
	}
	if wh := restWarehouse(cfg.Warehouse); wh != "" {
		opts = append(opts, rest.WithWarehouseLocation(wh))
	}
	// WithAdditionalProps replaces the map, so pass it once. These reach the
	// FileIO of every loaded table (server config and vended credentials
	// win over them).
	if props := s3Props(cfg.S3); len(props) > 0 {
		opts = append(opts, rest.WithAdditionalProps(props))
	}
	return opts, nil
}

// restWarehouse is the warehouse option sent to a REST catalog: the local
// default of the embedded catalog means "let the server decide".
func restWarehouse(w string) string {
	if w == DefaultWarehouse {
		return ""
	}
	return w
}

// openREST connects to the REST catalog at cfg.URI (fetching /v1/config).
func openREST(ctx context.Context, cfg Config) (*Catalog, error) {
	tr, err := newRESTTransport(cfg, defaultRetryPolicy(cfg.HTTPRetries))
	if err != nil {
		return nil, err
	}
	opts, err := restOptions(cfg, tr)
	if err != nil {
		return nil, err
	}
	cat, err := rest.NewCatalog(ctx, cfg.Name, cfg.URI, opts...)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("open REST catalog %s: %w", redactURL(cfg.URI), err)
	}
	return &Catalog{
		cat:  cat,
		kind: KindREST,
		desc: describeREST(cfg),
		closers: []func() error{cat.Close, func() error {
			tr.CloseIdleConnections()
			return nil
		}},
	}, nil
}

func describeREST(cfg Config) string {
	var b strings.Builder
	fmt.Fprintf(&b, "REST catalog %q at %s", cfg.Name, redactURL(cfg.URI))
	if cfg.Prefix != "" {
		fmt.Fprintf(&b, ", prefix %q", cfg.Prefix)
	}
	if wh := restWarehouse(cfg.Warehouse); wh != "" {
		fmt.Fprintf(&b, ", warehouse %s", redactURL(wh))
	}
	switch {
	case cfg.Token != "":
		b.WriteString(", auth: bearer token")
	case cfg.Credential != "":
		b.WriteString(", auth: OAuth2 client credentials")
		if cfg.OAuthServerURI != "" {
			b.WriteString(" via " + redactURL(cfg.OAuthServerURI))
		}
	case cfg.SigV4:
		// described below
	default:
		b.WriteString(", no auth")
	}
	if cfg.SigV4 {
		svc := cfg.SigV4Service
		if svc == "" {
			svc = "execute-api"
		}
		fmt.Fprintf(&b, ", SigV4 (service %s", svc)
		if cfg.SigV4Region != "" {
			b.WriteString(", region " + cfg.SigV4Region)
		}
		b.WriteString(")")
	}
	if cfg.InsecureSkipVerify {
		b.WriteString(", TLS verification OFF")
	} else if cfg.CAFile != "" {
		b.WriteString(", CA " + cfg.CAFile)
	}
	if cfg.S3.Endpoint != "" {
		b.WriteString(", S3 endpoint " + redactURL(cfg.S3.Endpoint))
	}
	return b.String()
}
